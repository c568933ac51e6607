"""Train one model from a task-dataset folder into a model registry (the library side of ``fashion-meta train``).

Reads only train- and validation-role rows (holdout rows are filtered out by the Parquet reader and never
reach training, normalisation or early stopping), trains with the chosen method, and writes a new registry
version with weights, card and per-epoch logs. One ``seed`` fixes the initialisation and every sampled
episode, so two runs on the same device give the same weights.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import promote as promote_version
from .checkpoint import save_model
from .data import load_task_dataset
from .launch import LaunchRule, hidden_columns
from .meta import METHODS, MetaConfig, meta_train
from .towers import ModelConfig, build_model
from .transfer import PretrainConfig, pretrain

TRAIN_METHODS = (*METHODS, "transfer")
TRAINING_ROLES = ("train", "validation")


@dataclass
class TrainResult:
    """Where the model went and how it did on validation tasks."""

    version: str
    registry: Path
    model_dir: Path
    method: str
    device: str
    metrics: dict[str, Any]
    log_dir: Path
    train_task_ids: list[str]
    validation_task_ids: list[str]
    promoted: bool


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto": CUDA when available, else CPU; an explicit CUDA device that is not there raises."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


def _pretrained_start(folder: str | Path, config: dict[str, Any], manifest: dict[str, Any],
                      train_tasks: int) -> dict[str, torch.Tensor]:
    """The weights of a transfer model whose pretraining is the one ``config`` asks for (else ValueError)."""
    from .checkpoint import load_version_dir

    loaded = load_version_dir(folder)
    card = loaded.card
    done = card.get("config", {})
    wanted = {k: v for k, v in config["pretrain"].items() if k != "progress"}
    checks = {
        "method": (done.get("method"), "transfer"),
        "seed": (done.get("seed"), config["seed"]),
        "device": (done.get("device"), config["device"]),
        "model config": (done.get("model"), config["model"]),
        "pretraining config": ({k: v for k, v in (done.get("pretrain") or {}).items() if k != "progress"}, wanted),
        "run date": (card.get("run_date"), manifest.get("run_date")),
        "data window": (card.get("data_window"), manifest.get("window")),
        "task rows": ((card.get("task_dataset") or {}).get("rows"), manifest.get("rows")),
        "train tasks": (card.get("metrics", {}).get("train_tasks"), train_tasks),
    }
    same = lambda a, b: json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)  # noqa: E731
    differ = [f"{name} {got!r} != {want!r}" for name, (got, want) in checks.items() if not same(got, want)]
    if differ:
        raise ValueError(f"pretrained_from {folder}: not this run's pretraining: " + "; ".join(differ))
    return {k: v for k, v in loaded.model.state_dict().items()}


def train(
    task_folder: str | Path,
    out_registry: str | Path,
    method: str = "maml",
    *,
    device: str | torch.device = "auto",
    seed: int = 42,
    model_config: ModelConfig | None = None,
    meta_config: MetaConfig | None = None,
    pretrain_config: PretrainConfig | None = None,
    version: str | None = None,
    promote: bool = True,
    progress: bool = True,
    git_commit: str | None = None,
    tracking: str = "",
    tracking_uri: str = "",
    new_category_days: int = 14,
    min_category_history: int = 200,
    pretrained_from: str | Path | None = None,
) -> TrainResult:
    """Train ``method`` (maml, fomaml, anil, metasgd or transfer) on ``task_folder``; save into ``out_registry``.

    ``seed`` overrides the seed of the given configs. With ``promote`` the new version becomes current.
    ``tracking`` ("", "mlflow", "wandb") also sends the epochs, final metrics and the model folder to an
    experiment tracker (:mod:`fashion_meta.model.tracking`); the JSON/CSV log is written either way.
    ``new_category_days`` / ``min_category_history``: the launch rule a model trained with launch episodes ranks
    by (``[vocabulary]`` of the config: the same rule that calls a category new, :mod:`fashion_meta.model.launch`).
    A meta-learner whose ``meta_config.init`` is "pretrained" (the default) first runs ``pretrain`` with
    ``pretrain_config`` (its log under ``runs/<version>/pretrain``), then meta-trains from that model.
    ``pretrained_from``: the folder of a ``transfer`` model trained on the same task folder with the same seed,
    device, model and pretraining config; a meta-learner with the pretrained start then takes its weights instead
    of pretraining again (the same weights bit for bit, so the same result; the card records the folder). A
    folder that does not match raises ValueError saying what differs.
    """
    from .tracking import check_available, open_tracker

    if method not in TRAIN_METHODS:
        raise ValueError(f"unknown training method {method!r} (one of {', '.join(TRAIN_METHODS)})")
    check_available(tracking)  # a tracker asked for but missing stops here, before any work
    registry = Path(out_registry)
    dev = resolve_device(device)
    dataset = load_task_dataset(task_folder, roles=TRAINING_ROLES)
    train_tasks, val_tasks = dataset.by_role("train"), dataset.by_role("validation")
    spec, manifest = dataset.spec, dataset.manifest
    model_config = model_config or ModelConfig()
    model = build_model(spec.customer_input_dim, spec.article_input_dim, model_config, seed=seed)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    version = version or f"{manifest.get('run_date', 'undated')}-{method}-{stamp}"
    log_dir = registry / "runs" / version
    config: dict[str, Any] = {"method": method, "seed": seed, "device": str(dev), "model": model_config.to_dict()}
    inner_lrs = None
    if method != "transfer":
        mcfg = replace(meta_config or MetaConfig(), method=method, seed=seed, progress=progress)
        config["meta"] = mcfg.to_dict()
    # transfer's training, and the start of a meta-learner whose init is "pretrained"
    pretrained = method != "transfer" and mcfg.init == "pretrained"
    if method == "transfer" or pretrained:
        pcfg = replace(pretrain_config or PretrainConfig(), seed=seed, progress=progress)
        config["pretrain"] = pcfg.to_dict()
    start = None
    if pretrained_from is not None and not pretrained:
        raise ValueError(f"pretrained_from is for a meta-learner that starts from the pretrained model, not "
                         f"{method!r}" + ("" if method == "transfer" else " with meta_init 'random'"))
    if pretrained_from is not None:
        start = _pretrained_start(pretrained_from, config, manifest, len(train_tasks))
        config["pretrained_from"] = str(pretrained_from)
    tracker = open_tracker(tracking, tracking_uri, registry, version,
                           {**config, "run_date": manifest.get("run_date"), "train_tasks": len(train_tasks),
                            "validation_tasks": len(val_tasks)})
    on_epoch = tracker.log_epoch if tracker else None
    try:
        if method == "transfer":
            result: Any = pretrain(model, train_tasks, val_tasks, pcfg, log_dir=log_dir, device=dev, on_epoch=on_epoch)
            adaptation = {"kind": "fine_tune", "method": "transfer", "steps": pcfg.fine_tune_steps,
                          "lr": pcfg.fine_tune_lr, "frozen_prefixes": list(pcfg.frozen_prefixes)}
        else:
            launch = (LaunchRule(tuple(hidden_columns(spec.article.columns)), new_category_days, min_category_history)
                      if mcfg.cold_fraction > 0 else None)
            if start is not None:  # the transfer model's weights: what pretrain below would give
                model.load_state_dict(start)
            elif pretrained:  # its own epoch log under pretrain/; the tracker gets the meta-training epochs
                pretrain(model, train_tasks, val_tasks, pcfg, log_dir=log_dir / "pretrain", device=dev)
            result = meta_train(model, train_tasks, val_tasks, mcfg, log_dir=log_dir, device=dev, on_epoch=on_epoch,
                                cold_columns=launch.positions(spec) if launch else (),
                                article_features=len(spec.article.columns), validate_start=pretrained)
            inner_lrs = result.inner_lrs
            adaptation = {"kind": "meta", "method": method, "steps": mcfg.serving_steps, "lr": mcfg.inner_lr,
                          "adapt": mcfg.adapt_selection, "adapt_names": result.adapt_names,
                          "inner_lrs": inner_lrs is not None}
            if launch is not None and launch.columns:
                adaptation["launch"] = launch.to_dict()
    except BaseException:
        if tracker:
            tracker.finish({}, None, ok=False)
        raise
    best = result.best
    metrics = {
        "val_loss": best.get("val_loss"),
        "val_ndcg12": best.get("val_ndcg12"),
        "val_loss_unadapted": best.get("val_loss_unadapted"),
        "val_ndcg12_unadapted": best.get("val_ndcg12_unadapted"),
        # only with launch validation (MetaConfig.validate_launches): the launch-played categories, the selection loss
        **{k: best[k] for k in ("val_launch_loss", "val_launch_ndcg12", "val_select_loss") if k in best},
        "train_loss": best.get("train_loss"),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_tasks": len(train_tasks),
        "validation_tasks": len(val_tasks),
    }
    files = {path.name: path for path in result.log_paths.values()}
    version = save_model(registry, model, spec=spec, manifest=manifest, config=config, metrics=metrics,
                         adaptation=adaptation, inner_lrs=inner_lrs, version=version, files=files,
                         git_commit=git_commit)
    if tracker:
        tracker.finish(metrics, registry / version, ok=True)
    if promote:
        promote_version(registry, version)
    return TrainResult(version=version, registry=registry, model_dir=registry / version, method=method,
                       device=str(dev), metrics=metrics, log_dir=log_dir,
                       train_task_ids=[t.task_id for t in train_tasks],
                       validation_task_ids=[t.task_id for t in val_tasks], promoted=promote)
