"""Batch scoring helpers: deterministic top-n of a score matrix, and query-set ranking quality of a task."""

from __future__ import annotations

import numpy as np
import torch

from .data import Batch
from .metrics import K, ndcg_at_k
from .towers import Params, TwoTower

_ROWS_PER_CHUNK = 4096


def top_n_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """Column indices of the n best scores per row [C, min(n, A)]; ties keep column order, NaN ranks last.

    Callers order columns by article_id, so ties break by article_id (DESIGN.md).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"expected a [customers, articles] matrix, got shape {s.shape}")
    width = min(n, s.shape[1])
    out = np.empty((s.shape[0], width), dtype=np.int64)
    for start in range(0, s.shape[0], _ROWS_PER_CHUNK):
        block = -s[start:start + _ROWS_PER_CHUNK]
        block = np.where(np.isnan(block), np.inf, block)
        out[start:start + _ROWS_PER_CHUNK] = np.argsort(block, axis=1, kind="stable")[:, :width]
    return out


def top_n(scores: np.ndarray, article_ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids [C, n'], scores [C, n']) best first, n' = min(n, A); ties break by article_id."""
    ids = np.asarray(article_ids).astype(str).astype(object)
    order = np.argsort(ids, kind="stable")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("candidate article ids must be unique")
    s = np.asarray(scores, dtype=np.float64)[:, order]
    idx = top_n_indices(s, n)
    return ids[order][idx], np.take_along_axis(s, idx, axis=1)


@torch.no_grad()
def query_ndcg(model: TwoTower, params: Params | None, batch: Batch, k: int = K) -> float:
    """Mean NDCG@k over the query customers with a purchase, ranking the batch's distinct articles.

    Each customer and article is encoded from its earliest row in the batch; NaN when no customer bought.
    """
    if len(batch) == 0:
        return float("nan")
    customers, c_first = np.unique(batch.customer_ids.astype(str), return_index=True)
    articles, a_first = np.unique(batch.article_ids.astype(str), return_index=True)  # sorted: ties by id
    c_idx = torch.from_numpy(c_first).to(batch.device)
    a_idx = torch.from_numpy(a_first).to(batch.device)
    evidence = None if batch.evidence is None else batch.evidence[a_idx]
    scores = model.score(params, batch.customer_inputs[c_idx], batch.article_inputs[a_idx], evidence).cpu().numpy()
    ranked = top_n_indices(scores, k)
    labels = batch.labels.cpu().numpy() > 0.5
    c_pos = np.searchsorted(customers, batch.customer_ids.astype(str))
    a_pos = np.searchsorted(articles, batch.article_ids.astype(str))
    truth: list[set[int]] = [set() for _ in customers]
    for c, a in zip(c_pos[labels], a_pos[labels]):
        truth[c].add(int(a))
    values = [ndcg_at_k(list(ranked[i]), truth[i], k) for i in range(len(customers)) if truth[i]]
    return float(np.mean(values)) if values else float("nan")
