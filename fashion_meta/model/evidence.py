"""Support evidence: how often the support set's purchases name an article, or its product, as extra model input.

A new category's first purchases say which of its articles sell, and no article feature can carry that as sharply
as the counts themselves: the sales features of a launch week are a handful of units, on a scale the model learnt
from months of warm sales. So the adapted model also sees, per article, ``[log1p(purchases of the article),
log1p(purchases of its product)]`` in the support set it adapts on (``EVIDENCE_DIM`` columns), weighted by
``head.support_evidence`` (see ``towers.TwoTower``). Colour variants share a product's popularity, so the product
count pools their purchases.

Honesty of the counts:

- query rows (and the candidates ranked after adaptation) are counted against the whole support set;
- support rows are counted leave-one-out (a positive row does not count itself), otherwise the inner loop would
  learn that "count >= 1" means "bought", which is true of every support positive by construction;
- a model used without a support set (the warm model, K = 0) gets no evidence: the term is zero.

The product of an article is read from its ``article_id`` everywhere (task rows carry no ``product_code``, and
support rows and candidates must be keyed alike): the id without its last three digits when it has the H&M form
(ten digits: the product code and a three-digit colour variant), else the article itself (the product count then
repeats the article count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

EVIDENCE_DIM = 2


def product_keys(article_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """The product of each article id: the H&M product-code prefix of a ten-digit id, else the id itself."""
    ids = np.asarray(article_ids).astype(str)
    out = ids.astype(object)
    hm = np.char.str_len(ids) == 10 if ids.size else np.zeros(0, dtype=bool)
    if hm.any():
        digits = np.char.isdigit(ids)
        hm &= digits
        out[hm] = np.char.lstrip(np.array([s[:-3] for s in ids[hm]]), "0")
    return out


def _counts(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    if len(keys) == 0 or len(wanted) == 0:
        return np.zeros(len(wanted))
    values, counts = np.unique(keys.astype(str), return_counts=True)
    pos = np.searchsorted(values, wanted.astype(str))
    pos = np.minimum(pos, len(values) - 1)
    hit = values[pos] == wanted.astype(str)
    return np.where(hit, counts[pos], 0).astype(np.float64)


def evidence_for(support_positive_ids: np.ndarray, article_ids: np.ndarray,
                 products: np.ndarray | None = None, *, own: np.ndarray | None = None) -> np.ndarray:
    """``[log1p(article count), log1p(product count)]`` of ``article_ids`` among the support positives [N, 2].

    ``products``: the product of each of ``article_ids`` (default ``product_keys``); ``own``: a 0/1 mask of rows
    that are themselves one of the counted positives (leave-one-out: their own purchase is not counted).
    """
    support_positive_ids = np.asarray(support_positive_ids).astype(str)
    article_ids = np.asarray(article_ids).astype(str)
    products = product_keys(article_ids) if products is None else np.asarray(products).astype(str)
    a = _counts(support_positive_ids, article_ids)
    p = _counts(product_keys(support_positive_ids), products)
    if own is not None:
        own = np.asarray(own, dtype=np.float64)
        a, p = a - own, p - own
    if (a < 0).any() or (p < 0).any():
        raise ValueError("leave-one-out mask marks a row whose article is not among the support positives")
    return np.log1p(np.stack([a, p], axis=1)).astype(np.float32)


def support_evidence(article_ids: np.ndarray, labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Leave-one-out evidence of support rows against their own positives [N, 2] (float32, CPU)."""
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    positive = y > 0.5
    ids = np.asarray(article_ids).astype(str)
    return torch.from_numpy(evidence_for(ids[positive], ids, own=positive.astype(np.float64)))
