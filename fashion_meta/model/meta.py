"""Functional adaptation and the MAML family of meta-learners.

``adapt`` is the one inner loop used everywhere (meta-training, validation, transfer fine-tuning, the nightly
job): plain gradient steps on the support loss, computed with ``torch.func.functional_call`` on a dict of
parameters, so the module itself is never mutated. With ``create_graph=True`` the steps stay differentiable
(second-order MAML); otherwise the support gradients are constants and the outer gradient flows through the
identity path only (first-order).

Meta-learners (``METHODS``):

- ``maml``: second-order, all parameters adapt (``adapt="all"``; ``"head"`` allowed).
- ``fomaml``: first-order, all parameters adapt (cheaper: no Hessian-vector products).
- ``anil``: second-order, only ``head.*`` adapts ("almost no inner loop"): cheap inner loop, the lower layers
  are meta-learned as a shared representation.
- ``metasgd``: learned per-parameter inner learning rates (same shapes as the parameters), first-order. The
  learning rates still get an exact first-order gradient, ``-g_support * dL_query/dtheta'``, because they
  multiply the (constant) support gradient.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .data import Batch, Task, with_support_evidence
from .logs import EpochLog
from .scoring import query_ndcg
from .towers import Params, TwoTower, check_softmax_weight, parameter_names, training_loss

LossFn = Callable[[nn.Module, Params, Any], torch.Tensor]


def task_loss(model: nn.Module, params: Params, batch: Batch, softmax_weight: float = 0.0) -> torch.Tensor:
    """Mean BCE of the model under ``params`` on a batch of labelled pairs, plus ``softmax_weight`` times the
    within-group softmax loss (each purchase against the negatives sampled with it, ``group_softmax_loss``)."""
    logits = functional_call(model, dict(params), (batch.customer_inputs, batch.article_inputs, batch.evidence))
    return training_loss(logits, batch.labels, batch.groups if softmax_weight else None, softmax_weight)


def _is_empty(support: Any) -> bool:
    return hasattr(support, "__len__") and len(support) == 0


def adapt(
    model: nn.Module,
    params: Params,
    support: Any,
    steps: int,
    lr: float,
    *,
    adapt_names: Iterable[str] | None = None,
    create_graph: bool = False,
    lrs: Mapping[str, torch.Tensor] | None = None,
    loss_fn: LossFn | None = None,
) -> dict[str, torch.Tensor]:
    """``steps`` gradient steps on the support loss; returns new params, never mutates the module.

    Only ``adapt_names`` move (default: all); the other entries are returned as the very same tensors.
    ``lrs`` gives per-parameter learning rates (Meta-SGD) where present, ``lr`` elsewhere. When no adapted
    input requires grad (evaluation, serving), the result is detached; otherwise it stays connected to
    ``params`` (and to ``lrs``) for the outer gradient, through the support gradients too if ``create_graph``.
    """
    if steps < 0:
        raise ValueError("steps must be >= 0")
    loss_fn = loss_fn or task_loss
    current = dict(params)
    names = list(current) if adapt_names is None else list(adapt_names)
    unknown = [n for n in names if n not in current]
    if unknown:
        raise ValueError(f"unknown parameter name(s) to adapt: {', '.join(unknown)}")
    if steps == 0 or not names or _is_empty(support):
        return current
    track = torch.is_grad_enabled() and (
        any(current[n].requires_grad for n in names) or any(v.requires_grad for v in (lrs or {}).values())
    )
    # Differentiable leaves for what does not require grad yet (evaluation, or only the lrs are learned).
    current.update({n: current[n].detach().requires_grad_(True) for n in names if not current[n].requires_grad})
    with torch.enable_grad():
        for _ in range(steps):
            loss = loss_fn(model, current, support)
            grads = torch.autograd.grad(loss, [current[n] for n in names], create_graph=create_graph,
                                        allow_unused=True)
            for n, g in zip(names, grads):
                if g is None:  # does not influence this loss (e.g. an unused bias)
                    continue
                step_lr = lrs[n] if lrs is not None and n in lrs else lr
                new = current[n] - step_lr * g
                current[n] = new if track else new.detach().requires_grad_(True)
    if not track:
        current.update({n: current[n].detach() for n in names})
    return current


def init_inner_lrs(model: nn.Module, names: Sequence[str], lr: float) -> dict[str, torch.Tensor]:
    """Meta-SGD learning rates: one learnable tensor per adapted parameter, initialised to ``lr``."""
    params = dict(model.named_parameters())
    return {n: torch.full_like(params[n].detach(), lr).requires_grad_(True) for n in names}


@dataclass(frozen=True)
class MethodSpec:
    """How a meta-learner adapts: order of the meta-gradient, default parameter selection, learned lrs."""

    second_order: bool
    adapt: str
    learn_lrs: bool


METHODS: dict[str, MethodSpec] = {
    "maml": MethodSpec(second_order=True, adapt="all", learn_lrs=False),
    "fomaml": MethodSpec(second_order=False, adapt="all", learn_lrs=False),
    "anil": MethodSpec(second_order=True, adapt="head", learn_lrs=False),
    "metasgd": MethodSpec(second_order=False, adapt="all", learn_lrs=True),
}


META_INITS = ("random", "pretrained")


@dataclass(frozen=True)
class MetaConfig:
    """Meta-training hyperparameters (all keyword arguments with defaults)."""

    method: str = "maml"
    inner_steps: int = 3
    inner_lr: float = 0.1
    eval_steps: int | None = None  # adaptation steps at validation and serving; None = inner_steps
    outer_lr: float = 1e-3
    meta_batch: int = 8
    epochs: int = 50
    patience: int = 5
    min_delta: float = 0.0
    adapt: str | None = None  # "all" or "head"; None = the method's default
    support_size: int | None = None  # subsample support rows per episode (K shots); None = all
    cold_fraction: float = 0.5  # share of episodes played as a launch: article and category history hidden (cold_columns)
    unit_episodes: bool = True  # also train on whole categories and whole user groups (unit_tasks)
    # also validate every validation category played as a launch (launch_validation_tasks) and select the epoch on
    # the mean of the warm and the launch validation loss; needs cold_fraction > 0 and cold columns. Off by default:
    # on development seed 7 it picked later epochs and changed new categories at K=50 within noise, K=0 for the worse
    validate_launches: bool = False
    unit_support: int = 250  # rows of a unit episode's support (K=50 purchases with 4 negatives each)
    unit_query: int = 500
    query_size: int | None = None
    # weight of the within-group softmax term in the query (outer and validation) loss: each query purchase ranked
    # against the negatives sampled with it (towers.group_softmax_loss); the support loss stays BCE (a launch-day
    # support purchase has no negatives). 0 = BCE only
    softmax_weight: float = 0.0
    # where meta-training starts: "random" (the seeded initialisation) or "pretrained" (first the transfer
    # learner's supervised pretraining on the same train tasks, train.py; the start is validated as epoch 0, so
    # early stopping can keep it)
    init: str = "pretrained"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.init not in META_INITS:
            raise ValueError(f"init must be one of {', '.join(META_INITS)}, got {self.init!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown meta-learner {self.method!r} (one of {', '.join(METHODS)})")
        if self.adapt not in (None, "all", "head"):
            raise ValueError(f"adapt must be 'all' or 'head', got {self.adapt!r}")
        if self.method == "anil" and self.adapt == "all":
            raise ValueError("anil adapts the head only")
        if not 0.0 <= self.cold_fraction <= 1.0:
            raise ValueError("cold_fraction must be between 0 and 1")
        if self.validate_launches and self.cold_fraction == 0:
            raise ValueError("validate_launches needs launch episodes (cold_fraction > 0): a model trained without "
                             "them does not rank launches in launch mode")
        check_softmax_weight(self.softmax_weight)
        if self.meta_batch < 1 or self.epochs < 1 or self.inner_steps < 0 or self.patience < 1:
            raise ValueError("meta_batch, epochs, patience must be >= 1 and inner_steps >= 0")

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method]

    @property
    def adapt_selection(self) -> str:
        return self.adapt or self.spec.adapt

    @property
    def serving_steps(self) -> int:
        return self.inner_steps if self.eval_steps is None else self.eval_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MetaResult:
    """Outcome of meta-training: per-epoch history, the restored best epoch, and how to adapt at serving."""

    history: list[dict[str, Any]]
    best_epoch: int
    best: dict[str, Any]
    epochs_run: int
    stopped_early: bool
    adapt_names: list[str]
    inner_lrs: dict[str, torch.Tensor] | None
    log_paths: dict[str, Path] = field(default_factory=dict)


def _check_roles(tasks: Sequence[Task], role: str) -> None:
    wrong = sorted({t.role for t in tasks} - {role})
    if wrong:
        raise ValueError(f"expected only {role}-role tasks here, got role(s) {wrong}")


def hide_columns(batch: Batch, columns: Sequence[int], n_features: int) -> Batch:
    """``batch`` with the article feature ``columns`` encoded as missing (z 0, missing flag 1): a launch episode.

    ``n_features``: the number of article feature columns (the flags follow the values, spec.py layout).
    """
    if not columns:
        return batch
    af = batch.article_features.clone()
    idx = torch.as_tensor(list(columns), dtype=torch.long, device=af.device)
    af[:, idx] = 0.0
    af[:, idx + n_features] = 1.0
    return replace(batch, article_features=af)


def unit_tasks(tasks: Sequence[Task], support_rows: int, query_rows: int, seed: int, *,
               group_evidence: bool = True, kinds: Sequence[str] = ("category", "user_group"),
               single_slices: bool = False) -> list[Task]:
    """Episodes shaped like the units the system adapts to: each category over all its user groups
    ("<category>|*", a new category) and each user group over all its categories ("*|<group>", a new group).

    Built from (category x user group) tasks of one role by pooling their support and their query rows. Each slice
    splits support and query at its own day, so pooled support rows on or after the first pooled query day are
    dropped (support stays strictly earlier, as at serving); a key with one slice, or with no support purchase
    left, gives no episode. The pooled splits are subsampled (seeded) to ``support_rows`` / ``query_rows`` so a
    unit episode costs about as much as the K = 50 support sets it stands for. Support evidence is recomputed on
    the pooled support; a user group's episode gets none unless ``group_evidence`` (``ModelConfig.group_evidence``:
    the same rule as at serving).

    ``kinds``: which units to build; ``single_slices``: also make a unit of a key with one slice (its rows
    subsampled and its evidence recomputed like any unit), for launch validation.
    """
    gen = torch.Generator().manual_seed(seed)
    out = []
    for kind in kinds:
        keys = sorted({getattr(t, kind) for t in tasks})
        for key in keys:
            members = [t for t in tasks if getattr(t, kind) == key]
            if len(members) < 2 and not single_slices:
                continue  # a single slice is already an episode
            support, query = Batch.concat([t.support for t in members]), Batch.concat([t.query for t in members])
            # each slice splits at its own day: keep the pooled support strictly before the pooled query
            if support.days is None or query.days is None or not len(query):  # days unknown: keep every row
                earlier = np.arange(len(support))
            else:
                earlier = np.flatnonzero(support.days < query.days.min())
            if len(earlier) == 0 or not (support.labels.cpu().numpy()[earlier] > 0.5).any():
                continue
            support = _subsample(support.select(earlier), support_rows, gen)
            query = _subsample(query, query_rows, gen)
            if kind == "category" or group_evidence:
                support, query = with_support_evidence(support, query)
            else:
                support, query = support.with_evidence(None), query.with_evidence(None)
            task_id = f"{key}|*" if kind == "category" else f"*|{key}"
            out.append(Task(task_id, key if kind == "category" else "*", key if kind == "user_group" else "*",
                            members[0].role, support, query))
    return out


def launch_validation_tasks(val: Sequence[Task], cold_columns: Sequence[int], article_features: int,
                            support_rows: int, query_rows: int, seed: int) -> list[Task]:
    """Validation categories played as launches: each category over all its user groups (the unit a new category
    is adapted on, :func:`unit_tasks`, a single slice included), subsampled to ``support_rows`` (the K = 50 shape,
    support evidence recomputed), with the article and category history (``cold_columns``) hidden in support and
    query, as in the launch episodes of meta-training.

    The selection of the epoch then sees how the initialisation adapts to a launch, not only to a warm slice.
    Task ids get a ``launch:`` prefix; the role stays "validation".
    """
    if not cold_columns:
        return []
    units = unit_tasks([t for t in val if not t.is_group_unit], support_rows, query_rows, seed, kinds=("category",),
                       single_slices=True)
    return [replace(t, task_id=f"launch:{t.task_id}", support=hide_columns(t.support, cold_columns, article_features),
                    query=hide_columns(t.query, cold_columns, article_features)) for t in _usable(units)]


def _subsample(batch: Batch, size: int | None, gen: torch.Generator) -> Batch:
    if size is None or len(batch) <= size:
        return batch
    idx = torch.randperm(len(batch), generator=gen)[:size].sort().values.numpy()
    return batch.select(idx)


def evaluate_tasks(
    model: TwoTower,
    params: Params | None,
    tasks: Sequence[Task],
    *,
    steps: int,
    lr: float,
    adapt_names: Iterable[str] | None = None,
    lrs: Mapping[str, torch.Tensor] | None = None,
    adapter: Callable[[TwoTower, Params, Batch], Params] | None = None,
    query_loss: LossFn | None = None,
) -> dict[str, float]:
    """Mean query loss (``query_loss``, default ``task_loss``) and NDCG@12 over tasks, after adapting on each support
    set and without adapting."""
    query_loss = query_loss or task_loss
    base = {n: p.detach() for n, p in (params.items() if params is not None else model.named_parameters())}
    fixed_lrs = {n: v.detach() for n, v in lrs.items()} if lrs is not None else None
    names = list(adapt_names) if adapt_names is not None else None
    out: dict[str, list[float]] = {"loss": [], "ndcg12": [], "loss_unadapted": [], "ndcg12_unadapted": []}
    for task in tasks:
        if adapter is not None:
            adapted = adapter(model, base, task.support)
        else:
            adapted = adapt(model, base, task.support, steps, lr, adapt_names=names, lrs=fixed_lrs)
        with torch.no_grad():
            out["loss"].append(query_loss(model, adapted, task.query).item())
            # unadapted = the model as it is before any support set: no support evidence either
            out["loss_unadapted"].append(query_loss(model, base, task.query.with_evidence(None)).item())
        out["ndcg12"].append(query_ndcg(model, adapted, task.query))
        out["ndcg12_unadapted"].append(query_ndcg(model, base, task.query.with_evidence(None)))
    result = {}
    for key, values in out.items():
        finite = [v for v in values if math.isfinite(v)]
        result[key] = float(np.mean(finite)) if finite else float("nan")
    result["tasks"] = float(len(tasks))
    return result


def _usable(tasks: Sequence[Task]) -> list[Task]:
    return [t for t in tasks if len(t.support) and len(t.query)]


def meta_train(
    model: TwoTower,
    train_tasks: Sequence[Task],
    val_tasks: Sequence[Task],
    config: MetaConfig = MetaConfig(),
    *,
    log_dir: str | Path,
    device: torch.device | str | None = None,
    on_epoch: Callable[[Mapping[str, Any]], None] | None = None,
    cold_columns: Sequence[int] = (),
    article_features: int = 0,
    validate_start: bool = False,
) -> MetaResult:
    """Meta-train ``model`` in place (outer Adam); early-stops on validation-role tasks, restores the best epoch.

    ``config.cold_fraction`` of the episodes are launch episodes: the article feature columns ``cold_columns``
    (of ``article_features`` feature columns; the article and category history, launch.py) are hidden in support and query, so
    the only popularity evidence left is the support set's own purchases, as for a category launched this week.

    ``validate_start``: also validate the model as given, as epoch 0, so that early stopping keeps it when no
    meta-training epoch beats it (a pretrained start, ``MetaConfig.init``).

    ``config.validate_launches`` (with launch episodes on): the validation categories are also played as launches
    (:func:`launch_validation_tasks`), logged as ``val_launch_loss`` / ``val_launch_ndcg12``, and the epoch is
    selected on ``val_select_loss``, the mean of ``val_loss`` and ``val_launch_loss`` (of the finite ones);
    otherwise on ``val_loss``, and the rows carry no launch columns (as before the option existed).

    Only train-role tasks train and only validation-role tasks select the epoch; any other role raises.
    Tasks without support or query rows are skipped. Writes ``metrics.csv``/``metrics.json`` to ``log_dir``.
    """
    _check_roles(train_tasks, "train")
    _check_roles(val_tasks, "validation")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    group_evidence = model.config.uses_evidence(group_unit=True)
    train = [t.to(device) for t in _usable(train_tasks)]
    val = [t.to(device) for t in _usable(val_tasks)]
    if not train:
        raise ValueError("no train-role task has both support and query rows")
    if config.unit_episodes:
        train += [t.to(device) for t in _usable(unit_tasks(train, config.unit_support, config.unit_query,
                                                           config.seed, group_evidence=group_evidence))]
    val_launch = (launch_validation_tasks(val, cold_columns, article_features, config.unit_support, config.unit_query,
                                          config.seed)
                  if val and config.validate_launches else [])  # MetaConfig refuses it without launch episodes
    if val and config.validate_launches and not val_launch:
        warnings.warn("validate_launches: no validation category could be played as a launch (no hidden history "
                      "columns, or no support purchase left); selecting on the warm validation loss only",
                      RuntimeWarning, stacklevel=2)
    method = config.spec
    query_loss = partial(task_loss, softmax_weight=config.softmax_weight)
    names = parameter_names(model, config.adapt_selection)
    lrs = init_inner_lrs(model, names, config.inner_lr) if method.learn_lrs else None
    optimiser = torch.optim.Adam([*model.parameters(), *(lrs.values() if lrs else [])], lr=config.outer_lr)
    gen = torch.Generator().manual_seed(config.seed)
    log = EpochLog(log_dir, {"kind": "meta", "config": config.to_dict(), "adapt_names": names,
                             "train_tasks": [t.task_id for t in train],
                             "validation_tasks": [t.task_id for t in val],
                             "launch_validation_tasks": [t.task_id for t in val_launch]}, sink=on_epoch)

    def validate() -> dict[str, Any]:
        """The validation columns of an epoch's row (launch columns only with launch validation)."""
        kwargs: dict[str, Any] = dict(steps=config.serving_steps, lr=config.inner_lr, adapt_names=names, lrs=lrs,
                                      query_loss=query_loss)
        metrics = evaluate_tasks(model, None, val, **kwargs)
        row = {f"val_{k}": v for k, v in metrics.items() if k != "tasks"}
        if val_launch:
            launch = evaluate_tasks(model, None, val_launch, **kwargs)
            row.update({"val_launch_loss": launch["loss"], "val_launch_ndcg12": launch["ndcg12"]})
            finite = [v for v in (row["val_loss"], launch["loss"]) if math.isfinite(v)]
            row["val_select_loss"] = float(np.mean(finite)) if finite else math.nan
        return row

    def select_loss(row: Mapping[str, Any]) -> float:
        """What early stopping compares."""
        return row["val_select_loss"] if val_launch else row["val_loss"]

    def snapshot() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return state, ({k: v.detach().clone() for k, v in lrs.items()} if lrs else None)

    n_batches = math.ceil(len(train) / config.meta_batch)
    best_state, best_row, best_loss, bad_epochs, stopped = snapshot(), {}, math.inf, 0, False
    bar = tqdm(total=config.epochs * n_batches, disable=not config.progress, desc=f"meta-train {config.method}",
               unit="batch", leave=False)
    try:
        if val and validate_start:
            started = time.perf_counter()
            row0: dict[str, Any] = {"epoch": 0, **validate(), "seconds": round(time.perf_counter() - started, 4)}
            log.append(row0)
            best_state, best_row, best_loss = snapshot(), row0, select_loss(row0)
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            order = torch.randperm(len(train), generator=gen).tolist()
            losses = []
            for b in range(n_batches):
                chunk = order[b * config.meta_batch:(b + 1) * config.meta_batch]
                optimiser.zero_grad(set_to_none=True)
                params = dict(model.named_parameters())
                batch_loss = 0.0
                for i in chunk:
                    support = _subsample(train[i].support, config.support_size, gen)
                    query = _subsample(train[i].query, config.query_size, gen)
                    # the evidence counts the support rows actually used (none for a group unit, as at serving)
                    if config.support_size is not None and (not train[i].is_group_unit or group_evidence):
                        support, query = with_support_evidence(support, query)
                    # a launch is a category's, never a user group's (whose categories keep their history)
                    launch = (bool(cold_columns) and config.cold_fraction > 0 and not train[i].is_group_unit
                              and torch.rand(1, generator=gen).item() < config.cold_fraction)
                    if launch:
                        support = hide_columns(support, cold_columns, article_features)
                        query = hide_columns(query, cold_columns, article_features)
                    adapted = adapt(model, params, support, config.inner_steps, config.inner_lr, adapt_names=names,
                                    create_graph=method.second_order, lrs=lrs)
                    loss = query_loss(model, adapted, query) / len(chunk)
                    loss.backward()  # per task, so at most one task's graph is alive
                    batch_loss += loss.item()
                optimiser.step()
                losses.append(batch_loss)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{batch_loss:.4f}")
            row: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses))}
            if val:
                row.update(validate())
            row["seconds"] = round(time.perf_counter() - started, 4)
            log.append(row)
            shown = select_loss(row) if val else math.nan
            bar.set_postfix(epoch=epoch, loss=f"{row['train_loss']:.4f}", val=f"{shown:.4f}")
            if not val:  # nothing to select on: keep the last epoch
                best_state, best_row = snapshot(), row
                continue
            if select_loss(row) < best_loss - config.min_delta:
                best_state, best_row, best_loss, bad_epochs = snapshot(), row, select_loss(row), 0
            else:
                bad_epochs += 1
                if bad_epochs >= config.patience:
                    stopped = True
                    break
    finally:
        bar.close()
    state, best_lrs = best_state
    model.load_state_dict(state)
    best_epoch = int(best_row.get("epoch", 0))
    epochs_run = sum(1 for r in log.rows if r["epoch"] > 0)  # epoch 0 validates the start, it trains nothing
    log.finish({"best_epoch": best_epoch, "epochs_run": epochs_run, "stopped_early": stopped,
                "early_stopping": "validation tasks" if val else "disabled (no validation tasks)",
                **{f"best_{k}": v for k, v in best_row.items() if k != "epoch"}})
    return MetaResult(history=list(log.rows), best_epoch=best_epoch, best=dict(best_row), epochs_run=epochs_run,
                      stopped_early=stopped, adapt_names=names, inner_lrs=best_lrs, log_paths=log.paths)
