"""A tiny writer of task-dataset folders (format fashion-meta-tasks/1) with a planted per-task signal.

Each task rotates the customer-article affinity: among the 1 + negatives articles offered to a customer on a
day, the purchase is the one maximising ``c . R(angle) a`` where R rotates every pair of vector coordinates by
the task's angle. Angles cycle over 0, 90, 180, 270 degrees, so averaged over tasks the signal cancels: only a
model that adapts to a task's support set can predict its query set.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

VECTOR_DIM = 4
CUSTOMER_COLUMNS = ("customer_daily__purchases_7d", "customer_daily__avg_price_90d")
ARTICLE_COLUMNS = ("article_daily__sales_7d", "article_daily__price_level")
CUSTOMER_VECTOR = "customer_daily__history_vector"
ARTICLE_VECTOR = "article_text_embedding__embedding"
WINDOW_START = dt.date(2020, 8, 31)
RUN_DATE = dt.date(2020, 9, 28)
GROUPS = ("<=24|online", "25-34|online", "35-44|store", "55+|store")
ANGLES = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)

SCHEMA = pa.schema([
    ("task_id", pa.string()), ("category", pa.string()), ("user_group", pa.string()), ("role", pa.string()),
    ("split", pa.string()), ("customer_id", pa.string()), ("article_id", pa.string()), ("label", pa.int8()),
    ("t_dat", pa.date32()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
    (CUSTOMER_COLUMNS[0], pa.int64()), (CUSTOMER_COLUMNS[1], pa.float64()),
    (ARTICLE_COLUMNS[0], pa.int64()), (ARTICLE_COLUMNS[1], pa.float32()),
    (CUSTOMER_VECTOR, pa.list_(pa.float32())), (ARTICLE_VECTOR, pa.list_(pa.float32())),
])


@dataclass(frozen=True)
class TaskPlan:
    category: str
    user_group: str
    role: str
    angle: float
    customers: int = 6
    support_days: int = 2
    query_days: int = 1

    @property
    def task_id(self) -> str:
        return f"{self.category}|{self.user_group}"


def rotation(angle: float, dim: int = VECTOR_DIM) -> np.ndarray:
    """Block-diagonal rotation of every coordinate pair by ``angle``."""
    r = np.zeros((dim, dim))
    c, s = math.cos(angle), math.sin(angle)
    for i in range(0, dim, 2):
        r[i:i + 2, i:i + 2] = [[c, -s], [s, c]]
    return r


def plans(n_train: int = 16, n_val: int = 4, n_holdout: int = 2, **kwargs) -> list[TaskPlan]:
    """Tasks over distinct categories, angles cycling, roles in blocks."""
    roles = ["train"] * n_train + ["validation"] * n_val + ["holdout"] * n_holdout
    return [TaskPlan(f"Cat{i:02d}", GROUPS[i % len(GROUPS)], role, ANGLES[i % len(ANGLES)], **kwargs)
            for i, role in enumerate(roles)]


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, VECTOR_DIM))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _nullable(values: list, rng: np.random.Generator, rate: float) -> list:
    return [None if rng.random() < rate else v for v in values]


def task_rows(plan: TaskPlan, index: int, *, seed: int, negatives: int = 4, articles: int = 16,
              null_rate: float = 0.1, vector_null_rate: float = 0.0) -> dict[str, list]:
    """Rows of one task as columns (python lists)."""
    rng = np.random.default_rng([seed, index])
    art_vecs = _unit(np.random.default_rng([seed, 10_000 + index]), articles)
    art_ids = [f"{index:03d}{j:07d}" for j in range(articles)]
    cust_vecs = _unit(rng, plan.customers)
    cust_ids = [f"{index:032x}{c:032x}" for c in range(plan.customers)]
    affinity = cust_vecs @ rotation(plan.angle) @ art_vecs.T  # [customers, articles]
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    days = [("support", d) for d in range(plan.support_days)] + [
        ("query", plan.support_days + d) for d in range(plan.query_days)]
    for split, day_offset in days:
        day = WINDOW_START + dt.timedelta(days=day_offset)
        for c in range(plan.customers):
            offered = rng.choice(articles, size=1 + negatives, replace=False)
            best = offered[np.argmax(affinity[c, offered])]
            for a in offered:
                cols["task_id"].append(plan.task_id)
                cols["category"].append(plan.category)
                cols["user_group"].append(plan.user_group)
                cols["role"].append(plan.role)
                cols["split"].append(split)
                cols["customer_id"].append(cust_ids[c])
                cols["article_id"].append(art_ids[a])
                cols["label"].append(int(a == best))
                cols["t_dat"].append(day)
                cols["event_timestamp"].append(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc))
                cols[CUSTOMER_COLUMNS[0]].append(int(rng.poisson(3)))
                cols[CUSTOMER_COLUMNS[1]].append(float(rng.uniform(0.01, 0.05)))
                cols[ARTICLE_COLUMNS[0]].append(int(rng.poisson(40)))
                cols[ARTICLE_COLUMNS[1]].append(float(rng.lognormal()))
                cols[CUSTOMER_VECTOR].append(cust_vecs[c].astype(np.float32).tolist())
                cols[ARTICLE_VECTOR].append(art_vecs[a].astype(np.float32).tolist())
    for name in (*CUSTOMER_COLUMNS, *ARTICLE_COLUMNS):
        cols[name] = _nullable(cols[name], rng, null_rate)
    for name in (CUSTOMER_VECTOR, ARTICLE_VECTOR):
        cols[name] = _nullable(cols[name], rng, vector_null_rate)
    return cols


def poison(table: pa.Table) -> pa.Table:
    """Same rows, garbage values: labels flipped, features and vectors huge (keeps the schema and counts)."""
    out = {}
    for name in table.column_names:
        col = table.column(name).to_pylist()
        if name == "label":
            col = [1 - v for v in col]
        elif name in (*CUSTOMER_COLUMNS, *ARTICLE_COLUMNS):
            col = [10**9 if pa.types.is_integer(table.schema.field(name).type) else 1e9 for _ in col]
        elif name in (CUSTOMER_VECTOR, ARTICLE_VECTOR):
            col = [[1e6] * VECTOR_DIM for _ in col]
        out[name] = col
    return pa.Table.from_pydict(out, schema=table.schema)


def write_task_dataset(
    folder: str | Path,
    task_plans: Sequence[TaskPlan],
    *,
    seed: int = 42,
    negatives: int = 4,
    n_files: int = 2,
    null_rate: float = 0.1,
    vector_null_rate: float = 0.0,
    transform_role: dict[str, Callable[[pa.Table], pa.Table]] | None = None,
) -> dict:
    """Write manifest.json and ``n_files`` Parquet parts following the task-dataset contract; return manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables, tasks = [], []
    for i, plan in enumerate(task_plans):
        cols = task_rows(plan, i, seed=seed, negatives=negatives, null_rate=null_rate,
                         vector_null_rate=vector_null_rate)
        table = pa.Table.from_pydict(cols, schema=SCHEMA)
        if transform_role and plan.role in transform_role:
            table = transform_role[plan.role](table)
        tables.append(table)
        split = np.array(cols["split"])
        labels = np.array(cols["label"])
        tasks.append({"task_id": plan.task_id, "category": plan.category, "user_group": plan.user_group,
                      "role": plan.role, "support_rows": int((split == "support").sum()),
                      "query_rows": int((split == "query").sum()),
                      "support_positives": int(labels[split == "support"].sum()),
                      "query_positives": int(labels[split == "query"].sum())})
    rows = pa.concat_tables(tables)
    order = np.random.default_rng(seed).permutation(rows.num_rows)  # files are not sorted: the loader sorts
    rows = rows.take(pa.array(order))
    files = []
    for part in range(n_files):
        name = f"part-{part:05d}.parquet"
        pq.write_table(rows.take(pa.array(np.arange(part, rows.num_rows, n_files))), folder / name)
        files.append(name)
    holdout = [p for p in task_plans if p.role == "holdout"]
    manifest = {
        "format": "fashion-meta-tasks/1",
        "run_date": RUN_DATE.isoformat(),
        "window": {"start": WINDOW_START.isoformat(), "end": RUN_DATE.isoformat()},
        "seed": seed,
        "negatives_per_positive": negatives,
        "files": files,
        "feature_service": "meta_tasks_v1",
        "features": {"customer": list(CUSTOMER_COLUMNS), "article": list(ARTICLE_COLUMNS),
                     "customer_vector": CUSTOMER_VECTOR, "article_vector": ARTICLE_VECTOR,
                     "vector_dim": VECTOR_DIM},
        "tasks": tasks,
        "rows": {"support": sum(t["support_rows"] for t in tasks), "query": sum(t["query_rows"] for t in tasks)},
        "holdout": {"categories": sorted({p.category for p in holdout}),
                    "user_groups": sorted({p.user_group for p in holdout})},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


@pytest.fixture(autouse=True)
def _one_thread():
    """The CI box has two shared cores: keep torch to one thread and tests deterministic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def task_folder(tmp_path_factory) -> Path:
    """A small task dataset: 16 train, 4 validation, 2 holdout tasks, two Parquet files."""
    folder = tmp_path_factory.mktemp("tasks")
    write_task_dataset(folder, plans())
    return folder


@pytest.fixture(scope="session")
def dataset(task_folder):
    from fashion_meta.model.data import load_task_dataset

    return load_task_dataset(task_folder)


def raw_rows(folder: str | Path) -> pa.Table:
    """Every row of a task-dataset folder, as written."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    return pa.concat_tables([pq.read_table(Path(folder) / f) for f in manifest["files"]])


def first_rows(table: pa.Table, key: str) -> pa.Table:
    """The first row of each distinct ``key`` value, in key order."""
    keys = table.column(key).to_numpy(zero_copy_only=False).astype(str)
    _, first = np.unique(keys, return_index=True)
    return table.take(pa.array(first))
