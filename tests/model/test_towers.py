"""The two-tower model: batch scoring equals pairwise forward, parameter groups, seeded init."""

from __future__ import annotations

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
