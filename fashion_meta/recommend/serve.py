"""Serving plan and per-batch scoring of the nightly top-N job (torch, numpy and pyarrow only; no Spark).

The driver builds one :class:`ServingPlan`: the model's weights under every parameter set that serving needs (the
current model; one adapted copy per new category and per new user group), the candidate articles of every category
already encoded under each parameter set that category uses, and the group x category features. The plan is small
(articles, not customers) and is shipped to wherever customers are scored: Spark Python workers through
``mapInArrow`` (``score_batches``), or the driver itself (its GPU when there is one).

Per batch of customers, ``score_batch`` encodes the customer-side inputs once, and per category swaps in the
group x category features of each customer's group, encodes the customers under the parameter set of their segment
and calls :func:`~fashion_meta.recommend.scoring.top_n_blocked` against the pre-encoded articles: one matrix
product per block, exclusions (articles already bought, unless the category is a repeat-purchase one) and the
per-product cap applied exactly. Nothing is ever computed per (customer, article) row in Spark.

Which parameters a (customer, category) row uses, and its ``serving_mode``:

- category new (DESIGN.md rule) and adapted on its support: the category's adapted parameters
  (``meta_adapted`` or ``transferred``), for every customer;
- category new without enough support to adapt: the current model as is (``fallback``: the scores then come from
  the article text, attributes and popularity features, which exist from an article's first day);
- category warm, customer in a new user group adapted on its support: the group's parameters (mode as above);
  a new group without enough support: ``fallback``;
- otherwise the current model (``warm``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from fashion_meta.model.spec import FeatureSpec
from fashion_meta.model.towers import TwoTower

from .scoring import top_n_blocked

BASE = "base"
GC_PREFIX = "group_category_daily__"
ITEM_TYPE = pa.struct([
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("score", pa.float32(), nullable=False),
])
OUTPUT_SCHEMA = pa.schema([
    pa.field("run_date", pa.date32(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("user_group", pa.string(), nullable=False),
    pa.field("items", pa.list_(pa.field("element", ITEM_TYPE, nullable=False)), nullable=False),
    pa.field("serving_mode", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
])


@dataclass
class CategoryPlan:
    """One category: its candidates (sorted by article_id) encoded under each parameter set it uses."""

    category: str
    article_ids: np.ndarray  # object [A], sorted
    product_codes: np.ndarray  # int64 [A]
    repeat: bool  # repeat-purchase category: bought articles are not excluded
    key: str  # parameter set for customers of warm groups
    mode: str  # serving_mode of those rows
    group_overrides: dict[str, tuple[str, str]]  # user group -> (parameter set, mode), for new groups
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # parameter set -> [A, d+1] float32
    gc_groups: list[str] = field(default_factory=list)  # groups with group x category features
    gc_inputs: np.ndarray | None = None  # [G + 1, len(gc slots)] encoded slots; last row = no features


@dataclass
class ServingPlan:
    """Everything the scoring of customer batches needs (picklable: numpy arrays and plain values)."""

    plan_id: str  # unique per plan: workers cache the model built from it under this key
    run_date: Any  # datetime.date
    model_version: str
    architecture: dict[str, Any]
    spec: dict[str, Any]
    params: dict[str, dict[str, np.ndarray]]  # parameter set -> name -> array
    categories: list[CategoryPlan]
    gc_slots: np.ndarray  # customer-input columns that come from group x category features
    top_n: int = 12
    max_per_product: int | None = None
    block_rows: int = 4096
    threads: int | None = 1
    device: str = "cpu"


def to_numpy_params(params: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().to("cpu").numpy().copy() for k, v in params.items()}


def gc_slots(spec: FeatureSpec) -> np.ndarray:
    """Positions in the customer input of the group x category features (values and missing flags)."""
    columns = list(spec.customer.columns)
    k = len(columns)
    own = [j for j, name in enumerate(columns) if name.startswith(GC_PREFIX)]
    return np.array(own + [k + j for j in own], dtype=np.int64)


def with_null_columns(table: pa.Table, names: Iterable[str]) -> pa.Table:
    """``table`` plus an all-null float column for each absent name."""
    for name in names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
    return table


def encode_group_features(spec: FeatureSpec, rows: pa.Table, slots: np.ndarray) -> np.ndarray:
    """Encoded group x category slots for each row of ``rows`` plus one final row for "no features"."""
    customer_columns = [c for c in spec.customer.columns if not c.startswith(GC_PREFIX)]
    padded = rows.select([c for c in spec.customer.columns if c.startswith(GC_PREFIX)])
    padded = pa.concat_tables([padded, pa.table({c: pa.nulls(1, padded.schema.field(c).type)
                                                 for c in padded.column_names})])
    padded = with_null_columns(padded, customer_columns)
    padded = padded.append_column(spec.customer.vector, pa.nulls(padded.num_rows, pa.list_(pa.float32())))
    return spec.customer_inputs(padded)[:, slots]


def article_vectors(model: TwoTower, params: Mapping[str, torch.Tensor], inputs: np.ndarray,
                    device: str | torch.device = "cpu", evidence: np.ndarray | None = None) -> np.ndarray:
    """Article embeddings [A, d+1]; identical input rows get bit-identical vectors (exact ties).

    ``evidence`` [A, 2]: the support evidence of an adapted parameter set's support (model/evidence.py), or None.
    """
    if len(inputs) == 0:
        return np.zeros((0, model.embedding_dim + 1), dtype=np.float32)
    width = inputs.shape[1]
    unique, inverse = np.unique(inputs if evidence is None else np.hstack([inputs, evidence]), axis=0,
                                return_inverse=True)
    x = torch.from_numpy(np.ascontiguousarray(unique[:, :width])).to(device)
    e = None if evidence is None else torch.from_numpy(np.ascontiguousarray(unique[:, width:])).to(device)
    with torch.no_grad():
        v = model.encode_articles(params, x, e).cpu().numpy()
    return np.ascontiguousarray(v[inverse.reshape(-1)], dtype=np.float32)


def encode_customers(model: TwoTower, params: Mapping[str, torch.Tensor], inputs: np.ndarray,
                     device: torch.device) -> torch.Tensor:
    """Customer embeddings [C, d+1] as float32, the same whatever other customers share the call.

    The CPU kernels of the tower's linear layers round differently depending on a row's position in the call
    (measured: 6e-8 apart for the same customer in two batches), which could flip near-ties between Spark
    partitions, batches or engines. The tower therefore runs in float64 and the result is rounded to float32: the
    position effects (~1e-16) vanish in the rounding except at a rounding boundary (probability ~1e-9 per value).
    ``params`` must be float64 (see ``as_float64``).
    """
    if len(inputs) == 0:
        return torch.zeros((0, model.embedding_dim + 1), device=device)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float64)).to(device)
        return model.encode_customers(params, x).float()


def as_float64(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: p.double() for n, p in params.items()}


class _Runtime:
    """Model and tensors of a plan, built once per process (Spark reuses Python workers)."""

    def __init__(self, plan: ServingPlan) -> None:
        self.device = torch.device(plan.device)
        self.model = TwoTower.from_architecture(plan.architecture).to(self.device).eval()
        self.spec = FeatureSpec.from_dict(plan.spec)
        self.params = {key: as_float64({n: torch.from_numpy(a).to(self.device) for n, a in p.items()})
                       for key, p in plan.params.items()}


_RUNTIMES: dict[str, _Runtime] = {}


def _runtime(plan: ServingPlan) -> _Runtime:
    key = plan.plan_id
    if key not in _RUNTIMES:
        _RUNTIMES.clear()
        _RUNTIMES[key] = _Runtime(plan)
    return _RUNTIMES[key]


def score_batches(batches: Iterable[pa.RecordBatch], plan: ServingPlan) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: customer batches in, recommendation rows (OUTPUT_SCHEMA) out."""
    if plan.threads:
        torch.set_num_threads(plan.threads)
    for batch in batches:
        if batch.num_rows:
            yield from score_batch(pa.Table.from_batches([batch]), plan).to_batches()


def score_batch(customers: pa.Table, plan: ServingPlan) -> pa.Table:
    """Top-N rows for every category for the customers of ``customers`` (customer_id, user_group, customer
    features and history vector, ``bought``: list of article ids already bought)."""
    rt = _runtime(plan)
    spec = rt.spec
    customers = customers.combine_chunks()
    ids = customers.column("customer_id").to_numpy(zero_copy_only=False).astype(object)
    groups = customers.column("user_group").to_numpy(zero_copy_only=False).astype(object)
    base = spec.customer_inputs(with_null_columns(customers, spec.customer.columns))
    bought = customers.column("bought") if "bought" in customers.column_names else None
    flat, parents = _flatten(bought, len(ids))
    outputs = []
    for cat in plan.categories:
        if len(cat.article_ids) == 0:
            continue
        inputs = base.copy()
        if len(plan.gc_slots) and cat.gc_inputs is not None:
            lookup = {g: i for i, g in enumerate(cat.gc_groups)}
            rows = np.fromiter((lookup.get(g, len(cat.gc_groups)) for g in groups), dtype=np.int64, count=len(groups))
            inputs[:, plan.gc_slots] = cat.gc_inputs[rows]
        excl_rows, excl_cols = (np.empty(0, np.int64), np.empty(0, np.int64)) if cat.repeat else \
            _matches(flat, parents, cat.article_ids)
        keys = np.array([cat.group_overrides.get(g, (cat.key, cat.mode))[0] for g in groups], dtype=object)
        modes = np.array([cat.group_overrides.get(g, (cat.key, cat.mode))[1] for g in groups], dtype=object)
        for key in sorted(set(keys)):
            rows = np.flatnonzero(keys == key)
            x = encode_customers(rt.model, rt.params[key], inputs[rows], rt.device)
            top = top_n_blocked(
                x, torch.from_numpy(cat.vectors[key]).to(rt.device), plan.top_n,
                exclude=_csr(rows, excl_rows, excl_cols), product_codes=cat.product_codes,
                max_per_product=plan.max_per_product, block_rows=plan.block_rows, device=rt.device,
            )
            outputs.append(_rows(plan, cat, ids[rows], groups[rows], modes[rows], top))
    if not outputs:
        return OUTPUT_SCHEMA.empty_table()
    return pa.concat_tables(outputs)


def _flatten(bought: pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if bought is None or n == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    arr = bought.combine_chunks() if isinstance(bought, pa.ChunkedArray) else bought
    flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False).astype(object)
    parents = pc.list_parent_indices(arr).to_numpy().astype(np.int64)
    return flat, parents


def _matches(flat: np.ndarray, parents: np.ndarray, article_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(customer row, article index) of bought articles that are candidates of this category."""
    if len(flat) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pos = np.searchsorted(article_ids, flat)
    pos_c = np.minimum(pos, len(article_ids) - 1)
    hit = (pos < len(article_ids)) & (article_ids[pos_c] == flat)
    return parents[hit], pos_c[hit].astype(np.int64)


def _csr(rows: np.ndarray, excl_rows: np.ndarray, excl_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Exclusions of the customers ``rows`` (sorted positions in the batch) as CSR over their new positions."""
    if len(excl_rows) == 0:
        return None
    local = np.full(int(max(rows.max(), excl_rows.max())) + 1, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    mapped = local[excl_rows]
    keep = mapped >= 0
    mapped, cols = mapped[keep], excl_cols[keep]
    order = np.lexsort((cols, mapped))
    mapped, cols = mapped[order], cols[order]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(mapped, minlength=len(rows)), out=indptr[1:])
    return indptr, cols


def _rows(plan: ServingPlan, cat: CategoryPlan, ids: np.ndarray, groups: np.ndarray, modes: np.ndarray,
          top) -> pa.Table:
    counts = top.counts.astype(np.int64)
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    real = top.indices >= 0
    idx = top.indices[real]
    ranks = np.broadcast_to(np.arange(1, top.indices.shape[1] + 1, dtype=np.int32), top.indices.shape)[real]
    items = pa.StructArray.from_arrays(
        [pa.array(ranks, pa.int32()), pa.array(cat.article_ids[idx], pa.string()),
         pa.array(top.scores[real], pa.float32())],
        fields=list(ITEM_TYPE),
    )
    n = len(ids)
    return pa.Table.from_arrays([
        pa.array([plan.run_date] * n, pa.date32()),
        pa.array([cat.category] * n, pa.string()),
        pa.array(ids, pa.string()),
        pa.array(groups, pa.string()),
        pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items).cast(OUTPUT_SCHEMA.field("items").type),
        pa.array(modes, pa.string()),
        pa.array([plan.model_version] * n, pa.string()),
    ], schema=OUTPUT_SCHEMA)


def resolve_segments(categories: Sequence[str], new_categories: Mapping[str, tuple[str, str]],
                     new_groups: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str, dict[str, tuple[str, str]]]]:
    """Per category: (parameter set, mode) of its warm-group customers, and the overrides for new groups.

    ``new_categories`` / ``new_groups``: name -> (parameter set, mode) for every new one (adapted or fallback).
    A new category's own parameters win over a new group's (its candidates are what is being ranked).
    """
    out = {}
    for category in categories:
        if category in new_categories:
            out[category] = (*new_categories[category], {})
        else:
            out[category] = (BASE, "warm", dict(new_groups))
    return out
