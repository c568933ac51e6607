"""Launch mode: a category in its first days is ranked from its support purchases, not from its sales history.

The article features of a category launched this week are out of the range the model learnt on: a handful of
sales, and most articles unsold, so their price (``price_28d``, ``price_level``) and first sale are missing, the
very pattern that on a warm category marks a just-listed article (which sells well). Measured on a development
seed (benchmarks/RESULTS.md): transfer fine-tuning ranked a new category's purchases *below* ties (NDCG@12 0.033
vs 0.035), and a model trained with launch episodes but ranking without launch mode did as badly (0.05).

So a model meta-trained with launch episodes (``MetaConfig.cold_fraction``: the history columns hidden in support
and query) ranks the rows of a launching category with the same columns hidden, and its popularity comes
from the support evidence (``evidence.py``). A row is launching by the DESIGN.md rule for a new category, read
from its own category features: first sale less than ``new_category_days`` ago (or none), or fewer than
``min_category_history`` purchases so far (``[vocabulary]`` of the config). The rule and the hidden columns are
stored in the model card. The rule is read per row, so a support row (features of its purchase day) and a
candidate (features of the run date) of one category may fall on two sides of the 14 days; training hides a whole
episode.

The category's own history (``category_daily__*``: age, purchases, articles in stock) and the article's first-seen
age are hidden as well. On the launch day itself these point-in-time columns (as of the day before) are missing by
construction, while the purchases of later days carry them; so in a support set that spans the launch day and later
days, "category history missing" marks the launch-day purchases (all positives: no negatives can be drawn from
articles that did not exist the day before) against the later days' rows (most of them negatives), and the inner
loop learnt that instead of which articles sell. Measured on development seed 7 at K=200 (benchmarks/RESULTS.md):
adapting with these columns visible ranked the held-out categories at NDCG@12 0.12-0.17, hiding them at 0.27-0.29
(popularity in support 0.288). Within one launching category these columns are nearly the same for every candidate,
so hiding them costs the ranking little. The launch rule itself reads them before they are hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .spec import FeatureSpec

HIDDEN_PREFIXES = ("article_daily__sales_", "article_daily__buyers_", "article_daily__days_since_first_sale",
                   "article_daily__price_", "article_daily__days_since_first_seen", "category_daily__")
AGE_COLUMN = "category_daily__age_days"
HISTORY_COLUMN = "category_daily__purchases_total"


def hidden_columns(columns: Sequence[str]) -> list[str]:
    """The article feature columns that describe the article's or its category's history (hidden in launch mode)."""
    return [name for name in columns if name.startswith(HIDDEN_PREFIXES)]


@dataclass(frozen=True)
class LaunchRule:
    """Which article columns a launching category hides, and when a category is launching."""

    columns: tuple[str, ...]
    new_category_days: int = 14
    min_category_history: int = 200

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["columns"] = list(self.columns)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LaunchRule:
        return cls(tuple(d["columns"]), int(d["new_category_days"]), int(d["min_category_history"]))

    def positions(self, spec: FeatureSpec) -> list[int]:
        names = list(spec.article.columns)
        return [names.index(c) for c in self.columns if c in names]

    def launching(self, spec: FeatureSpec, article_features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Per encoded article row [N, F_a...]: is its category launching? (False when the spec lacks the columns)"""
        x = article_features.detach().cpu().numpy() if isinstance(article_features, torch.Tensor) \
            else np.asarray(article_features)
        names = list(spec.article.columns)
        if AGE_COLUMN not in names or HISTORY_COLUMN not in names:
            return np.zeros(len(x), dtype=bool)
        k = len(names)

        def raw(name: str) -> np.ndarray:
            j = names.index(name)
            s = x[:, j].astype(np.float64) * spec.article.std[j] + spec.article.mean[j]
            value = np.sign(s) * np.expm1(np.abs(s))
            return np.where(x[:, k + j] > 0.5, np.nan, value)

        age, history = raw(AGE_COLUMN), raw(HISTORY_COLUMN)
        young = np.isnan(age) | (age < self.new_category_days - 0.5)
        thin = np.nan_to_num(history, nan=0.0) < self.min_category_history - 0.5
        return young | thin

    def hide(self, spec: FeatureSpec, article_features: np.ndarray | torch.Tensor,
             rows: np.ndarray | None = None) -> np.ndarray | torch.Tensor:
        """A copy of the encoded article features with the hidden columns missing on ``rows`` (default:
        the launching rows)."""
        rows = self.launching(spec, article_features) if rows is None else rows
        positions = self.positions(spec)
        if not rows.any() or not positions:
            return article_features
        k = len(spec.article.columns)
        out = article_features.clone() if isinstance(article_features, torch.Tensor) else np.array(article_features)
        r = np.flatnonzero(rows)
        for j in positions:
            out[r, j] = 0.0
            out[r, k + j] = 1.0
        return out
