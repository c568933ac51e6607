"""Top-k ranking metrics on (ranked article ids, set of truth ids), and a seeded bootstrap interval.

Definitions (DESIGN.md, evaluation protocol), with k = 12 by default and rel(i) = 1 when the i-th ranked id is
in the truth set and has not appeared earlier in the list (a repeated id counts once, as in Kaggle's apk):

- Recall@k  = hits in the top k / min(|truth|, k)
- HitRate@k = 1 if any hit in the top k else 0
- NDCG@k    = sum_i rel(i) / log2(i + 1)  /  sum_{i=1..min(|truth|, k)} 1 / log2(i + 1)
- MAP@k     = sum_i P(i) * rel(i) / min(|truth|, k), P(i) = hits in the first i / i (Kaggle H&M MAP@12)

A customer with an empty truth set has no defined value: those functions raise; evaluation only scores
customers with at least one purchase in the query window.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np

K = 12


def _relevance(ranked: Sequence[str], truth: Collection[str], k: int) -> list[int]:
    if k < 1:
        raise ValueError("k must be >= 1")
    if len(truth) == 0:
        raise ValueError("truth set is empty: the metric is undefined")
    seen: set[str] = set()
    rel = []
    for item in list(ranked)[:k]:
        rel.append(int(item in truth and item not in seen))
        seen.add(item)
    return rel


def recall_at_k(ranked: Sequence[str], truth: Collection[str], k: int = K) -> float:
    """Hits in the top k over min(|truth|, k)."""
    return sum(_relevance(ranked, truth, k)) / min(len(truth), k)


def hit_rate_at_k(ranked: Sequence[str], truth: Collection[str], k: int = K) -> float:
    """1.0 if any of the top k is in truth, else 0.0."""
    return float(any(_relevance(ranked, truth, k)))


def ndcg_at_k(ranked: Sequence[str], truth: Collection[str], k: int = K) -> float:
    """Binary NDCG of the top k."""
    rel = _relevance(ranked, truth, k)
    dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(truth), k)))
    return dcg / idcg


def map_at_k(ranked: Sequence[str], truth: Collection[str], k: int = K) -> float:
    """Average precision at k, Kaggle H&M definition."""
    hits = 0
    total = 0.0
    for i, r in enumerate(_relevance(ranked, truth, k)):
        if r:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(truth), k)


METRICS = {"recall": recall_at_k, "ndcg": ndcg_at_k, "map": map_at_k, "hit_rate": hit_rate_at_k}


def per_customer_metrics(
    rankings: Iterable[Sequence[str]], truths: Iterable[Collection[str]], k: int = K
) -> dict[str, np.ndarray]:
    """Each metric for each (ranking, truth) pair: {"recall@12": array, "ndcg@12": ..., ...}."""
    pairs = list(zip(rankings, truths, strict=True))
    return {f"{name}@{k}": np.array([fn(r, t, k) for r, t in pairs], dtype=np.float64)
            for name, fn in METRICS.items()}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean over per-customer values, seeded.

    The values are sorted first, so the result does not depend on their order (Spark returns customers in a different
    order from run to run: without the sort two runs with identical metrics gave intervals differing in the third
    decimal)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("need a non-empty 1-d array of per-customer values")
    x = np.sort(x)
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, min(n_resamples, 2**22 // x.size))  # bound memory on large evaluations
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(x.mean()), float(low), float(high)


def bootstrap_diff_ci(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, **kwargs: Any
) -> tuple[float, float, float]:
    """Paired interval of mean(a - b) over the same customers ("no worse" = low end >= 0 or within)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired values must have the same shape")
    return bootstrap_ci(a - b, **kwargs)
