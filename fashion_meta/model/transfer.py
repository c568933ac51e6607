"""Transfer learning baselines: supervised pretraining on warm tasks, fine-tuning with frozen lower layers, and a
model trained from scratch on a support set only.

Fine-tuning is the same functional ``adapt`` as meta-learning (DESIGN.md: one adaptation function), restricted
to the parameters outside ``frozen_prefixes``: frozen entries are returned as the very same tensors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import Batch, Task
from .logs import EpochLog
from .meta import LossFn, _check_roles, _usable, adapt, evaluate_tasks, task_loss
from .towers import (
    LOWER_PREFIXES, ModelConfig, Params, TwoTower, build_model, check_softmax_weight, pair_loss, training_loss,
)


def fine_tune(
    model: TwoTower,
    params: Params,
    support: Batch,
    steps: int,
    lr: float,
    frozen_prefixes: Sequence[str] = LOWER_PREFIXES,
    *,
    loss_fn: LossFn | None = None,
) -> dict[str, torch.Tensor]:
    """Gradient steps on the support loss for every parameter not under ``frozen_prefixes``."""
    frozen = tuple(frozen_prefixes)
    names = [n for n in params if not n.startswith(frozen)]
    return adapt(model, params, support, steps, lr, adapt_names=names, loss_fn=loss_fn)


def from_scratch(
    support: Batch,
    config: ModelConfig = ModelConfig(),
    *,
    steps: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
    weight_decay: float = 0.0,
) -> tuple[TwoTower, dict[str, torch.Tensor]]:
    """A fresh model (seeded init) trained full-batch with Adam on ``support`` only; returns (model, params)."""
    model = build_model(support.customer_inputs.shape[1], support.article_inputs.shape[1], config, seed=seed)
    model.to(support.device)
    if len(support) and steps > 0:
        optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        with torch.enable_grad():
            for _ in range(steps):
                optimiser.zero_grad(set_to_none=True)
                pair_loss(model(support.customer_inputs, support.article_inputs), support.labels).backward()
                optimiser.step()
    return model, {n: p.detach().clone() for n, p in model.named_parameters()}


@dataclass(frozen=True)
class PretrainConfig:
    """Supervised pretraining and the fine-tuning recipe used at validation and serving."""

    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 256
    weight_decay: float = 0.0
    patience: int = 5
    min_delta: float = 0.0
    fine_tune_steps: int = 5
    fine_tune_lr: float = 0.05
    frozen_prefixes: tuple[str, ...] = LOWER_PREFIXES
    # weight of the within-group softmax term (each purchase against the negatives sampled with it,
    # towers.group_softmax_loss) in the pretraining and validation loss; > 0 batches whole (customer, day) groups
    # together. Fine-tuning on a support set stays BCE. 0 = BCE only
    softmax_weight: float = 0.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        check_softmax_weight(self.softmax_weight)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frozen_prefixes"] = list(self.frozen_prefixes)
        return d


def group_order(groups: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random order of the rows that keeps each group's rows together (groups in random order, rows of a group in
    their order), so that cutting it into batches splits a group only at a batch boundary."""
    rank = torch.randperm(int(groups.max().item()) + 1, generator=gen).to(groups.device)[groups]
    return torch.argsort(rank, stable=True)


@dataclass
class PretrainResult:
    history: list[dict[str, Any]]
    best_epoch: int
    best: dict[str, Any]
    epochs_run: int
    stopped_early: bool
    log_paths: dict[str, Path] = field(default_factory=dict)


def pretrain(
    model: TwoTower,
    train_tasks: Sequence[Task],
    val_tasks: Sequence[Task],
    config: PretrainConfig = PretrainConfig(),
    *,
    log_dir: str | Path,
    device: torch.device | str | None = None,
    on_epoch: Callable[[Mapping[str, Any]], None] | None = None,
) -> PretrainResult:
    """Ordinary supervised training on all rows of train-role tasks; early-stops on the fine-tuned query loss
    of validation-role tasks and restores the best epoch."""
    _check_roles(train_tasks, "train")
    _check_roles(val_tasks, "validation")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    parts = [b for t in train_tasks for b in (t.support, t.query) if len(b)]
    if not parts:
        raise ValueError("no train-role rows to pretrain on")
    # plain supervised training on the pooled rows: no episodes, so no support set and no support evidence
    rows = Batch.concat(parts).with_evidence(None).to(device)
    val = [t.to(device) for t in _usable(val_tasks)]
    adapter = partial(fine_tune, steps=config.fine_tune_steps, lr=config.fine_tune_lr,
                      frozen_prefixes=config.frozen_prefixes)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    log = EpochLog(log_dir, {"kind": "pretrain", "config": config.to_dict(), "train_rows": len(rows),
                             "train_tasks": [t.task_id for t in train_tasks],
                             "validation_tasks": [t.task_id for t in val]}, sink=on_epoch)
    n_batches = math.ceil(len(rows) / config.batch_size)
    x_c, x_a = rows.customer_inputs, rows.article_inputs
    groups = rows.groups if config.softmax_weight else None
    query_loss = partial(task_loss, softmax_weight=config.softmax_weight)

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    best_state, best_row, best_loss, bad_epochs, stopped = snapshot(), {}, math.inf, 0, False
    bar = tqdm(total=config.epochs * n_batches, disable=not config.progress, desc="pretrain", unit="batch",
               leave=False)
    try:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            order = (torch.randperm(len(rows), generator=gen).to(device) if groups is None
                     else group_order(groups, gen))
            losses = []
            for b in range(n_batches):
                idx = order[b * config.batch_size:(b + 1) * config.batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = training_loss(model(x_c[idx], x_a[idx]), rows.labels[idx],
                                     None if groups is None else groups[idx], config.softmax_weight)
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}")
            row: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses))}
            if val:
                metrics = evaluate_tasks(model, None, val, steps=config.fine_tune_steps, lr=config.fine_tune_lr,
                                         adapter=adapter, query_loss=query_loss)
                row.update({f"val_{k}": v for k, v in metrics.items() if k != "tasks"})
            row["seconds"] = round(time.perf_counter() - started, 4)
            log.append(row)
            if not val:
                best_state, best_row = snapshot(), row
                continue
            if row["val_loss"] < best_loss - config.min_delta:
                best_state, best_row, best_loss, bad_epochs = snapshot(), row, row["val_loss"], 0
            else:
                bad_epochs += 1
                if bad_epochs >= config.patience:
                    stopped = True
                    break
    finally:
        bar.close()
    model.load_state_dict(best_state)
    best_epoch = int(best_row.get("epoch", 0))
    log.finish({"best_epoch": best_epoch, "epochs_run": len(log.rows), "stopped_early": stopped,
                "early_stopping": "validation tasks" if val else "disabled (no validation tasks)",
                **{f"best_{k}": v for k, v in best_row.items() if k != "epoch"}})
    return PretrainResult(history=list(log.rows), best_epoch=best_epoch, best=dict(best_row),
                          epochs_run=len(log.rows), stopped_early=stopped, log_paths=log.paths)


__all__ = ["fine_tune", "from_scratch", "group_order", "pretrain", "PretrainConfig", "PretrainResult", "task_loss"]
