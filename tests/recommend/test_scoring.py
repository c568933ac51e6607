"""top_n_blocked against a brute-force reference: ties, exclusions, the per-product cap, padding, determinism."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from fashion_meta.recommend import scoring
from fashion_meta.recommend.scoring import top_n_blocked


def reference_top_n(scores: np.ndarray, n: int, excluded: list[set[int]], groups: np.ndarray | None,
                    cap: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute force: full sort of every row by (score desc, index asc, NaN last), skip excluded, cap greedily."""
    n_customers, n_articles = scores.shape
    indices = np.full((n_customers, n), -1, dtype=np.int32)
    out = np.full((n_customers, n), np.nan, dtype=np.float32)
    counts = np.zeros(n_customers, dtype=np.int32)
    for c in range(n_customers):
        row = scores[c]
        order = sorted(range(n_articles),
                       key=lambda j: (math.isnan(row[j]), 0.0 if math.isnan(row[j]) else -row[j], j))
        per_product: Counter = Counter()
        taken: list[int] = []
        for j in order:
            if len(taken) == n:
                break
            if j in excluded[c]:
                continue
            if cap is not None and per_product[groups[j]] >= cap:
                continue
            per_product[None if groups is None else groups[j]] += 1
            taken.append(j)
        indices[c, :len(taken)] = taken
        out[c, :len(taken)] = row[taken]
        counts[c] = len(taken)
    return indices, out, counts


def random_case(seed: int, *, integer: bool, customers: int, articles: int, dim: int, twins: int = 0,
                exclusions: int = 0):
    """Vectors (integer-valued ones give exact float32 scores and many ties), twin articles, CSR exclusions."""
    rng = np.random.default_rng(seed)
    if integer:
        x = rng.integers(-2, 3, size=(customers, dim)).astype(np.float32)
        y = rng.integers(-2, 3, size=(articles, dim)).astype(np.float32)
    else:
        x = rng.standard_normal((customers, dim), dtype=np.float32)
        y = rng.standard_normal((articles, dim), dtype=np.float32)
    for _ in range(twins):  # planted ties: equal article vectors
        a, b = rng.integers(0, articles, size=2)
        y[b] = y[a]
    lengths = rng.integers(0, exclusions + 1, size=customers)
    indptr = np.r_[0, np.cumsum(lengths)]
    ind = rng.integers(0, articles, size=int(indptr[-1]))  # duplicates allowed
    excluded = [set(ind[indptr[c]:indptr[c + 1]].tolist()) for c in range(customers)]
    return x, y, (indptr, ind), excluded


def assert_same(result, expected) -> None:
    np.testing.assert_array_equal(result.indices, expected[0])
    np.testing.assert_array_equal(result.scores, expected[1])
    np.testing.assert_array_equal(result.counts, expected[2])


CASES = [  # (customers, articles, dim, n, exclusions per customer, cap, group size, block_rows)
    (37, 9, 3, 12, 3, None, 1, 7),  # A < n
    (70, 60, 4, 5, 10, 2, 4, 32),
    (65, 300, 3, 6, 40, None, 1, 64),  # integer scores: ties at the pool boundary, retries
    (33, 400, 2, 10, 5, 1, 6, 50),  # cap 1, few distinct scores
    (41, 250, 5, 8, 240, 2, 3, 16),  # exclusions leave fewer than n for some rows
    (1, 50, 3, 50, 0, 1, 50, 4096),  # one product: one pick only
    (20, 200, 1, 20, 0, 3, 9, 3),  # d = 1: huge tie groups
    (50, 2003, 8, 5, 30, None, 1, 64),  # wide rows: grouped first pool, 3 tail columns
    (30, 1500, 4, 4, 10, 1, 3, 13),  # grouped first pool under a cap, 12 tail columns
]


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_matches_brute_force_reference(case, integer):
    customers, articles, dim, n, exclusions, cap, group_size, block_rows = case
    seed = 2 * CASES.index(case) + integer
    x, y, exclude, excluded = random_case(seed, integer=integer, customers=customers, articles=articles, dim=dim,
                                          twins=articles // 5, exclusions=exclusions)
    codes = np.arange(articles) // group_size * 7 + 1000  # contiguous products, arbitrary code values
    result = top_n_blocked(x, y, n, exclude=exclude, product_codes=codes, max_per_product=cap,
                           block_rows=block_rows)
    # The scores of the reference: exact for integer vectors; for real ones the same aligned product.
    scores = (x.astype(np.float64) @ y.T.astype(np.float64)) if integer else _aligned_scores(x, y)
    expected = reference_top_n(scores, n, excluded, None if cap is None else np.unique(codes, return_inverse=True)[1],
                               cap)
    assert_same(result, expected)
    valid = result.indices >= 0
    assert np.array_equal(valid.sum(axis=1), result.counts)
    for row, count in zip(result.indices, result.counts):
        assert len(set(row[:count].tolist())) == count and (row[count:] == -1).all()


def _aligned_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x @ y.T from one matrix product whose row count is a multiple of 32, like every block of top_n_blocked."""
    rows = -(-x.shape[0] // 32) * 32
    padded = np.zeros((rows, x.shape[1]), dtype=np.float32)
    padded[:x.shape[0]] = x
    return (torch.from_numpy(padded) @ torch.from_numpy(y).T).numpy()[:x.shape[0]]


def test_same_output_for_every_block_size_and_thread_count():
    x, y, exclude, _ = random_case(5, integer=False, customers=203, articles=2500, dim=64, twins=300, exclusions=6)
    codes = np.arange(2500) // 5
    runs = [top_n_blocked(x, y, 12, exclude=exclude, product_codes=codes, max_per_product=2, block_rows=b,
                          threads=t)
            for b in (1, 7, 64, 333, 4096) for t in (1, 2)]
    for run in runs[1:]:
        assert_same(run, runs[0])


def test_ties_break_by_article_index():
    y = np.ones((6, 2), dtype=np.float32)  # every score equal
    result = top_n_blocked(np.ones((2, 2), dtype=np.float32), y, 4, exclude=(np.array([0, 1, 1]), np.array([2])))
    assert result.indices.tolist() == [[0, 1, 3, 4], [0, 1, 2, 3]]
    assert result.scores.tolist() == [[2.0] * 4] * 2
    many = top_n_blocked(np.ones((3, 1), dtype=np.float32), np.ones((5000, 1), dtype=np.float32), 3)
    assert many.indices.tolist() == [[0, 1, 2]] * 3


def test_cap_skips_articles_of_a_full_product():
    y = np.array([[5.0], [4.0], [3.0], [2.0], [1.0], [0.5]], dtype=np.float32)
    codes = np.array([10, 10, 10, 20, 20, 30])
    result = top_n_blocked(np.ones((1, 1), dtype=np.float32), y, 4, product_codes=codes, max_per_product=2,
                           exclude=(np.array([0, 1]), np.array([3])))
    assert result.indices.tolist() == [[0, 1, 4, 5]]
    assert result.scores.tolist() == [[5.0, 4.0, 1.0, 0.5]]
    assert result.counts.tolist() == [4]


def test_rows_with_fewer_eligible_articles_are_padded():
    y = np.array([[1.0], [3.0], [2.0]], dtype=np.float32)
    exclude = (np.array([0, 0, 3]), np.array([0, 1, 2]))  # customer 1 has every article excluded
    result = top_n_blocked(np.ones((2, 1), dtype=np.float32), y, 5, exclude=exclude)
    assert result.indices.tolist() == [[1, 2, 0, -1, -1], [-1] * 5]
    assert result.counts.tolist() == [3, 0]
    assert result.scores[0, :3].tolist() == [3.0, 2.0, 1.0] and np.isnan(result.scores[0, 3:]).all()
    assert np.isnan(result.scores[1]).all()
    assert result.indices.dtype == np.int32 and result.scores.dtype == np.float32


def test_nan_scores_rank_after_every_number():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((300, 4), dtype=np.float32)
    y[[3, 7]] = np.nan
    x = rng.standard_normal((5, 4), dtype=np.float32)
    result = top_n_blocked(x, y, 300)
    assert (result.indices[:, -2:] == [3, 7]).all() and np.isnan(result.scores[:, -2:]).all()
    short = top_n_blocked(x, y, 10)
    assert not np.isin(short.indices, [3, 7]).any()
    assert_same(short, reference_top_n(_aligned_scores(x, y), 10, [set()] * 5, None, None))


def test_exact_path_in_small_chunks(monkeypatch):
    monkeypatch.setattr(scoring, "_EXACT_ELEMENTS", 100)
    x, y, exclude, excluded = random_case(3, integer=True, customers=40, articles=30, dim=2, exclusions=8)
    codes = np.arange(30) % 4
    result = top_n_blocked(x, y, 25, exclude=exclude, product_codes=codes, max_per_product=5, block_rows=16)
    assert_same(result, reference_top_n(x.astype(np.float64) @ y.T, 25, excluded, codes, 5))


def test_empty_and_torch_inputs():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.randn(0, 3)
    empty = top_n_blocked(x, y, 3)
    assert empty.indices.tolist() == [[-1] * 3] * 4 and empty.counts.tolist() == [0] * 4
    assert top_n_blocked(x, torch.randn(5, 3), 0).indices.shape == (4, 0)
    assert top_n_blocked(np.zeros((0, 3)), torch.randn(5, 3), 2).indices.shape == (0, 2)
    assert top_n_blocked(x, torch.eye(3), 1).indices.shape == (4, 1)


def test_threads_are_restored_and_profile_is_filled():
    before = torch.get_num_threads()
    profile: dict[str, float] = {}
    top_n_blocked(np.ones((3, 2)), np.ones((100, 2)), 2, threads=1, profile=profile)
    assert torch.get_num_threads() == before
    assert {"matmul", "mask", "topk", "select", "exact"} <= set(profile)
    # All scores equal: nothing above the pool's smallest score is trusted, so pools 10, 40 then a full sort.
    assert profile["retried_rows"] == 3 and profile["sorted_rows"] == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"n": -1}, "n must be"),
    ({"block_rows": 0}, "block_rows"),
    ({"threads": 0}, "threads"),
    ({"max_per_product": 1}, "needs product_codes"),
    ({"max_per_product": 0, "product_codes": np.zeros(5)}, "max_per_product must be"),
    ({"max_per_product": 1, "product_codes": np.zeros(4)}, "product_codes must have shape"),
    ({"exclude": (np.array([0, 1]), np.array([0]))}, "indptr must have shape"),
    ({"exclude": (np.array([0, 2, 1]), np.array([0]))}, "CSR"),
    ({"exclude": (np.array([0, 1, 1]), np.array([5]))}, r"\[0, 5\)"),
])
def test_bad_inputs_raise(kwargs, message):
    kwargs = {"n": 2, **kwargs}
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=message):
        top_n_blocked(np.ones((2, 3)), np.ones((5, 3)), n, **kwargs)


def test_dimension_mismatch_raises():
    with pytest.raises(ValueError, match="dimension"):
        top_n_blocked(np.ones((2, 3)), np.ones((5, 4)), 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_on_exact_scores():
    x, y, exclude, _ = random_case(9, integer=True, customers=300, articles=2000, dim=8, twins=300, exclusions=20)
    codes = np.arange(2000) // 5
    kwargs = {"exclude": exclude, "product_codes": codes, "max_per_product": 2, "block_rows": 128}
    assert_same(top_n_blocked(x, y, 12, device="cuda", **kwargs), top_n_blocked(x, y, 12, **kwargs))
