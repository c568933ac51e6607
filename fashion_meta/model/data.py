"""Task datasets (format ``fashion-meta-tasks/1``): read with pyarrow, validated, turned into per-task tensors.

A folder holds ``manifest.json`` and the Parquet files it lists. Rows are sorted by their keys after reading,
so the tensors do not depend on how a Spark job happened to partition the files (DESIGN.md, determinism).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from .evidence import evidence_for, support_evidence
from .spec import FeatureSpec, TableLike, _as_columns, num_rows

__all__ = [
    "FORMAT", "ROLES", "SPLITS", "KEY_COLUMNS", "Batch", "Task", "TaskDataset", "FeatureSpec",
    "read_manifest", "load_task_dataset", "with_support_evidence",
]

FORMAT = "fashion-meta-tasks/1"
MANIFEST = "manifest.json"
ROLES = ("train", "validation", "holdout", "serve")
SPLITS = ("support", "query")
KEY_COLUMNS = (
    "task_id", "category", "user_group", "role", "split", "customer_id", "article_id", "label", "t_dat",
    "event_timestamp",
)
_MANIFEST_KEYS = ("format", "run_date", "window", "files", "features", "tasks")
_FEATURE_KEYS = ("customer", "article", "customer_vector", "article_vector", "vector_dim")


@dataclass(frozen=True, eq=False)
class Batch:
    """Labelled (customer, article) rows as tensors; towers see ``[features, vector]`` per side."""

    customer_features: torch.Tensor  # [N, F_c] float32 (see spec.py for the layout)
    customer_vectors: torch.Tensor  # [N, D] float32, zeros where missing
    article_features: torch.Tensor  # [N, F_a]
    article_vectors: torch.Tensor  # [N, D]
    labels: torch.Tensor  # [N] float32 in {0, 1}
    customer_ids: np.ndarray  # [N] str
    article_ids: np.ndarray  # [N] str
    days: np.ndarray | None = None  # [N] datetime64[D] (t_dat), when known
    evidence: torch.Tensor | None = None  # [N, EVIDENCE_DIM] support evidence of each row's article (evidence.py)
    # [N] int64: which batch of a ``concat`` each row came from (None: one part), so ``groups`` keeps parts apart
    parts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def customer_inputs(self) -> torch.Tensor:
        """Customer tower input [N, F_c + D]."""
        return torch.cat([self.customer_features, self.customer_vectors], dim=1)

    @cached_property
    def article_inputs(self) -> torch.Tensor:
        """Article tower input [N, F_a + D]."""
        return torch.cat([self.article_features, self.article_vectors], dim=1)

    @cached_property
    def groups(self) -> torch.Tensor:
        """Row -> index of its (customer, day) group [N] int64: a purchase and the negatives sampled with it (same
        customer, category and day; a task holds one category). Without days, a customer's rows form one group.
        Rows of different concatenated batches (tasks, so categories) never share a group. Computed on first use."""
        key = np.zeros(len(self), dtype=np.int64)
        columns = [self.parts, self.customer_ids, None if self.days is None else self.days.astype("datetime64[D]")]
        for column in columns:  # mixed-radix key of the columns' codes, then renumbered 0..G-1
            if column is None or not len(self):
                continue
            codes = np.unique(column, return_inverse=True)[1].reshape(-1).astype(np.int64)
            key = np.unique(key * (int(codes.max()) + 1) + codes, return_inverse=True)[1].reshape(-1).astype(np.int64)
        return torch.from_numpy(key).to(self.device)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def to(self, device: torch.device | str) -> Batch:
        """The same rows on ``device``."""
        return Batch(
            self.customer_features.to(device), self.customer_vectors.to(device), self.article_features.to(device),
            self.article_vectors.to(device), self.labels.to(device), self.customer_ids, self.article_ids, self.days,
            None if self.evidence is None else self.evidence.to(device), self.parts,
        )

    def with_evidence(self, evidence: torch.Tensor | None) -> Batch:
        """The same rows with ``evidence`` [N, EVIDENCE_DIM] (None: without)."""
        if evidence is not None and evidence.shape[0] != len(self):
            raise ValueError(f"evidence has {evidence.shape[0]} rows, the batch {len(self)}")
        return replace(self, evidence=None if evidence is None else evidence.to(self.device))

    def select(self, index: np.ndarray | Sequence[int]) -> Batch:
        """A subset of rows, in the given order."""
        idx = np.asarray(index, dtype=np.int64)
        if self.device.type == "cpu":  # numpy fancy indexing: torch's CPU gather is slow on tall tensors
            def take(t: torch.Tensor) -> torch.Tensor:
                return torch.from_numpy(t.numpy()[idx])
        else:
            t_idx = torch.from_numpy(idx).to(self.device)

            def take(t: torch.Tensor) -> torch.Tensor:
                return t.index_select(0, t_idx)
        return Batch(
            take(self.customer_features), take(self.customer_vectors), take(self.article_features),
            take(self.article_vectors), take(self.labels), self.customer_ids[idx], self.article_ids[idx],
            None if self.days is None else self.days[idx], None if self.evidence is None else take(self.evidence),
            None if self.parts is None else self.parts[idx],
        )

    def rows(self, start: int, stop: int) -> Batch:
        """Rows ``start:stop`` as views (no copy)."""
        return Batch(
            self.customer_features[start:stop], self.customer_vectors[start:stop],
            self.article_features[start:stop], self.article_vectors[start:stop], self.labels[start:stop],
            self.customer_ids[start:stop], self.article_ids[start:stop],
            None if self.days is None else self.days[start:stop],
            None if self.evidence is None else self.evidence[start:stop],
            None if self.parts is None else self.parts[start:stop],
        )

    @classmethod
    def concat(cls, batches: Sequence[Batch]) -> Batch:
        """Rows of several batches, one after the other."""
        if not batches:
            raise ValueError("nothing to concatenate")
        days = None if any(b.days is None for b in batches) else np.concatenate([b.days for b in batches])
        # evidence belongs to one support set: rows of several keep it only if every part has it
        evidence = None if any(b.evidence is None for b in batches) else torch.cat([b.evidence for b in batches])
        parts, offset = [], 0
        for b in batches:  # a part that is itself a concatenation keeps its own parts apart
            own = b.parts if b.parts is not None else np.zeros(len(b), dtype=np.int64)
            parts.append(own + offset)
            offset += int(own.max()) + 1 if len(b) else 1
        return cls(
            torch.cat([b.customer_features for b in batches]), torch.cat([b.customer_vectors for b in batches]),
            torch.cat([b.article_features for b in batches]), torch.cat([b.article_vectors for b in batches]),
            torch.cat([b.labels for b in batches]), np.concatenate([b.customer_ids for b in batches]),
            np.concatenate([b.article_ids for b in batches]), days, evidence, np.concatenate(parts),
        )

    @classmethod
    def from_table(cls, data: TableLike, spec: FeatureSpec) -> Batch:
        """Encode labelled rows (customer_id, article_id, label, feature and vector columns) with ``spec``."""
        cols = _as_columns(data, ["customer_id", "article_id", "label"])
        table = cols if isinstance(cols, pa.Table) else None
        cf, cv = spec.customer_arrays(data)
        af, av = spec.article_arrays(data)

        def column(name: str) -> np.ndarray:
            if table is not None:
                return table.column(name).to_numpy(zero_copy_only=False)
            return np.asarray(cols[name])

        labels = column("label").astype(np.float32)
        if labels.size and not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("column label: values must be 0 or 1")
        days = None
        if table is not None and "t_dat" in table.column_names:
            days = table.column("t_dat").to_numpy(zero_copy_only=False).astype("datetime64[D]")
        return cls(
            torch.from_numpy(cf), torch.from_numpy(cv), torch.from_numpy(af), torch.from_numpy(av),
            torch.from_numpy(labels), column("customer_id").astype(str).astype(object),
            column("article_id").astype(str).astype(object), days,
        )


def with_support_evidence(support: Batch, query: Batch | None = None) -> tuple[Batch, Batch | None]:
    """``support`` with its leave-one-out evidence and ``query`` with evidence against ``support`` (evidence.py)."""
    positives = support.article_ids[support.labels.cpu().numpy() > 0.5]
    out_support = support.with_evidence(support_evidence(support.article_ids, support.labels))
    out_query = None if query is None else query.with_evidence(
        torch.from_numpy(evidence_for(positives, query.article_ids)))
    return out_support, out_query


@dataclass(frozen=True, eq=False)
class Task:
    """One (category x user group) slice: support rows (earlier) and query rows (later)."""

    task_id: str
    category: str
    user_group: str
    role: str
    support: Batch
    query: Batch

    @property
    def is_group_unit(self) -> bool:
        """A user group over all its categories ("*|<group>": a new group's adaptation unit, meta.unit_tasks)."""
        return self.category == "*"

    def to(self, device: torch.device | str) -> Task:
        return Task(self.task_id, self.category, self.user_group, self.role, self.support.to(device),
                    self.query.to(device))


@dataclass(frozen=True, eq=False)
class TaskDataset:
    """The loaded tasks of the requested roles, the manifest, and the feature spec applied to them."""

    folder: Path
    manifest: dict[str, Any]
    spec: FeatureSpec
    tasks: tuple[Task, ...]
    roles: tuple[str, ...] = field(default=ROLES)

    def by_role(self, *roles: str) -> list[Task]:
        """Tasks of the given roles, in task_id order."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s): {sorted(unknown)}")
        return [t for t in self.tasks if t.role in roles]

    @property
    def window(self) -> dict[str, str]:
        return dict(self.manifest["window"])


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and validate ``manifest.json`` of a task-dataset folder."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ValueError(f"task dataset {folder}: missing {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported format {manifest.get('format')!r} (expected {FORMAT!r})")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
    features = manifest["features"]
    missing = [k for k in _FEATURE_KEYS if k not in features]
    if missing:
        raise ValueError(f"{path}: missing features key(s) {', '.join(missing)}")
    if not manifest["files"]:
        raise ValueError(f"{path}: lists no files")
    for task in manifest["tasks"]:
        if task.get("role") not in ROLES:
            raise ValueError(f"{path}: task {task.get('task_id')!r} has unknown role {task.get('role')!r}")
    return manifest


def _required_columns(features: Mapping[str, Any]) -> list[str]:
    return [*KEY_COLUMNS, *features["customer"], *features["article"], features["customer_vector"],
            features["article_vector"]]


def _read_rows(folder: Path, manifest: Mapping[str, Any], roles: Sequence[str]) -> pa.Table:
    columns = _required_columns(manifest["features"])
    tables = []
    for name in manifest["files"]:
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"manifest file {name!r} must be a relative name inside {folder}")
        if not path.is_file():
            raise ValueError(f"task dataset {folder}: missing file {name}")
        schema = pq.read_schema(path)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")
        # Rows of other roles are dropped by the reader and never reach the caller.
        tables.append(pq.read_table(path, columns=columns, filters=[("role", "in", list(roles))]))
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"task dataset {folder}: files disagree on column types ({exc})") from exc
    return table


def _check_rows(table: pa.Table, roles: Sequence[str]) -> None:
    for name in ("task_id", "role", "split", "customer_id", "article_id", "label", "t_dat"):
        nulls = table.column(name).null_count
        if nulls:
            raise ValueError(f"column {name}: {nulls} null value(s)")
    bad = set(pc.unique(table.column("role")).to_pylist()) - set(roles)
    if bad:
        raise ValueError(f"column role: unexpected value(s) {sorted(bad)}")
    bad = set(pc.unique(table.column("split")).to_pylist()) - set(SPLITS)
    if bad:
        raise ValueError(f"column split: unexpected value(s) {sorted(bad)}")
    bad = set(pc.unique(table.column("label")).to_pylist()) - {0, 1}
    if bad:
        raise ValueError(f"column label: unexpected value(s) {sorted(bad)}")


def _fit_spec(table: pa.Table, features: Mapping[str, Any]) -> FeatureSpec:
    train = table.filter(pc.equal(table.column("role"), "train"))
    if train.num_rows == 0:
        raise ValueError("no train-role rows to fit the feature spec on; pass spec= from a trained model")
    return FeatureSpec.fit(
        train, customer_columns=features["customer"], article_columns=features["article"],
        customer_vector=features["customer_vector"], article_vector=features["article_vector"],
        vector_dim=int(features["vector_dim"]),
    )


def load_task_dataset(
    folder: str | Path,
    *,
    roles: Iterable[str] | None = None,
    spec: FeatureSpec | None = None,
) -> TaskDataset:
    """Load the tasks of ``roles`` (default all); fit the spec on train-role rows unless ``spec`` is given."""
    folder = Path(folder)
    roles = tuple(ROLES if roles is None else roles)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {sorted(unknown)}")
    manifest = read_manifest(folder)
    features = manifest["features"]
    table = _read_rows(folder, manifest, roles)
    _check_rows(table, roles)
    table = table.sort_by([("task_id", "ascending"), ("split", "descending"), ("t_dat", "ascending"),
                           ("customer_id", "ascending"), ("article_id", "ascending"), ("label", "descending")])
    if spec is None:
        spec = _fit_spec(table, features)
    elif (list(spec.customer.columns) != list(features["customer"])
          or list(spec.article.columns) != list(features["article"])
          or spec.vector_dim != int(features["vector_dim"])):
        raise ValueError("the given feature spec does not match the manifest's features")
    tasks = _build_tasks(table, spec, manifest)
    return TaskDataset(folder=folder, manifest=manifest, spec=spec, tasks=tasks, roles=roles)


def _build_tasks(table: pa.Table, spec: FeatureSpec, manifest: Mapping[str, Any]) -> tuple[Task, ...]:
    if num_rows(table) == 0:
        return ()
    everything = Batch.from_table(table, spec)  # encode once, slice per task
    task_ids = table.column("task_id").to_numpy(zero_copy_only=False).astype(str)
    splits = table.column("split").to_numpy(zero_copy_only=False).astype(str)
    roles = table.column("role").to_numpy(zero_copy_only=False).astype(str)
    declared = {t["task_id"]: t for t in manifest["tasks"]}
    starts = np.flatnonzero(np.r_[True, task_ids[1:] != task_ids[:-1]])
    ends = np.r_[starts[1:], len(task_ids)]
    tasks = []
    for start, end in zip(starts, ends):
        task_id = task_ids[start]
        meta = declared.get(task_id)
        if meta is None:
            raise ValueError(f"task {task_id!r} has rows but is not listed in the manifest")
        if set(roles[start:end]) != {meta["role"]}:
            raise ValueError(f"task {task_id!r}: row role(s) {sorted(set(roles[start:end]))} "
                             f"disagree with the manifest role {meta['role']!r}")
        # Sorted by (task_id, split descending, ...): a task is one block of support rows, then its query rows.
        middle = start + int((splits[start:end] == "support").sum())
        support, query = with_support_evidence(everything.rows(start, middle), everything.rows(middle, end))
        for split, batch in (("support", support), ("query", query)):
            expected = meta.get(f"{split}_rows")
            if expected is not None and int(expected) != len(batch):
                raise ValueError(f"task {task_id!r}: {len(batch)} {split} rows, manifest says {expected}")
        if len(support) and len(query) and support.days.max() >= query.days.min():
            raise ValueError(f"task {task_id!r}: support rows are not strictly earlier than query rows")
        tasks.append(Task(task_id, meta.get("category", ""), meta.get("user_group", ""), meta["role"], support,
                          query))
    return tuple(tasks)
