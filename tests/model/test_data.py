"""Task-dataset loading, validation, and the feature spec."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from fashion_meta.model.data import load_task_dataset
from fashion_meta.model.spec import FeatureSpec

from .conftest import (
    ARTICLE_COLUMNS, ARTICLE_VECTOR, CUSTOMER_COLUMNS, CUSTOMER_VECTOR, VECTOR_DIM, plans, poison, raw_rows,
    write_task_dataset,
)


def test_loads_every_task_with_contract_shapes(dataset, task_folder):
    manifest = json.loads((task_folder / "manifest.json").read_text())
    assert [t.task_id for t in dataset.tasks] == sorted(t["task_id"] for t in manifest["tasks"])
    assert {r: len(dataset.by_role(r)) for r in ("train", "validation", "holdout")} == {
        "train": 16, "validation": 4, "holdout": 2}
    declared = {t["task_id"]: t for t in manifest["tasks"]}
    n_features = 2 * len(CUSTOMER_COLUMNS) + 1  # z-scores, missing indicators, vector-missing
    for task in dataset.tasks:
        assert len(task.support) == declared[task.task_id]["support_rows"]
        assert len(task.query) == declared[task.task_id]["query_rows"]
        assert int(task.query.labels.sum()) == declared[task.task_id]["query_positives"]
        assert task.support.customer_features.shape == (len(task.support), n_features)
        assert task.support.article_vectors.shape == (len(task.support), VECTOR_DIM)
        assert task.support.customer_inputs.dtype == torch.float32
        assert task.support.days.max() < task.query.days.min()
    assert dataset.spec.customer_input_dim == n_features + VECTOR_DIM


def test_nulls_become_zero_with_a_missing_indicator(tmp_path):
    write_task_dataset(tmp_path, plans(4, 1, 0), null_rate=0.3, vector_null_rate=0.2)
    ds = load_task_dataset(tmp_path)
    raw = raw_rows(tmp_path)
    rows = [b for t in ds.tasks for b in (t.support, t.query)]
    feats = torch.cat([b.customer_features for b in rows])
    vecs = torch.cat([b.customer_vectors for b in rows])
    k = len(CUSTOMER_COLUMNS)
    for j, name in enumerate(CUSTOMER_COLUMNS):
        missing = feats[:, k + j] == 1
        assert int(missing.sum()) == raw.column(name).null_count > 0
        assert torch.all(feats[missing, j] == 0)
    vector_missing = feats[:, 2 * k] == 1
    assert int(vector_missing.sum()) == raw.column(CUSTOMER_VECTOR).null_count > 0
    assert torch.all(vecs[vector_missing] == 0) and torch.all(vecs[~vector_missing].norm(dim=1) > 0.5)


def test_spec_normalises_counts_with_hand_computed_stats():
    # values 0, e - 1, null, e^2 - 1 -> signed log1p 0, 1, -, 2: mean 1, population std sqrt(2/3)
    table = pa.table({"c": pa.array([0, math.e - 1, None, math.e**2 - 1]), "a": [1.0, 1.0, 1.0, 1.0],
                      "cv": pa.array([[1.0, 0.0, 0.0, 0.0], None, [0.0, 2.0, 0.0, 0.0], []],
                                     type=pa.list_(pa.float32())),
                      "av": pa.array([None] * 4, type=pa.list_(pa.float32()))})
    spec = FeatureSpec.fit(table, customer_columns=["c"], article_columns=["a"], customer_vector="cv",
                           article_vector="av", vector_dim=4)
    assert spec.customer.mean == pytest.approx((1.0,)) and spec.customer.std == pytest.approx((math.sqrt(2 / 3),))
    assert spec.article.std == (1.0,)  # constant column: std floored to 1, no division by zero
    feats, vecs = spec.customer_arrays(table)
    s = math.sqrt(2 / 3)
    np.testing.assert_allclose(feats[:, 0], [-1 / s, 0, 0, 1 / s], rtol=1e-6)  # (x - 1) / s, null -> 0
    np.testing.assert_array_equal(feats[:, 1], [0, 0, 1, 0])  # missing indicator
    np.testing.assert_array_equal(feats[:, 2], [0, 1, 0, 1])  # vector missing (null or empty list)
    np.testing.assert_array_equal(vecs[2], [0, 2, 0, 0])


def test_spec_is_applied_identically_to_arrow_pandas_and_numpy(dataset, task_folder):
    raw = raw_rows(task_folder).slice(0, 40)
    spec = dataset.spec
    from_arrow = spec.customer_inputs(raw), spec.article_inputs(raw)
    from_pandas = spec.customer_inputs(raw.to_pandas()), spec.article_inputs(raw.to_pandas())

    def as_numpy(name: str):
        col = raw.column(name)
        if name in (CUSTOMER_VECTOR, ARTICLE_VECTOR):
            return np.array([np.full(VECTOR_DIM, np.nan) if v is None else v for v in col.to_pylist()])
        return np.array(col.to_pylist(), dtype=object)  # None stays None

    mapping = {n: as_numpy(n) for n in (*CUSTOMER_COLUMNS, *ARTICLE_COLUMNS, CUSTOMER_VECTOR, ARTICLE_VECTOR)}
    from_numpy = spec.customer_inputs(mapping), spec.article_inputs(mapping)
    for a, b, c in zip(from_arrow, from_pandas, from_numpy):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


def test_row_order_and_file_split_do_not_change_tensors(tmp_path):
    write_task_dataset(tmp_path / "one", plans(3, 1, 1), n_files=1)
    write_task_dataset(tmp_path / "three", plans(3, 1, 1), n_files=3)
    a, b = load_task_dataset(tmp_path / "one"), load_task_dataset(tmp_path / "three")
    assert a.spec == b.spec
    for ta, tb in zip(a.tasks, b.tasks, strict=True):
        assert torch.equal(ta.support.customer_inputs, tb.support.customer_inputs)
        assert torch.equal(ta.query.article_inputs, tb.query.article_inputs)
        assert list(ta.query.article_ids) == list(tb.query.article_ids)


def test_stats_come_from_train_rows_only(tmp_path):
    write_task_dataset(tmp_path / "clean", plans(3, 1, 1))
    write_task_dataset(tmp_path / "dirty", plans(3, 1, 1),
                       transform_role={"validation": poison, "holdout": poison})
    clean, dirty = load_task_dataset(tmp_path / "clean"), load_task_dataset(tmp_path / "dirty")
    assert clean.spec == dirty.spec
    everything = FeatureSpec.fit(raw_rows(tmp_path / "dirty"), customer_columns=CUSTOMER_COLUMNS,
                                 article_columns=ARTICLE_COLUMNS, customer_vector=CUSTOMER_VECTOR,
                                 article_vector=ARTICLE_VECTOR, vector_dim=VECTOR_DIM)
    assert everything != dirty.spec  # the poison would show if those rows were used


def test_roles_are_filtered_at_read_time(task_folder, dataset):
    only_train = load_task_dataset(task_folder, roles=["train", "validation"])
    assert {t.role for t in only_train.tasks} == {"train", "validation"}
    with pytest.raises(ValueError, match="no train-role rows"):
        load_task_dataset(task_folder, roles=["holdout"])
    holdout = load_task_dataset(task_folder, roles=["holdout"], spec=dataset.spec)
    assert [t.task_id for t in holdout.tasks] == [t.task_id for t in dataset.by_role("holdout")]


def _copy(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_bad_manifest_format_is_refused(tmp_path, task_folder):
    folder = _copy(task_folder, tmp_path / "x")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format"] = "fashion-meta-tasks/0"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="unsupported format"):
        load_task_dataset(folder)


def test_missing_file_is_named(tmp_path, task_folder):
    folder = _copy(task_folder, tmp_path / "x")
    (folder / "part-00001.parquet").unlink()
    with pytest.raises(ValueError, match="missing file part-00001.parquet"):
        load_task_dataset(folder)


def test_missing_column_is_named(tmp_path, task_folder):
    folder = _copy(task_folder, tmp_path / "x")
    table = pq.read_table(folder / "part-00000.parquet").drop_columns([ARTICLE_COLUMNS[1]])
    pq.write_table(table, folder / "part-00000.parquet")
    with pytest.raises(ValueError, match=f"part-00000.parquet: missing column.*{ARTICLE_COLUMNS[1]}"):
        load_task_dataset(folder)


def test_wrong_vector_length_is_named(tmp_path, task_folder):
    folder = _copy(task_folder, tmp_path / "x")
    table = pq.read_table(folder / "part-00000.parquet")
    bad = pa.array([[0.5] * (VECTOR_DIM + 1)] * table.num_rows, type=pa.list_(pa.float32()))
    table = table.set_column(table.schema.get_field_index(ARTICLE_VECTOR), ARTICLE_VECTOR, bad)
    pq.write_table(table, folder / "part-00000.parquet")
    with pytest.raises(ValueError, match=f"{ARTICLE_VECTOR}: vectors must have length {VECTOR_DIM}"):
        load_task_dataset(folder)


def test_query_before_support_is_refused(tmp_path, task_folder):
    folder = _copy(task_folder, tmp_path / "x")
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:  # swap the splits everywhere, and the declared counts with them
        table = pq.read_table(folder / name)
        flipped = pc.if_else(pc.equal(table.column("split"), "support"), "query", "support")
        pq.write_table(table.set_column(table.schema.get_field_index("split"), "split", flipped), folder / name)
    for t in manifest["tasks"]:
        t["support_rows"], t["query_rows"] = t["query_rows"], t["support_rows"]
    manifest["rows"] = {"support": manifest["rows"]["query"], "query": manifest["rows"]["support"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="support rows are not strictly earlier than query rows"):
        load_task_dataset(folder)


def test_groups_are_customer_days_and_concat_keeps_tasks_apart(dataset):
    from fashion_meta.model.data import Batch

    task = dataset.by_role("train")[0]
    query = task.query
    groups = query.groups.numpy()
    keys = [(c, str(d)) for c, d in zip(query.customer_ids, query.days)]
    # one group per (customer, day): equal keys <=> equal group
    for i in range(len(keys)):
        for j in range(len(keys)):
            assert (groups[i] == groups[j]) == (keys[i] == keys[j])
    # every purchase's group holds the negatives sampled with it
    labels = query.labels.numpy()
    assert all((labels[groups == g] == 0).any() for g in np.unique(groups[labels == 1]))
    # the same rows twice, as two tasks: the copies never share a group, each copy keeps the partition; rows
    # selected across both copies (and a concat of concats) still keep them apart
    both = Batch.concat([query, query])
    n = len(query)
    assert set(both.groups[:n].tolist()).isdisjoint(both.groups[n:].tolist())
    assert torch.equal(both.groups[n:] - both.groups[n:].min(), query.groups)
    mixed = both.select(np.arange(2 * n)[::-1].copy())  # rows of both copies, reordered
    assert len(set(mixed.groups.tolist())) == 2 * len(set(groups.tolist()))
    nested = Batch.concat([both, query])
    assert len(set(nested.groups.tolist())) == 3 * len(set(groups.tolist()))
