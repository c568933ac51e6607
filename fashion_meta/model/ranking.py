"""One ranking interface for every method, baselines included.

A ranker is fitted on one :class:`SupportSet` (one adaptation unit: the labelled support interactions that
are known, plus the candidate articles of each category with their features), then ranks candidates for
customers::

    ranker.fit(support)
    ids, scores = ranker.recommend(customers, category, n)   # [C, n'] each, n' = min(n, candidates)

``customers`` is a table (pyarrow Table, pandas DataFrame or mapping of arrays) with ``customer_id``,
``user_group``, and the customer feature and vector columns of the feature spec; candidate tables hold
``article_id`` plus the article feature and vector columns; interactions have the task-file columns
(``customer_id``, ``article_id``, ``label``, ``category``, ``user_group``, features). No Spark needed.

Every ranker returns scores sorted best first, no duplicates, only candidate articles, and breaks ties by
``article_id`` (DESIGN.md), so two runs on the same input give the same lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import torch

from .data import Batch, with_support_evidence
from .evidence import evidence_for
from .launch import LaunchRule
from .meta import METHODS, adapt
from .scoring import top_n
from .spec import FeatureSpec, TableLike, vector_column
from .towers import LOWER_PREFIXES, ModelConfig, Params, TwoTower, build_model, parameter_names
from .transfer import fine_tune, from_scratch

__all__ = [
    "SupportSet", "UNIT_KINDS", "Ranker", "PopularityRanker", "GroupPopularityRanker", "ContentRanker", "ModelRanker",
    "AdaptingRanker", "FromScratchRanker", "meta_ranker", "transfer_ranker", "adapted_ranker", "to_table",
]


def to_table(data: TableLike) -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch, pandas DataFrame or mapping of arrays ([N, D] -> list)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, Mapping):
        columns = {}
        for name, values in data.items():
            if isinstance(values, np.ndarray) and values.ndim == 2:
                flat = pa.array(values.astype(np.float32).ravel())
                columns[name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
            else:
                columns[name] = values
        return pa.table(columns)
    raise TypeError(f"expected a pyarrow Table, pandas DataFrame or mapping of arrays, got {type(data)!r}")


def _ids(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        raise ValueError(f"missing column(s): {column}")
    return table.column(column).to_numpy(zero_copy_only=False).astype(str).astype(object)


UNIT_KINDS = ("category", "user_group")


@dataclass(frozen=True)
class SupportSet:
    """What a ranker may learn from: labelled support interactions and candidate articles per category.

    ``unit``: what the support set stands for, a new ``"category"`` (its purchases over every user group) or a new
    ``"user_group"`` (its purchases over every category); a model ranker gives a group no support evidence unless
    its config says so (``ModelConfig.group_evidence``).
    """

    interactions: TableLike
    candidates: Mapping[str, TableLike]
    unit: str = "category"

    def __post_init__(self) -> None:
        if self.unit not in UNIT_KINDS:
            raise ValueError(f"unit must be one of {', '.join(UNIT_KINDS)}, got {self.unit!r}")


@runtime_checkable
class Ranker(Protocol):
    """fit on a support set, then rank a category's candidates for a table of customers."""

    name: str

    def fit(self, support: SupportSet) -> Ranker: ...

    def recommend(self, customers: TableLike, category: str, n: int) -> tuple[np.ndarray, np.ndarray]: ...


class _BaseRanker:
    """Candidate bookkeeping and top-n; subclasses provide ``_fit`` (the support interactions and the unit kind
    of the support set) and ``_scores``."""

    name = "base"

    def __init__(self) -> None:
        self._candidates: dict[str, pa.Table] | None = None

    def fit(self, support: SupportSet) -> _BaseRanker:
        candidates = {}
        for category, data in support.candidates.items():
            table = to_table(data)
            ids = _ids(table, "article_id")
            if len(np.unique(ids)) != len(ids):
                raise ValueError(f"category {category!r}: duplicate candidate article_id")
            candidates[category] = table.take(pa.array(np.argsort(ids.astype(str), kind="stable")))
        interactions = to_table(support.interactions)
        self._fit(interactions, support.unit)
        self._candidates = candidates
        return self

    def _fit(self, interactions: pa.Table, unit: str) -> None:
        pass

    def _scores(self, customers: pa.Table, category: str, candidates: pa.Table) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, customers: TableLike, category: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-n candidate ids and scores per customer, best first, ties by article_id."""
        if self._candidates is None:
            raise RuntimeError(f"{self.name}: call fit(support) before recommend")
        if n < 0:
            raise ValueError("n must be >= 0")
        if category not in self._candidates:
            raise ValueError(f"{self.name}: no candidate articles for category {category!r}")
        candidates = self._candidates[category]
        table = to_table(customers)
        ids = _ids(candidates, "article_id")
        if table.num_rows == 0 or len(ids) == 0 or n == 0:
            width = min(n, len(ids)) if table.num_rows else 0
            return np.empty((table.num_rows, width), dtype=object), np.empty((table.num_rows, width))
        scores = np.asarray(self._scores(table, category, candidates), dtype=np.float64)
        return top_n(scores, ids, n)


def _unique_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows and the index of each row's distinct row.

    Scoring distinct rows only makes articles with identical inputs (colour variants, say) get bit-identical
    scores, so they tie exactly and break by article_id, whatever their position in the matrix product.
    """
    unique, inverse = np.unique(x, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def _positives(interactions: pa.Table, columns: Sequence[str]) -> dict[str, np.ndarray]:
    if interactions.num_rows == 0:
        return {c: np.empty(0, dtype=object) for c in columns}
    missing = [c for c in ("label", *columns) if c not in interactions.column_names]
    if missing:
        raise ValueError(f"support interactions: missing column(s) {', '.join(missing)}")
    positive = interactions.column("label").to_numpy(zero_copy_only=False).astype(np.float64) > 0.5
    return {c: _ids(interactions, c)[positive] for c in columns}


def _count(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """How often each of ``wanted`` occurs in ``keys``."""
    if len(keys) == 0:
        return np.zeros(len(wanted))
    values, counts = np.unique(keys.astype(str), return_counts=True)
    lookup = dict(zip(values, counts))
    return np.array([lookup.get(w, 0) for w in wanted.astype(str)], dtype=np.float64)


class PopularityRanker(_BaseRanker):
    """Purchases of each candidate in the support set (same list for every customer)."""

    name = "popularity"

    def _fit(self, interactions: pa.Table, unit: str) -> None:
        self._pos = _positives(interactions, ("category", "article_id"))

    def _scores(self, customers: pa.Table, category: str, candidates: pa.Table) -> np.ndarray:
        in_cat = self._pos["article_id"][self._pos["category"] == category]
        counts = _count(in_cat, _ids(candidates, "article_id"))
        return np.broadcast_to(counts, (customers.num_rows, len(counts)))


class GroupPopularityRanker(_BaseRanker):
    """Purchases within the customer's user group, plus ``prior_weight`` x the overall purchase share."""

    name = "group_popularity"

    def __init__(self, prior_weight: float = 1.0) -> None:
        super().__init__()
        self.prior_weight = prior_weight

    def _fit(self, interactions: pa.Table, unit: str) -> None:
        self._pos = _positives(interactions, ("category", "article_id", "user_group"))

    def _scores(self, customers: pa.Table, category: str, candidates: pa.Table) -> np.ndarray:
        in_cat = self._pos["category"] == category
        articles, groups = self._pos["article_id"][in_cat], self._pos["user_group"][in_cat]
        cand = _ids(candidates, "article_id")
        overall = _count(articles, cand)
        prior = self.prior_weight * overall / max(1.0, overall.sum())
        customer_groups = _ids(customers, "user_group")
        out = np.empty((len(customer_groups), len(cand)))
        for group in np.unique(customer_groups.astype(str)):
            out[customer_groups == group] = _count(articles[groups == group], cand) + prior
        return out


class ContentRanker(_BaseRanker):
    """Cosine similarity of the customer's history vector to the article text vector."""

    name = "content"

    def __init__(self, spec: FeatureSpec, popularity_weight: float = 0.0) -> None:
        super().__init__()
        self.spec = spec
        self.popularity_weight = popularity_weight

    def _fit(self, interactions: pa.Table, unit: str) -> None:
        self._popularity = PopularityRanker()
        self._popularity._fit(interactions, unit)

    def _scores(self, customers: pa.Table, category: str, candidates: pa.Table) -> np.ndarray:
        cv, _ = vector_column(customers, self.spec.customer.vector, self.spec.vector_dim)
        av, inverse = _unique_rows(vector_column(candidates, self.spec.article.vector, self.spec.vector_dim)[0])
        cv = cv / np.maximum(np.linalg.norm(cv, axis=1, keepdims=True), 1e-12)
        av = av / np.maximum(np.linalg.norm(av, axis=1, keepdims=True), 1e-12)
        scores = (cv.astype(np.float64) @ av.astype(np.float64).T)[:, inverse]
        if self.popularity_weight:
            pop = self._popularity._scores(customers, category, candidates)[:1]
            scores = scores + self.popularity_weight * pop / max(1.0, pop.sum())
        return scores


class ModelRanker(_BaseRanker):
    """A two-tower model under fixed parameters (the warm model, no adaptation)."""

    name = "warm"

    def __init__(self, model: TwoTower, params: Params | None, spec: FeatureSpec, *, name: str | None = None,
                 customer_chunk: int = 8192) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        self.params = {n: p.detach() for n, p in (params.items() if params is not None
                                                  else model.named_parameters())}
        self.customer_chunk = customer_chunk
        if name is not None:
            self.name = name

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def _active_params(self) -> Params:
        return self.params

    def _evidence(self, candidates: pa.Table) -> np.ndarray | None:
        """Support evidence of the candidates [A, 2], or None (no support set: the warm model)."""
        return None

    def _article_inputs(self, candidates: pa.Table) -> np.ndarray:
        return self.spec.article_inputs(candidates)

    @torch.no_grad()
    def _scores(self, customers: pa.Table, category: str, candidates: pa.Table) -> np.ndarray:
        params = self._active_params()
        inputs = self._article_inputs(candidates)
        evidence = self._evidence(candidates)
        width = inputs.shape[1]
        unique, inverse = _unique_rows(inputs if evidence is None else np.hstack([inputs, evidence]))
        x = torch.from_numpy(np.ascontiguousarray(unique[:, :width])).to(self.device)
        e = None if evidence is None else torch.from_numpy(np.ascontiguousarray(unique[:, width:])).to(self.device)
        v = self.model.encode_articles(params, x, e)
        x_c = torch.from_numpy(self.spec.customer_inputs(customers))
        parts = [(self.model.encode_customers(params, x_c[i:i + self.customer_chunk].to(self.device)) @ v.T).cpu()
                 for i in range(0, len(x_c), self.customer_chunk)]
        return torch.cat(parts).double().numpy()[:, inverse]


Adapter = Callable[[TwoTower, Params, Batch], Params]


class AdaptingRanker(ModelRanker):
    """A two-tower model adapted on the support interactions by ``adapter`` (meta-adaptation, fine-tuning)."""

    def __init__(self, model: TwoTower, params: Params | None, spec: FeatureSpec, adapter: Adapter, *,
                 name: str, launch: LaunchRule | None = None) -> None:
        super().__init__(model, params, spec, name=name)
        self.adapter = adapter
        self.launch = launch
        self.adapted: Params | None = None
        self._support_positives: np.ndarray | None = None

    def _article_inputs(self, candidates: pa.Table) -> np.ndarray:
        inputs = super()._article_inputs(candidates)
        return inputs if self.launch is None else self.launch.hide(self.spec, inputs)

    def _fit(self, interactions: pa.Table, unit: str) -> None:
        batch = Batch.from_table(interactions, self.spec) if interactions.num_rows else None
        if batch is None:
            self.adapted, self._support_positives = self.params, None
            return
        if self.launch is not None:
            batch = replace(batch, article_features=self.launch.hide(self.spec, batch.article_features))
        if self.model.config.uses_evidence(group_unit=unit == "user_group"):
            batch, _ = with_support_evidence(batch)
            self._support_positives = batch.article_ids[batch.labels.numpy() > 0.5]
        else:  # no evidence in adaptation, none on the candidates
            batch, self._support_positives = batch.with_evidence(None), None
        self.adapted = self.adapter(self.model, self.params, batch.to(self.device))

    def _active_params(self) -> Params:
        assert self.adapted is not None
        return self.adapted

    def _evidence(self, candidates: pa.Table) -> np.ndarray | None:
        if self._support_positives is None or not getattr(self.model.config, "evidence", False):
            return None
        return evidence_for(self._support_positives, _ids(candidates, "article_id"))


class FromScratchRanker(ModelRanker):
    """A fresh two-tower model trained on the support interactions only."""

    def __init__(self, spec: FeatureSpec, config: ModelConfig = ModelConfig(), *, steps: int = 200,
                 lr: float = 1e-2, seed: int = 0, name: str = "from_scratch") -> None:
        model = build_model(spec.customer_input_dim, spec.article_input_dim, config, seed=seed)
        super().__init__(model, None, spec, name=name)
        self.config, self.steps, self.lr, self.seed = config, steps, lr, seed

    def _fit(self, interactions: pa.Table, unit: str) -> None:
        batch = Batch.from_table(interactions, self.spec)
        self.model, self.params = from_scratch(batch, self.config, steps=self.steps, lr=self.lr, seed=self.seed)


def meta_ranker(model: TwoTower, params: Params | None, spec: FeatureSpec, *, method: str, steps: int, lr: float,
                adapt_names: Sequence[str] | None = None, lrs: Mapping[str, torch.Tensor] | None = None,
                name: str | None = None, launch: LaunchRule | None = None) -> AdaptingRanker:
    """Meta-adapted ranking: ``steps`` of ``adapt`` on the support set, as the meta-learner ``method`` does."""
    if method not in METHODS:
        raise ValueError(f"unknown meta-learner {method!r}")
    if METHODS[method].learn_lrs and lrs is None:
        raise ValueError(f"{method} needs its learned inner learning rates (lrs=)")
    names = list(adapt_names) if adapt_names is not None else parameter_names(model, METHODS[method].adapt)
    fixed = {k: v.detach() for k, v in lrs.items()} if lrs is not None else None
    adapter = partial(_adapt_detached, steps=steps, lr=lr, adapt_names=names, lrs=fixed)
    return AdaptingRanker(model, params, spec, adapter, name=name or f"meta_{method}", launch=launch)


def _adapt_detached(model: TwoTower, params: Params, support: Batch, **kwargs: Any) -> Params:
    return adapt(model, params, support, kwargs.pop("steps"), kwargs.pop("lr"), **kwargs)


def transfer_ranker(model: TwoTower, params: Params | None, spec: FeatureSpec, *, steps: int, lr: float,
                    frozen_prefixes: Sequence[str] = LOWER_PREFIXES, name: str = "transfer") -> AdaptingRanker:
    """Transfer fine-tuning: ``steps`` gradient steps with the lower layers frozen."""
    adapter = partial(fine_tune, steps=steps, lr=lr, frozen_prefixes=tuple(frozen_prefixes))
    return AdaptingRanker(model, params, spec, adapter, name=name)


def adapted_ranker(loaded: Any) -> AdaptingRanker:
    """The serving ranker of a registry model (``checkpoint.LoadedModel``), following its card's recipe."""
    recipe = loaded.card.get("adaptation") or {}
    kind = recipe.get("kind")
    if kind == "meta":
        launch = LaunchRule.from_dict(recipe["launch"]) if recipe.get("launch") else None
        return meta_ranker(loaded.model, loaded.params(), loaded.spec, method=recipe["method"],
                           steps=int(recipe["steps"]), lr=float(recipe["lr"]), adapt_names=recipe.get("adapt_names"),
                           lrs=loaded.inner_lrs, launch=launch)
    if kind == "fine_tune":
        return transfer_ranker(loaded.model, loaded.params(), loaded.spec, steps=int(recipe["steps"]),
                               lr=float(recipe["lr"]), frozen_prefixes=recipe.get("frozen_prefixes", LOWER_PREFIXES))
    raise ValueError(f"model {loaded.version}: card has no known adaptation recipe ({kind!r})")
