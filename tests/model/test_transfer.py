"""Transfer baselines: frozen lower layers stay bit-identical, fine-tuning and from-scratch training learn."""

from __future__ import annotations

import json

import pytest
import torch

from fashion_meta.model.meta import task_loss
from fashion_meta.model.towers import ModelConfig, build_model
from fashion_meta.model.transfer import PretrainConfig, fine_tune, from_scratch, pretrain


def _model(dataset, seed=0):
    spec = dataset.spec
    return build_model(spec.customer_input_dim, spec.article_input_dim, ModelConfig(hidden=(8,), dim=4), seed=seed)


def test_fine_tune_keeps_lower_layers_bit_identical(dataset):
    model = _model(dataset)
    task = dataset.by_role("train")[0]
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    tuned = fine_tune(model, params, task.support, steps=5, lr=0.5)
    lower = [n for n in params if n.startswith("lower.")]
    head = [n for n in params if n.startswith("head.")]
    assert lower and head
    assert all(torch.equal(tuned[n], params[n]) for n in lower)
    assert all(not torch.equal(tuned[n], params[n]) for n in head)
    assert all(torch.equal(p, params[n]) for n, p in model.named_parameters())  # module untouched
    with torch.no_grad():
        assert task_loss(model, tuned, task.support) < task_loss(model, params, task.support) - 0.01


def test_from_scratch_learns_the_support_set_and_is_seeded(dataset):
    task = dataset.by_role("train")[1]
    config = ModelConfig(hidden=(8,), dim=4)
    untrained, p0 = from_scratch(task.support, config, steps=0, seed=4)
    model, params = from_scratch(task.support, config, steps=30, lr=0.05, seed=4)
    _, again = from_scratch(task.support, config, steps=30, lr=0.05, seed=4)
    with torch.no_grad():
        assert task_loss(model, params, task.support) < task_loss(untrained, p0, task.support) - 0.1
    assert all(torch.equal(params[n], again[n]) for n in params)


def test_pretrain_learns_logs_and_selects_on_validation(dataset, tmp_path):
    model = _model(dataset)
    config = PretrainConfig(epochs=4, lr=0.01, batch_size=64, patience=2, fine_tune_steps=2, fine_tune_lr=0.2,
                            progress=False)
    result = pretrain(model, dataset.by_role("train"), dataset.by_role("validation"), config, log_dir=tmp_path)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    losses = [r["val_loss"] for r in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    log = json.loads((tmp_path / "metrics.json").read_text())
    assert log["kind"] == "pretrain" and len(log["epochs"]) == result.epochs_run


def test_pretrain_with_the_softmax_term_trains_and_validates_on_it(dataset, tmp_path):
    from functools import partial

    from fashion_meta.model.meta import evaluate_tasks

    config = PretrainConfig(epochs=3, lr=0.01, batch_size=64, patience=3, fine_tune_steps=2, fine_tune_lr=0.2,
                            softmax_weight=1.0, progress=False)
    runs = []
    for _ in range(2):
        model = _model(dataset)
        result = pretrain(model, dataset.by_role("train"), dataset.by_role("validation"), config,
                          log_dir=tmp_path / str(len(runs)))
        runs.append((model, result))
    (model, result), (again, _) = runs
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))  # seeded
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    val = dataset.by_role("validation")
    adapter = partial(fine_tune, steps=2, lr=0.2)
    with_term = evaluate_tasks(model, None, val, steps=2, lr=0.2, adapter=adapter,
                               query_loss=partial(task_loss, softmax_weight=1.0))
    bce_only = evaluate_tasks(model, None, val, steps=2, lr=0.2, adapter=adapter)
    assert with_term["loss"] == pytest.approx(result.best["val_loss"], rel=1e-5)  # selected on the same loss
    assert with_term["loss"] > bce_only["loss"] + 0.1
    with pytest.raises(ValueError, match="softmax_weight"):
        PretrainConfig(softmax_weight=-1.0)


def test_group_order_keeps_each_group_together_and_is_seeded():
    from fashion_meta.model.transfer import group_order

    groups = torch.tensor([2, 0, 1, 0, 2, 3, 1, 0, 3, 2])
    order = group_order(groups, torch.Generator().manual_seed(3))
    assert sorted(order.tolist()) == list(range(len(groups)))  # a permutation of the rows
    seen = groups[order].tolist()
    runs = [g for i, g in enumerate(seen) if i == 0 or seen[i - 1] != g]
    assert sorted(runs) == [0, 1, 2, 3]  # each group is one contiguous run
    for g in range(4):  # rows of a group keep their order
        rows = [i for i in order.tolist() if groups[i] == g]
        assert rows == sorted(rows)
    assert torch.equal(order, group_order(groups, torch.Generator().manual_seed(3)))
    assert any(not torch.equal(order, group_order(groups, torch.Generator().manual_seed(s))) for s in range(4, 8))
