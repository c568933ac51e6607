"""Promotion gate: a new model becomes current only if it is not worse than the current one by the margin."""

from __future__ import annotations

import pytest
import torch

from fashion_meta.model.checkpoint import current_version, load_model, save_model
from fashion_meta.model.gate import gate_metric, promotion_gate
from fashion_meta.model.meta import MetaConfig
from fashion_meta.model.towers import ModelConfig
from fashion_meta.model.train import train

from .conftest import TaskPlan, write_task_dataset

GOOD = {
    "model_config": ModelConfig(hidden=(16,), dim=8),
    "meta_config": MetaConfig(epochs=30, patience=30, inner_steps=1, inner_lr=0.3, outer_lr=0.05, meta_batch=8),
    "progress": False, "git_commit": "unknown", "device": "cpu",
}


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    """Learnable tasks (one shared affinity, no per-task rotation): 24 train, 8 validation."""
    folder = tmp_path_factory.mktemp("gate_tasks")
    write_task_dataset(folder, [TaskPlan(f"Cat{i:02d}", "25-34|online", "train" if i < 24 else "validation", 0.0,
                                         customers=8) for i in range(32)])
    return folder


def _planted(registry, source: str, version: str, *, negate: bool) -> str:
    """A copy of ``source`` (scores negated when ``negate``: the worst possible ranking of the same model)."""
    loaded = load_model(registry, source)
    if negate:
        with torch.no_grad():
            for name, p in loaded.model.named_parameters():
                if name.startswith(("head.customer", "head.article_bias")):
                    p.neg_()
    return save_model(registry, loaded.model, spec=loaded.spec, config=loaded.card["config"],
                      adaptation=loaded.card["adaptation"], inner_lrs=loaded.inner_lrs, version=version,
                      git_commit="unknown")


def test_first_model_is_promoted_and_a_planted_worse_one_is_not(task_folder, tmp_path):
    good = train(task_folder, tmp_path, "fomaml", seed=1, version="good", promote=False, **GOOD)
    first = promotion_gate(tmp_path, good.version, task_folder, margin=0.01)
    assert first.promoted and first.reason == "no current model" and current_version(tmp_path) == "good"

    _planted(tmp_path, "good", "worse", negate=True)
    good_score, tasks = gate_metric(tmp_path, "good", task_folder)
    worse_score, _ = gate_metric(tmp_path, "worse", task_folder)
    assert tasks > 0 and worse_score < good_score - 0.01
    decision = promotion_gate(tmp_path, "worse", task_folder, margin=0.01)
    assert not decision.promoted and current_version(tmp_path) == "good"
    assert decision.new_ndcg12 == worse_score and decision.current_ndcg12 == good_score
    assert "keeping good" in decision.reason

    # the same weights under a new version are within any margin >= 0
    _planted(tmp_path, "good", "same", negate=False)
    assert promotion_gate(tmp_path, "same", task_folder, margin=0.0).promoted
    assert current_version(tmp_path) == "same"


def test_gate_can_decide_without_applying(task_folder, tmp_path):
    train(task_folder, tmp_path, "fomaml", seed=1, version="good", **GOOD)
    _planted(tmp_path, "good", "worse", negate=True)
    huge = promotion_gate(tmp_path, "worse", task_folder, margin=10.0, apply=False)
    assert huge.promoted and current_version(tmp_path) == "good"  # passes, but apply=False leaves current alone
