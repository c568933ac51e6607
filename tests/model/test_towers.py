"""The two-tower model: batch scoring equals pairwise forward, parameter groups, seeded init."""

from __future__ import annotations

import math

import pytest
import torch

from fashion_meta.model.towers import ModelConfig, build_model, parameter_names


def _model(bias: bool = True):
    return build_model(7, 5, ModelConfig(hidden=(6,), dim=4, bias=bias), seed=3)


def test_matrix_scores_equal_pairwise_logits():
    gen = torch.Generator().manual_seed(0)
    xc, xa = torch.randn(3, 7, generator=gen), torch.randn(4, 5, generator=gen)
    for bias in (True, False):
        model = _model(bias)
        scores = model.score(None, xc, xa)  # [3, 4] by one matrix product
        assert scores.shape == (3, 4) and model.encode_customers(None, xc).shape == (3, model.embedding_dim)
        pairs = model(xc.repeat_interleave(4, 0), xa.repeat(3, 1)).reshape(3, 4)
        torch.testing.assert_close(scores, pairs)


def test_functional_params_are_used_and_module_untouched():
    model = _model()
    xc, xa = torch.randn(2, 7), torch.randn(3, 5)
    own = dict(model.named_parameters())
    torch.testing.assert_close(model.score(own, xc, xa), model.score(None, xc, xa))
    shifted = {n: p + 0.5 if n.startswith("head.article") else p for n, p in own.items()}
    before = {n: p.clone() for n, p in own.items()}
    assert not torch.allclose(model.score(shifted, xc, xa), model.score(None, xc, xa))
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_parameter_groups_by_prefix():
    model = _model()
    every = parameter_names(model, "all")
    head, lower = parameter_names(model, "head"), parameter_names(model, "lower")
    assert sorted(head + lower) == sorted(every)
    assert head == ["head.customer.weight", "head.customer.bias", "head.article.weight", "head.article.bias",
                    "head.article_bias.weight", "head.article_bias.bias", "head.support_evidence.weight"]
    assert all(n.startswith("lower.") for n in lower) and lower


def test_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(11)
    expected = torch.rand(1)
    torch.manual_seed(11)
    a = build_model(7, 5, seed=1)
    assert torch.rand(1) == expected
    b, c = build_model(7, 5, seed=1), build_model(7, 5, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_group_softmax_loss_matches_hand_computed_values():
    from fashion_meta.model.towers import group_softmax_loss

    # group 0: purchase 2.0 and two negatives (0.0, 1.0); group 1: two purchases (1.0, -1.0) and one negative 0.5;
    # group 2: a purchase with no negative (left out)
    logits = torch.tensor([2.0, 0.0, 1.0, 1.0, -1.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1, 0, 0, 1, 1, 0, 1], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    expected = (-math.log(math.e ** 2 / (math.e ** 2 + 1 + math.e))
                - math.log(math.e / (math.e + math.e ** 0.5))
                - math.log(math.e ** -1 / (math.e ** -1 + math.e ** 0.5))) / 3
    loss = group_softmax_loss(logits, labels, groups)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    # large logits: the per-group shift keeps it finite and unchanged
    shifted = group_softmax_loss(logits + 1000.0, labels, groups)
    assert shifted.item() == pytest.approx(expected, rel=1e-9)
    loss.backward()
    assert logits.grad[6] == 0.0 and logits.grad[0] < 0 and logits.grad[1] > 0  # the lone purchase gets no gradient


def test_group_softmax_loss_without_rivals_is_zero_and_twice_differentiable():
    from fashion_meta.model.towers import group_softmax_loss

    logits = torch.tensor([0.3, -0.2], requires_grad=True)
    alone = group_softmax_loss(logits, torch.tensor([1.0, 1.0]), torch.tensor([0, 1]))
    assert alone.item() == 0.0 and alone.requires_grad
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.5, 0.5, 0.5]])
    loss = group_softmax_loss(x @ w, torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0, 0, 1, 1]))
    (g,) = torch.autograd.grad(loss, w, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), w)
    assert g.norm() > 0 and h.norm() > 0  # a second-order outer loss has a non-zero Hessian term


def test_group_softmax_loss_counts_a_negative_whose_exp_underflows():
    from fashion_meta.model.towers import group_softmax_loss, training_loss

    # group 0: the purchase beats its negative by 1000 (exp underflows to 0; loss ~0, still a ranked purchase);
    # group 1: a tie (log 2)
    logits = torch.tensor([0.0, -1000.0, 0.0, 0.0], dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    groups = torch.tensor([0, 0, 1, 1])
    assert group_softmax_loss(logits, labels, groups).item() == pytest.approx(math.log(2) / 2, rel=1e-12)
    bce = training_loss(logits, labels, None)
    both = training_loss(logits, labels, groups, softmax_weight=2.0)
    assert both.item() == pytest.approx(bce.item() + math.log(2), rel=1e-12)
    with pytest.raises(ValueError, match="group"):
        training_loss(logits, labels, None, softmax_weight=1.0)
