"""Ranking metrics against hand-computed values (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fashion_meta.model.metrics import (
    bootstrap_ci, bootstrap_diff_ci, hit_rate_at_k, map_at_k, ndcg_at_k, per_customer_metrics, recall_at_k,
)

L3, L5 = math.log2(3), math.log2(5)


def test_metrics_on_a_mixed_list():
    ranked, truth = ["a", "b", "c", "d"], {"b", "d", "x"}
    # hits at ranks 2 and 4; |truth| = 3
    assert recall_at_k(ranked, truth) == pytest.approx(2 / 3)  # 2 hits / min(3, 12)
    assert hit_rate_at_k(ranked, truth) == 1.0
    # DCG = 1/log2(3) + 1/log2(5); IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 1/log2(3) + 0.5
    assert ndcg_at_k(ranked, truth) == pytest.approx((1 / L3 + 1 / L5) / (1 + 1 / L3 + 0.5))
    assert ndcg_at_k(ranked, truth) == pytest.approx(0.498189, abs=1e-6)  # 1.06161 / 2.13093
    # P(2) = 1/2, P(4) = 2/4: (0.5 + 0.5) / min(3, 12) = 1/3
    assert map_at_k(ranked, truth) == pytest.approx(1 / 3)


def test_metrics_respect_the_cutoff():
    ranked, truth = ["b", "a", "d"], {"b", "d"}
    # k = 2 sees ["b", "a"]: one hit at rank 1
    assert recall_at_k(ranked, truth, k=2) == pytest.approx(1 / 2)  # 1 / min(2, 2)
    assert map_at_k(ranked, truth, k=2) == pytest.approx(1 / 2)  # P(1) = 1 -> 1 / 2
    assert ndcg_at_k(ranked, truth, k=2) == pytest.approx(1 / (1 + 1 / L3))  # 1 / (1 + 1/log2(3)) = 0.61315
    late = [f"n{i}" for i in range(12)] + ["b"]  # the hit is 13th
    assert recall_at_k(late, truth) == hit_rate_at_k(late, truth) == 0
    assert ndcg_at_k(late, truth) == map_at_k(late, truth) == 0


def test_repeated_ids_count_once_like_kaggle_apk():
    ranked, truth = ["b", "b", "d"], {"b", "d"}
    # rel = [1, 0, 1]
    assert recall_at_k(ranked, truth) == pytest.approx(1.0)  # 2 / 2
    assert map_at_k(ranked, truth) == pytest.approx((1 / 1 + 2 / 3) / 2)  # 0.8333
    assert ndcg_at_k(ranked, truth) == pytest.approx((1 + 1 / 2) / (1 + 1 / L3))  # 1.5 / 1.63093 = 0.91972


def test_large_truth_is_capped_at_k():
    truth = {f"t{i}" for i in range(20)}
    ranked = [f"t{i}" for i in range(12)]
    # 12 hits / min(20, 12) = 1; every P(i) = 1 -> 12 / 12; DCG = IDCG over 12 ranks
    assert recall_at_k(ranked, truth) == map_at_k(ranked, truth) == pytest.approx(1.0)
    assert ndcg_at_k(ranked, truth) == pytest.approx(1.0)


def test_empty_truth_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        recall_at_k(["a"], set())


def test_per_customer_metrics_shapes():
    out = per_customer_metrics([["a", "b"], ["c"]], [{"b"}, {"x"}], k=12)
    # customer 1: hit at rank 2 -> recall 1, MAP 1/2; customer 2: nothing
    np.testing.assert_allclose(out["recall@12"], [1.0, 0.0])
    np.testing.assert_allclose(out["map@12"], [0.5, 0.0])
    np.testing.assert_allclose(out["hit_rate@12"], [1.0, 0.0])
    np.testing.assert_allclose(out["ndcg@12"], [1 / L3, 0.0])


def test_bootstrap_interval_is_seeded_and_sensible():
    values = np.array([0.0, 1.0] * 50)  # mean 0.5, standard error sqrt(0.25 / 100) = 0.05
    mean, low, high = bootstrap_ci(values, n_resamples=2000, seed=7)
    assert mean == pytest.approx(0.5)
    assert 0.38 < low < 0.45 and 0.55 < high < 0.62  # about 0.5 -+ 1.96 * 0.05
    assert bootstrap_ci(values, n_resamples=2000, seed=7) == (mean, low, high)
    assert bootstrap_ci([0.3] * 10) == pytest.approx((0.3, 0.3, 0.3))
    d_mean, d_low, d_high = bootstrap_diff_ci(values, values)
    assert d_mean == d_low == d_high == 0.0
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_bootstrap_interval_does_not_depend_on_the_order_of_the_values():
    # Spark hands the evaluation its customers in a different order from run to run
    values = np.random.default_rng(3).random(500) ** 3
    shuffled = np.random.default_rng(4).permutation(values)
    assert not np.array_equal(values, shuffled)
    assert bootstrap_ci(shuffled, seed=11) == bootstrap_ci(values, seed=11)
    other = np.random.default_rng(5).random(500)
    order = np.random.default_rng(6).permutation(500)  # the same pairs, in another order
    assert bootstrap_diff_ci(values[order], other[order], seed=11) == bootstrap_diff_ci(values, other, seed=11)
