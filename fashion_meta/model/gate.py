"""Model promotion gate: a new registry version becomes current only if it is not worse than the current one.

Both models are scored on the same data: the validation tasks of the run date's task files (the most recent
purchases of slices neither model trained on: the validation role is a fixed hash of the task id, so no earlier
model trained on them either; the new model only used them for early stopping). Each model adapts on a task's
support set with its own recipe and is measured by NDCG@12 on the task's query purchases. The new model is
promoted when ``new >= current - margin``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import current_version, load_model, promote
from .data import load_task_dataset
from .meta import evaluate_tasks
from .ranking import adapted_ranker

GATE_ROLE = "validation"


@dataclass
class GateDecision:
    """Outcome of the gate: which version is current afterwards and why."""

    promoted: bool
    new_version: str
    current_version: str | None
    new_ndcg12: float | None
    current_ndcg12: float | None
    margin: float
    tasks: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_metric(registry: str | Path, version: str, task_folder: str | Path,
                device: str | torch.device = "cpu") -> tuple[float, int]:
    """Mean NDCG@12 (after the model's own adaptation) over the validation tasks of ``task_folder``."""
    loaded = load_model(registry, version, device=device)
    dataset = load_task_dataset(task_folder, roles=(GATE_ROLE,), spec=loaded.spec)
    tasks = [t.to(device) for t in dataset.tasks if len(t.support) and len(t.query)]
    if not tasks:
        return math.nan, 0
    ranker = adapted_ranker(loaded)
    result = evaluate_tasks(loaded.model, loaded.params(), tasks, steps=0, lr=0.0, adapter=ranker.adapter)
    return float(result["ndcg12"]), len(tasks)


def promotion_gate(registry: str | Path, new_version: str, task_folder: str | Path, *, margin: float,
                   device: str | torch.device = "cpu", apply: bool = True) -> GateDecision:
    """Compare ``new_version`` with the current version; promote it (when ``apply``) if it passes."""
    current = current_version(registry)
    new_score, n_tasks = gate_metric(registry, new_version, task_folder, device)
    if current is None or current == new_version:
        decision = GateDecision(True, new_version, current, _finite(new_score), None, margin, n_tasks,
                                "no current model" if current is None else "already current")
    elif n_tasks == 0:
        decision = GateDecision(False, new_version, current, None, None, margin, 0,
                                "no validation tasks to compare the models on: keeping the current model")
    else:
        current_score, _ = gate_metric(registry, current, task_folder, device)
        passed = not math.isfinite(current_score) or new_score >= current_score - margin
        relation = "within" if passed else "worse than"
        decision = GateDecision(
            passed, new_version, current, _finite(new_score), _finite(current_score), margin, n_tasks,
            f"new NDCG@12 {new_score:.4f} vs current {current_score:.4f} on {n_tasks} validation tasks: "
            f"{relation} the margin {margin}" + ("" if passed else f"; keeping {current}"),
        )
    if apply and decision.promoted:
        promote(registry, new_version)
    return decision


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
