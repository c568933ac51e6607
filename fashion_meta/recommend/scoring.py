"""Scoring core of the nightly top-N job: blocked scores, exclusions, a per-product cap, exact top-n.

``top_n_blocked`` scores customers against articles one block of rows at a time (one matrix product per block,
so at most ``block_rows x A`` scores exist at once), sets excluded (customer, article) pairs to -inf, and keeps
the n best eligible articles of each row.

**Order.** A row's ranking is the total order (score descending, article index ascending), NaN scores after
every number (``fashion_meta.model.scoring`` does the same). Articles come sorted by article_id, so equal scores
break by article_id (DESIGN.md). Excluded articles are never returned. With a cap, articles are taken greedily
in that order and one is skipped when ``max_per_product`` articles of its product are already taken. A row with
fewer than n eligible articles returns fewer (``counts``); padding is index -1 and score NaN. No index repeats.

**Why it is exact although ``torch.topk`` is not stable.** The fast path takes ``topk`` of a pool of
``k > n`` entries per row. Which of several entries tied at the pool's smallest score ``topk`` picks is
unspecified, but every entry of the row scoring strictly above the pool's smallest score is in the pool. The pool
is re-sorted by (score descending, index ascending) with a stable ``np.lexsort``, and only its entries strictly
above its smallest score are trusted: they are exactly the head of the row's total order, and the greedy cap
over them depends on earlier entries only. A row is finished there when n picks are trusted. Otherwise (ties at
the pool boundary, a cap or exclusions that used up the pool) it is retried with a pool 4 times larger; rows with
a NaN in the pool, and rows that would need a pool as large as the row, are fully sorted with ``np.lexsort``.

**Same output for every block size and thread count.** The tie-break above only needs the scores. The scores are
bit-identical whatever ``block_rows`` and ``threads`` are because every matrix product on CPU has a row count
that is a multiple of ``_ROW_ALIGN`` (the last block is zero-padded; ``block_rows`` is rounded up to it): with
the MKL sgemm that PyTorch ships, a row's dot products then do not depend on how many rows share the call, while
a product of, say, 1 or 333 rows takes a different kernel and changes last bits (checked in the tests). On CUDA
every block is padded to the full ``block_rows``, so results are reproducible for a given ``block_rows``;
cuBLAS may pick another kernel for another block size.

**Pool size.** Without a cap the pool starts at n + 8 entries. A pool of ``n * f`` entries, f = ceil(largest
product / max_per_product), always holds n picks under the cap; the first pool uses ``min(f, 2)`` (so
n * 2 + 8 entries) because a pool costs about linearly in its size and most rows need far fewer than the worst
case; a row where the cap skips more than n + 8 of them is retried with 4 times the pool (8 n + 32 >= n * f for
f up to 8). The first pool of a block comes from ``_pool``, which avoids a ``topk`` over whole rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch

from fashion_meta.model.threads import torch_threads

_ROW_ALIGN = 32  # every CPU matrix product has a multiple of this many rows (see module docstring)
_POOL_SLACK = 8  # pool entries beyond what the cap needs, so that ties at the n-th score rarely force a retry
_POOL_GROWTH = 4
_FIRST_CAP_FACTOR = 2  # see the module docstring
_EXACT_ELEMENTS = 1 << 22  # scores per full sort on the exact path (bounds its memory)
_MIN_GROUPS, _MAX_GROUPS = 8, 16  # column groups of the first pool (see _pool)


class TopN(NamedTuple):
    """Per customer: article indices [C, n] int32 best first (-1 = padding), scores [C, n] float32 (NaN =
    padding), counts [C] int32 (how many entries are real)."""

    indices: np.ndarray
    scores: np.ndarray
    counts: np.ndarray


def top_n_blocked(
    customer_vecs: np.ndarray | torch.Tensor,
    article_vecs: np.ndarray | torch.Tensor,
    n: int,
    *,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    product_codes: np.ndarray | None = None,
    max_per_product: int | None = None,
    block_rows: int = 4096,
    threads: int | None = None,
    device: str | torch.device = "cpu",
    profile: MutableMapping[str, float] | None = None,
) -> TopN:
    """Best n articles per customer by dot product [C, d] x [A, d], excluded pairs and the product cap applied.

    ``exclude``: CSR ``(indptr [C+1], indices)`` of article indices excluded per customer (a scipy CSR matrix
    works too). ``product_codes`` [A] with ``max_per_product``: at most that many articles per product code.
    ``threads``: torch threads for the call (restored after). ``profile``: if given, seconds per phase
    (``matmul``, ``mask``, ``topk``, ``select``, ``exact``) are added to it, and the numbers of rows that needed
    a larger pool (``retried_rows``, once per retry) or a full sort (``sorted_rows``).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    dev = torch.device(device)
    x = _as_matrix(customer_vecs, "customer_vecs", dev)
    y = _as_matrix(article_vecs, "article_vecs", dev)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"customer_vecs have dimension {x.shape[1]}, article_vecs {y.shape[1]}")
    n_customers, n_articles = x.shape[0], y.shape[0]
    excl = _check_exclusions(exclude, n_customers, n_articles)
    groups, cap = _check_cap(product_codes, max_per_product, n_articles)

    indices = np.full((n_customers, n), -1, dtype=np.int32)
    scores = np.full((n_customers, n), np.nan, dtype=np.float32)
    counts = np.zeros(n_customers, dtype=np.int32)
    if n == 0 or n_customers == 0 or n_articles == 0:
        return TopN(indices, scores, counts)

    pool = _pool_size(n, groups, cap)
    rows_per_block = -(-block_rows // _ROW_ALIGN) * _ROW_ALIGN
    timer = _Timer(profile, dev)
    with torch_threads(threads), torch.no_grad():
        yt = y.T
        buffer = torch.empty((min(rows_per_block, _padded(n_customers, dev, rows_per_block)), n_articles),
                             dtype=torch.float32, device=dev)
        for start in range(0, n_customers, rows_per_block):
            stop = min(start + rows_per_block, n_customers)
            with timer("matmul"):
                block = _block_scores(x[start:stop], yt, buffer, dev, rows_per_block)
            with timer("mask"):
                ex_rows, ex_cols = _block_exclusions(excl, start, stop)
                if ex_rows.size:
                    block[torch.from_numpy(ex_rows).to(dev), torch.from_numpy(ex_cols).to(dev)] = -math.inf
            out = (indices[start:stop], scores[start:stop], counts[start:stop])
            _rank_block(block, n, pool, (ex_rows, ex_cols), groups, cap, out, timer)
    return TopN(indices, scores, counts)


def _as_matrix(values: np.ndarray | torch.Tensor, name: str, device: torch.device) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        t = values.detach()
    else:
        t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float32).contiguous()


def _check_exclusions(exclude, n_customers: int, n_articles: int) -> tuple[np.ndarray, np.ndarray] | None:
    if exclude is None:
        return None
    if hasattr(exclude, "indptr") and hasattr(exclude, "indices"):
        indptr, ind = exclude.indptr, exclude.indices
    else:
        indptr, ind = exclude
    indptr = np.asarray(indptr, dtype=np.int64)
    ind = np.asarray(ind, dtype=np.int64)
    if indptr.shape != (n_customers + 1,):
        raise ValueError(f"exclude indptr must have shape ({n_customers + 1},), got {indptr.shape}")
    if ind.ndim != 1 or indptr[0] != 0 or indptr[-1] != ind.size or np.any(np.diff(indptr) < 0):
        raise ValueError("exclude must be CSR: indptr starts at 0, never decreases and ends at len(indices)")
    if ind.size and (ind.min() < 0 or ind.max() >= n_articles):
        raise ValueError(f"exclude indices must lie in [0, {n_articles})")
    return indptr, ind


def _check_cap(product_codes, max_per_product: int | None, n_articles: int) -> tuple[np.ndarray | None, int]:
    if max_per_product is None:
        return None, 0
    if max_per_product < 1:
        raise ValueError(f"max_per_product must be >= 1, got {max_per_product}")
    if product_codes is None:
        raise ValueError("max_per_product needs product_codes")
    codes = np.asarray(product_codes)
    if codes.shape != (n_articles,):
        raise ValueError(f"product_codes must have shape ({n_articles},), got {codes.shape}")
    return np.unique(codes, return_inverse=True)[1].astype(np.int64).reshape(-1), int(max_per_product)


def _pool_size(n: int, groups: np.ndarray | None, cap: int) -> int:
    factor = 1
    if groups is not None and groups.size:
        factor = min(_FIRST_CAP_FACTOR, -(-int(np.bincount(groups).max()) // cap))
    return n * factor + _POOL_SLACK


def _padded(rows: int, device: torch.device, rows_per_block: int) -> int:
    """Rows of the matrix product for a block of ``rows`` customers (see the module docstring)."""
    if device.type == "cpu":
        return -(-rows // _ROW_ALIGN) * _ROW_ALIGN
    return rows_per_block


def _block_scores(xb: torch.Tensor, yt: torch.Tensor, buffer: torch.Tensor, device: torch.device,
                  rows_per_block: int) -> torch.Tensor:
    """Scores [rows, A] of one block, computed with a padded, freshly aligned left operand."""
    rows = xb.shape[0]
    padded = _padded(rows, device, rows_per_block)
    left = torch.zeros((padded, xb.shape[1]), dtype=torch.float32, device=device)
    left[:rows].copy_(xb)
    out = buffer[:padded] if padded <= buffer.shape[0] else torch.empty((padded, yt.shape[1]), device=device)
    torch.mm(left, yt, out=out)
    return out[:rows]


def _block_exclusions(excl, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(row within the block, article) of every excluded pair of customers start..stop-1."""
    if excl is None:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    indptr, ind = excl
    lengths = np.diff(indptr[start:stop + 1])
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), lengths)
    return rows, ind[indptr[start]:indptr[stop]]


def _rank_block(block: torch.Tensor, n: int, pool: int, excluded: tuple[np.ndarray, np.ndarray],
                groups: np.ndarray | None, cap: int, out: tuple[np.ndarray, np.ndarray, np.ndarray],
                timer: _Timer) -> None:
    """Fill ``out`` (indices, scores, counts of the block's rows) from the block's masked scores."""
    n_rows, n_articles = block.shape
    pending = np.arange(n_rows)
    to_sort: list[np.ndarray] = []
    k = pool
    while pending.size and k < n_articles:
        if k != pool:
            timer.count("retried_rows", pending.size)
        with timer("topk"):
            rows = block if pending.size == n_rows else block[torch.from_numpy(pending).to(block.device)]
            vals_t, cols_t = _pool(rows, k)
            vals, cols = vals_t.cpu().numpy(), cols_t.cpu().numpy()
        with timer("select"):
            order = np.lexsort((cols, -vals), axis=-1)  # stable total order; NaN last
            vals = np.take_along_axis(vals, order, axis=1)
            cols = np.take_along_axis(cols, order, axis=1)
            has_nan = np.isnan(vals[:, -1])
            with np.errstate(invalid="ignore"):
                trusted = vals > vals[:, -1:]  # nothing is trusted in a row with NaN
            picked = _cap_greedily(cols, trusted, groups, cap)
            done = picked.sum(axis=1) >= n
            _write(out, pending[done], cols[done], vals[done], picked[done], n)
            to_sort.append(pending[~done & has_nan])
            pending = pending[~done & ~has_nan]
        k *= _POOL_GROWTH
    to_sort.append(pending)
    rest = np.sort(np.concatenate(to_sort))
    if rest.size:
        timer.count("sorted_rows", rest.size)
        with timer("exact"):
            _rank_exactly(block, rest, n, excluded, groups, cap, out)


def _pool(block: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, columns) [rows, k] holding the k largest scores of each row (NaN counts as largest).

    ``torch.topk`` over a whole row costs several times a pass over it, so with enough columns the row is first
    cut into ``g`` strided groups (column j is in group j mod q, q = A // g; the last A - g*q columns are always
    kept), the k groups with the largest maxima are found on the [rows, q] matrix of group maxima, and ``topk``
    runs on the members of those groups only. Every column left out lies in a group whose maximum is at most the
    smallest selected maximum, so it cannot beat the k-th largest candidate.
    """
    n_rows, n_articles = block.shape
    # ``torch.topk`` on CPU is quickest per element when the row has at least 64 k entries (a heap instead of
    # nth_element), so the group maxima get that width when they can; g between 8 and 16 was quickest here.
    g = min(_MAX_GROUPS, max(_MIN_GROUPS, n_articles // (64 * k)))
    q = n_articles // g
    if q < 4 * k or not block.is_contiguous():
        return torch.topk(block, k, dim=1)
    maxima = block.as_strided((n_rows, g, q), (n_articles, q, 1)).amax(dim=1)  # amax propagates NaN
    groups = torch.topk(maxima, k, dim=1, sorted=False).indices
    candidates = (groups.unsqueeze(2) + q * torch.arange(g, device=block.device)).reshape(n_rows, k * g)
    if g * q < n_articles:
        tail = torch.arange(g * q, n_articles, device=block.device)
        candidates = torch.cat([candidates, tail.expand(n_rows, -1)], dim=1)
    vals, positions = torch.topk(torch.gather(block, 1, candidates), k, dim=1)
    return vals, torch.gather(candidates, 1, positions)


def _rank_exactly(block: torch.Tensor, rows: np.ndarray, n: int, excluded: tuple[np.ndarray, np.ndarray],
                  groups: np.ndarray | None, cap: int, out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Full sort of the given rows of the block: eligible by (score desc, index asc), NaN then excluded last."""
    n_articles = block.shape[1]
    ex_rows, ex_cols = excluded
    step = max(1, _EXACT_ELEMENTS // n_articles)
    for lo in range(0, rows.size, step):
        chunk = rows[lo:lo + step]
        vals = block[torch.from_numpy(chunk).to(block.device)].cpu().numpy()
        position = np.full(block.shape[0], -1, dtype=np.int64)
        position[chunk] = np.arange(chunk.size)
        is_excluded = np.zeros(vals.shape, dtype=bool)
        hit = position[ex_rows] >= 0
        is_excluded[position[ex_rows[hit]], ex_cols[hit]] = True
        is_nan = np.isnan(vals)
        cols = np.broadcast_to(np.arange(n_articles), vals.shape)
        order = np.lexsort((cols, np.where(is_nan, 0.0, -vals), is_nan, is_excluded), axis=-1)
        vals = np.take_along_axis(vals, order, axis=1)
        cols = np.take_along_axis(cols, order, axis=1)
        eligible = ~np.take_along_axis(is_excluded, order, axis=1)
        _write(out, chunk, cols, vals, _cap_greedily(cols, eligible, groups, cap), n)


def _cap_greedily(cols: np.ndarray, eligible: np.ndarray, groups: np.ndarray | None, cap: int) -> np.ndarray:
    """Mask of the entries taken, in rank order: eligible, and fewer than ``cap`` eligible earlier ones of
    the same product in the row."""
    if groups is None:
        return eligible
    n_groups = int(groups.max()) + 1
    g = np.where(eligible, groups[cols], n_groups)  # ineligible entries count in a group of their own
    key = (np.arange(cols.shape[0], dtype=np.int64)[:, None] * (n_groups + 1) + g).ravel()
    order = np.argsort(key, kind="stable")  # stable: within a (row, product) run, rank order is kept
    sorted_key = key[order]
    pos = np.arange(key.size)
    run_start = np.maximum.accumulate(np.where(np.r_[True, sorted_key[1:] != sorted_key[:-1]], pos, 0))
    occurrence = np.empty_like(pos)
    occurrence[order] = pos - run_start
    return eligible & (occurrence.reshape(cols.shape) < cap)


def _write(out: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
           picked: np.ndarray, n: int) -> None:
    """Write the first n picked entries of each given row (already in rank order) into ``out``."""
    indices, scores, counts = out
    taken = np.cumsum(picked, axis=1)
    r, p = np.nonzero(picked & (taken <= n))
    rank = taken[r, p] - 1
    indices[rows[r], rank] = cols[r, p]
    scores[rows[r], rank] = vals[r, p]
    counts[rows] = np.minimum(taken[:, -1], n) if taken.shape[1] else 0


class _Timer:
    """Adds wall seconds per phase and row counts to ``profile`` (synchronising CUDA around each phase); a no-op
    without it."""

    def __init__(self, profile: MutableMapping[str, float] | None, device: torch.device) -> None:
        self.profile = profile
        self.cuda = device.type == "cuda"

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self.profile is None:
            yield
            return
        if self.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.profile[phase] = self.profile.get(phase, 0.0) + time.perf_counter() - start

    def count(self, key: str, rows: int) -> None:
        if self.profile is not None:
            self.profile[key] = self.profile.get(key, 0) + rows
