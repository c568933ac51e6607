"""Functional adaptation, first/second-order meta-gradients, and meta-training with early stopping."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn
from torch.func import functional_call

from fashion_meta.model.data import load_task_dataset
from fashion_meta.model.meta import MetaConfig, adapt, evaluate_tasks, init_inner_lrs, meta_train, task_loss
from fashion_meta.model.towers import ModelConfig, build_model, parameter_names

from .conftest import plans, write_task_dataset


def _model(dataset, hidden=(8,), seed=0, evidence=True):
    spec = dataset.spec
    return build_model(spec.customer_input_dim, spec.article_input_dim,
                       ModelConfig(hidden=hidden, dim=4, evidence=evidence), seed=seed)


def _mse(model, params, batch):
    x, y = batch
    return ((functional_call(model, dict(params), (x,)).squeeze(-1) - y) ** 2).mean()


def _linear_problem():
    gen = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    xq, yq = torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, generator=gen, dtype=torch.float64)
    model = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64))
    return model, (xs, ys), (xq, yq)


def _grad(x, y, w):
    """Gradient of mean((x w - y)^2) in w: 2/N x^T (x w - y)."""
    return 2.0 / len(y) * x.T @ (x @ w - y)


@pytest.mark.parametrize("second_order", [False, True])
def test_meta_gradient_matches_closed_form_on_linear_regression(second_order):
    model, (xs, ys), (xq, yq) = _linear_problem()
    alpha = 0.1
    w0 = model.weight.detach()[0]
    adapted = adapt(model, dict(model.named_parameters()), (xs, ys), 2, alpha, create_graph=second_order,
                    loss_fn=_mse)
    (meta_grad,) = torch.autograd.grad(_mse(model, adapted, (xq, yq)), model.weight)
    # by hand: w1 = w0 - a g_s(w0), w2 = w1 - a g_s(w1); first order: g_q(w2);
    # second order: d w2 / d w0 = (I - a H_s)^2 with the constant Hessian H_s = 2/N_s x_s^T x_s
    w1 = w0 - alpha * _grad(xs, ys, w0)
    w2 = w1 - alpha * _grad(xs, ys, w1)
    torch.testing.assert_close(adapted["weight"][0], w2)
    expected = _grad(xq, yq, w2)
    if second_order:
        jac = torch.eye(3, dtype=torch.float64) - alpha * 2.0 / len(ys) * xs.T @ xs
        expected = jac @ jac @ expected
    torch.testing.assert_close(meta_grad[0], expected)


def test_adapt_reduces_support_loss_without_mutating_the_module(dataset):
    model = _model(dataset)
    task = dataset.by_role("train")[0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = {n: p.detach() for n, p in model.named_parameters()}
    adapted = adapt(model, params, task.support, 5, 0.5)
    with torch.no_grad():
        assert task_loss(model, adapted, task.support) < task_loss(model, params, task.support) - 0.01
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert all(not v.requires_grad for v in adapted.values())
    changed = [n for n in params if not torch.equal(params[n], adapted[n])]
    assert sorted(changed) == sorted(params)
    x_c, x_a = task.query.customer_inputs, task.query.article_inputs
    assert not torch.allclose(model.score(adapted, x_c, x_a), model.score(params, x_c, x_a))


def test_only_selected_parameters_adapt(dataset):
    model = _model(dataset)
    task = dataset.by_role("train")[0]
    params = {n: p.detach() for n, p in model.named_parameters()}
    adapted = adapt(model, params, task.support, 3, 0.5, adapt_names=parameter_names(model, "head"))
    for n in params:
        if n.startswith("lower."):
            assert adapted[n] is params[n]
        else:
            assert not torch.equal(adapted[n], params[n])
    assert adapt(model, params, task.support, 0, 0.5) == params


def test_second_order_meta_gradient_differs_from_first_order(dataset):
    task = dataset.by_role("train")[0]
    grads = {}
    for second_order in (False, True):
        model = _model(dataset)
        params = dict(model.named_parameters())
        adapted = adapt(model, params, task.support, 2, 0.5, create_graph=second_order)
        task_loss(model, adapted, task.query).backward()
        grads[second_order] = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert grads[True].norm() > 0 and grads[False].norm() > 0
    assert not torch.allclose(grads[True], grads[False], rtol=1e-3, atol=1e-6)


def test_metasgd_learning_rates_are_used_and_learned(dataset):
    model = _model(dataset)
    task = dataset.by_role("train")[0]
    params = {n: p.detach() for n, p in model.named_parameters()}
    names = parameter_names(model, "head")
    lrs = init_inner_lrs(model, names, 0.2)
    doubled = adapt(model, params, task.support, 1, 0.1, adapt_names=names, lrs={n: v.detach() for n, v in lrs.items()})
    plain = adapt(model, params, task.support, 1, 0.2, adapt_names=names)
    for n in names:
        torch.testing.assert_close(doubled[n], plain[n])
    adapted = adapt(model, params, task.support, 1, 0.1, adapt_names=names, lrs=lrs)
    task_loss(model, adapted, task.query).backward()
    assert all(lrs[n].grad is not None and lrs[n].grad.abs().sum() > 0 for n in names)


def test_meta_train_refuses_holdout_tasks(dataset, tmp_path):
    model = _model(dataset)
    with pytest.raises(ValueError, match="validation-role"):
        meta_train(model, dataset.by_role("train"), dataset.by_role("holdout"), log_dir=tmp_path)
    with pytest.raises(ValueError, match="train-role"):
        meta_train(model, dataset.by_role("train", "holdout"), [], log_dir=tmp_path)


def test_early_stopping_restores_the_best_validation_epoch(dataset, tmp_path):
    model = _model(dataset)
    config = MetaConfig(method="fomaml", epochs=8, patience=2, inner_steps=1, inner_lr=3.0, outer_lr=0.05,
                        meta_batch=4, seed=1, progress=False)
    val = dataset.by_role("validation")
    result = meta_train(model, dataset.by_role("train"), val, config, log_dir=tmp_path)
    losses = [row["val_loss"] for row in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.epochs_run <= result.best_epoch + config.patience
    assert result.stopped_early == (result.epochs_run < config.epochs)
    again = evaluate_tasks(model, None, val, steps=1, lr=3.0, adapt_names=result.adapt_names)
    assert again["loss"] == pytest.approx(min(losses), rel=1e-5)  # the restored weights are the best epoch's
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, result.epochs_run + 1))
    log = json.loads((tmp_path / "metrics.json").read_text())
    assert log["summary"]["best_epoch"] == result.best_epoch
    assert log["validation_tasks"] == [t.task_id for t in val]
    assert not set(log["train_tasks"]) & {t.task_id for t in dataset.by_role("holdout")}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    write_task_dataset(folder, plans(24, 6, 0, customers=8), seed=5, null_rate=0.0)
    return load_task_dataset(folder)


@pytest.mark.slow
def test_meta_training_beats_no_adaptation_on_a_planted_signal(planted, tmp_path):
    # Each task rotates the customer-article affinity by its own angle; averaged over tasks the signal cancels,
    # so only adaptation can find it. A base-rate predictor (20 % positives) has BCE 0.5004.
    torch.manual_seed(0)
    # no support evidence: a task's planted article ids differ only in their last 3 digits, i.e. share one product
    # code, so the product log-count (~2.8) at its 0.5 prior adds the same large logit to every row (untrained loss
    # 1.81) and 15 epochs at outer_lr 0.03 do not undo it (best 0.528, measured); the evidence has its own tests
    # (test_evidence.py), this one is about MAML
    model = _model(planted, hidden=(), evidence=False)
    val = planted.by_role("validation")
    # unit episodes off: pooling a group's categories mixes their opposite rotations, which this signal is not
    config = MetaConfig(method="maml", epochs=15, patience=15, inner_steps=2, inner_lr=3.0, outer_lr=0.03,
                        meta_batch=4, seed=0, progress=False, unit_episodes=False)
    untrained = evaluate_tasks(model, None, val, steps=2, lr=3.0)
    result = meta_train(model, planted.by_role("train"), val, config, log_dir=tmp_path)
    best = result.best
    assert best["val_loss"] < 0.47
    assert best["val_loss"] < best["val_loss_unadapted"] - 0.1
    assert best["val_loss"] < untrained["loss"] - 0.02  # meta-training made adaptation better
    assert best["val_ndcg12"] > best["val_ndcg12_unadapted"]


def test_meta_train_with_the_softmax_term_uses_it_for_the_query_loss(dataset, tmp_path):
    from functools import partial

    config = MetaConfig(method="maml", epochs=2, patience=2, inner_steps=1, inner_lr=0.5, outer_lr=0.01,
                        meta_batch=4, seed=1, progress=False, softmax_weight=0.5)
    model = _model(dataset)
    val = dataset.by_role("validation")
    result = meta_train(model, dataset.by_role("train"), val, config, log_dir=tmp_path)
    names = result.adapt_names
    with_term = evaluate_tasks(model, None, val, steps=1, lr=0.5, adapt_names=names,
                               query_loss=partial(task_loss, softmax_weight=0.5))
    bce_only = evaluate_tasks(model, None, val, steps=1, lr=0.5, adapt_names=names)
    assert with_term["loss"] == pytest.approx(result.best["val_loss"], rel=1e-5)
    assert with_term["loss"] > bce_only["loss"]
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["softmax_weight"] == 0.5
    with pytest.raises(ValueError, match="softmax_weight"):
        MetaConfig(softmax_weight=float("nan"))
