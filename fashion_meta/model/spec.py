"""Feature spec: which columns feed each tower, in which order, and how they are normalised.

The spec is fitted once on train-role rows, stored in the model card, and applied unchanged to every later
input (validation tasks, support sets, nightly scoring rows), so training and serving see identical features.

Numeric transform per column: ``z = (signed_log1p(x) - mean) / std`` (counts are heavy-tailed; log1p tames
them, the sign keeps negative values ordered); a null or non-finite value becomes ``z = 0`` plus a missing
indicator of 1. A null vector becomes zeros plus a vector-missing indicator. The tower input of one side is::

    [z_1..z_n, missing_1..missing_n, vector_missing, vector_1..vector_D]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TRANSFORM = "signed_log1p_zscore/1"
_MIN_STD = 1e-8

# A table-like input: a pyarrow Table/RecordBatch, a pandas DataFrame, or a mapping of column name -> array.
TableLike = Any


def _as_columns(data: TableLike, names: Sequence[str]) -> pa.Table | Mapping[str, Any]:
    """Normalise ``data`` to something indexable by column name, raising ValueError on a missing column."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        available = set(data.column_names)
    elif hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame, without importing pandas
        available = set(map(str, data.columns))
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(f"missing column(s): {', '.join(missing)}")
        data = pa.Table.from_pandas(data[list(names)], preserve_index=False)
        available = set(data.column_names)
    elif isinstance(data, Mapping):
        available = set(data)
    else:
        raise TypeError(f"expected a pyarrow Table, pandas DataFrame or mapping of arrays, got {type(data)!r}")
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"missing column(s): {', '.join(missing)}")
    return data


def num_rows(data: TableLike) -> int:
    """Number of rows of a table-like input."""
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return data.num_rows
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return len(data)
    if isinstance(data, Mapping):
        return len(next(iter(data.values()))) if data else 0
    raise TypeError(f"expected a pyarrow Table, pandas DataFrame or mapping of arrays, got {type(data)!r}")


def numeric_column(data: TableLike, name: str) -> np.ndarray:
    """One numeric column as float64, NaN where null or non-finite."""
    cols = _as_columns(data, [name])
    col = cols[name] if not isinstance(cols, pa.Table) else cols.column(name)
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        try:
            values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"column {name}: not numeric ({col.type})") from exc
    else:
        try:
            values = np.asarray(col, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {name}: not numeric") from exc
        if values.ndim != 1:
            raise ValueError(f"column {name}: expected one value per row, got shape {values.shape}")
    values = np.array(values, dtype=np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


def vector_column(data: TableLike, name: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One vector column as (float32 [N, dim] with zeros where missing, bool [N] missing)."""
    cols = _as_columns(data, [name])
    col = cols[name] if not isinstance(cols, pa.Table) else cols.column(name)
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        return _arrow_vectors(col, name, dim)
    if isinstance(col, np.ndarray) and col.dtype != object:
        if col.ndim != 2 or col.shape[1] != dim:
            raise ValueError(f"column {name}: vectors must have shape [N, {dim}], got {col.shape}")
        out = col.astype(np.float32, copy=True)
        missing = np.isnan(out).all(axis=1) if dim else np.zeros(len(out), dtype=bool)
        out[~np.isfinite(out)] = 0.0
        return out, missing
    rows = list(col)
    out = np.zeros((len(rows), dim), dtype=np.float32)
    missing = np.zeros(len(rows), dtype=bool)
    for i, row in enumerate(rows):
        if row is None or len(row) == 0:
            missing[i] = True
            continue
        vec = np.asarray(row, dtype=np.float32)
        if vec.shape != (dim,):
            raise ValueError(f"column {name}: vectors must have length {dim}, found {vec.shape[0]} at row {i}")
        out[i] = vec
    out[~np.isfinite(out)] = 0.0
    return out, missing


def _arrow_vectors(col: pa.Array | pa.ChunkedArray, name: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if pa.types.is_null(arr.type):
        return np.zeros((n, dim), dtype=np.float32), np.ones(n, dtype=bool)
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)
            or pa.types.is_fixed_size_list(arr.type)):
        raise ValueError(f"column {name}: expected list<float32>, got {arr.type}")
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    missing = arr.is_null().to_numpy(zero_copy_only=False) | (lengths == 0)
    bad = ~missing & (lengths != dim)
    if bad.any():
        raise ValueError(f"column {name}: vectors must have length {dim}, found {lengths[bad][0]}")
    out = np.zeros((n, dim), dtype=np.float32)
    if (~missing).any():
        present = arr.filter(pa.array(~missing))
        flat = pc.list_flatten(present)
        values = pc.cast(flat, pa.float32()).to_numpy(zero_copy_only=False).astype(np.float32)
        out[~missing] = values.reshape(-1, dim)
    out[~np.isfinite(out)] = 0.0
    return out, missing


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass(frozen=True)
class SideSpec:
    """One tower's inputs: numeric columns in order, their normalisation stats, and the vector column."""

    columns: tuple[str, ...]
    vector: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def feature_dim(self) -> int:
        """Width of the numeric part: z-scores, missing indicators, vector-missing indicator."""
        return 2 * len(self.columns) + 1

    def feature_names(self) -> list[str]:
        """Names of the numeric part, in order (for cards and debugging)."""
        return [*self.columns, *(f"{c}:missing" for c in self.columns), f"{self.vector}:missing"]


def _fit_side(data: TableLike, columns: Sequence[str], vector: str) -> SideSpec:
    means, stds = [], []
    for name in columns:
        z = _signed_log1p(numeric_column(data, name))
        z = z[~np.isnan(z)]
        mean = float(z.mean()) if z.size else 0.0
        std = float(z.std()) if z.size else 1.0
        means.append(mean)
        stds.append(std if std > _MIN_STD else 1.0)
    return SideSpec(tuple(columns), vector, tuple(means), tuple(stds))


@dataclass(frozen=True)
class FeatureSpec:
    """Column order and normalisation stats of both towers; saved with every model."""

    customer: SideSpec
    article: SideSpec
    vector_dim: int
    transform: str = TRANSFORM

    @classmethod
    def fit(
        cls,
        data: TableLike,
        *,
        customer_columns: Sequence[str],
        article_columns: Sequence[str],
        customer_vector: str,
        article_vector: str,
        vector_dim: int,
    ) -> FeatureSpec:
        """Fit normalisation stats on ``data`` (pass train-role rows only)."""
        if num_rows(data) == 0:
            raise ValueError("cannot fit a feature spec on zero rows")
        return cls(
            customer=_fit_side(data, customer_columns, customer_vector),
            article=_fit_side(data, article_columns, article_vector),
            vector_dim=int(vector_dim),
        )

    @property
    def customer_input_dim(self) -> int:
        return self.customer.feature_dim + self.vector_dim

    @property
    def article_input_dim(self) -> int:
        return self.article.feature_dim + self.vector_dim

    def _encode(self, side: SideSpec, data: TableLike) -> tuple[np.ndarray, np.ndarray]:
        n = num_rows(data)
        k = len(side.columns)
        feats = np.zeros((n, side.feature_dim), dtype=np.float32)
        for j, name in enumerate(side.columns):
            x = numeric_column(data, name)
            miss = np.isnan(x)
            z = (_signed_log1p(np.where(miss, 0.0, x)) - side.mean[j]) / side.std[j]
            feats[:, j] = np.where(miss, 0.0, z)
            feats[:, k + j] = miss
        vectors, vmiss = vector_column(data, side.vector, self.vector_dim)
        feats[:, 2 * k] = vmiss
        return feats, vectors

    def customer_arrays(self, data: TableLike) -> tuple[np.ndarray, np.ndarray]:
        """Customer (features [N, F_c], vectors [N, D]) as float32."""
        return self._encode(self.customer, data)

    def article_arrays(self, data: TableLike) -> tuple[np.ndarray, np.ndarray]:
        """Article (features [N, F_a], vectors [N, D]) as float32."""
        return self._encode(self.article, data)

    def customer_inputs(self, data: TableLike) -> np.ndarray:
        """Customer tower input [N, F_c + D]."""
        return np.concatenate(self.customer_arrays(data), axis=1)

    def article_inputs(self, data: TableLike) -> np.ndarray:
        """Article tower input [N, F_a + D]."""
        return np.concatenate(self.article_arrays(data), axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (floats round-trip exactly through json)."""
        def side(s: SideSpec) -> dict[str, Any]:
            return {"columns": list(s.columns), "vector": s.vector, "mean": list(s.mean), "std": list(s.std)}

        return {"transform": self.transform, "vector_dim": self.vector_dim,
                "customer": side(self.customer), "article": side(self.article)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`; refuses an unknown transform."""
        if d.get("transform") != TRANSFORM:
            raise ValueError(f"unsupported feature transform {d.get('transform')!r} (expected {TRANSFORM!r})")

        def side(s: Mapping[str, Any]) -> SideSpec:
            return SideSpec(tuple(s["columns"]), s["vector"], tuple(map(float, s["mean"])),
                            tuple(map(float, s["std"])))

        return cls(customer=side(d["customer"]), article=side(d["article"]), vector_dim=int(d["vector_dim"]))
