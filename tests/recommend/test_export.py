"""Storefront exports from a tiny recommendations Delta table: files, manifest, re-runs and failures."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fashion_meta import constants as C
from fashion_meta import lake, schemas
from fashion_meta.errors import InputError
from fashion_meta.recommend import export
from fashion_meta.recommend.export import category_slugs, export_recommendations, slugify

pytestmark = pytest.mark.spark
D1 = dt.date(2020, 3, 10)
D2 = dt.date(2020, 3, 11)
CATEGORIES = ("T-shirt", "T shirt", "Jäckchen / Blazer")


def _sha8(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]


EXPECTED_SLUGS = {"T-shirt": f"t-shirt-{_sha8('T-shirt')}", "T shirt": f"t-shirt-{_sha8('T shirt')}",
                  "Jäckchen / Blazer": "jackchen-blazer"}


def _items(ids, scores):
    return [(rank, a, s) for rank, (a, s) in enumerate(zip(ids, scores), start=1)]


def _rows():
    """D1: 3 categories x 3 customers (inserted out of order); D2: other ids, scores and model."""
    rows = []
    for k, category in enumerate(CATEGORIES):
        for customer, mode in (("c3", "warm"), ("c1", "fallback"), ("c2", "meta_adapted")):
            ids = [f"000{k}{customer[-1]}00001", "0108775015", f"01{k}0000000"[:10]]
            rows.append((D1, category, customer, "25-34|online", _items(ids, [0.9, 0.123456789, 0.1]), mode, "m-1"))
    rows.append((D1, "T shirt", "c4", "unknown|store", _items(["0000000042"], [1e-7]), "transferred", "m-1"))
    for category in CATEGORIES:
        rows.append((D2, category, "c9", "<=24|store", _items(["0999999999"], [0.5]), "warm", "m-2"))
    return rows


@pytest.fixture(scope="module")
def lake_with_recs(spark, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("export") / "lake")
    path = lake.table_path(root, C.RECOMMENDATIONS)
    lake.ensure_table(spark, path, schemas.RECOMMENDATIONS, partition_by=("run_date",))
    spark.createDataFrame(_rows(), schemas.RECOMMENDATIONS).write.format("delta").mode("append").save(path)
    return root


def _delta_rows(run_date: dt.date) -> dict[str, list[tuple]]:
    """Expected rows per category: (customer, group, mode, model, [(rank, article_id, score)]) sorted by customer."""
    out: dict[str, list[tuple]] = {}
    for r in sorted(_rows(), key=lambda r: (r[1], r[2])):
        if r[0] == run_date:
            out.setdefault(r[1], []).append((r[2], r[3], r[5], r[6], [(i[0], i[1], i[2]) for i in r[4]]))
    return out


def _read_back(path: Path, fmt: str) -> list[tuple]:
    if fmt == "jsonl":
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [(d["customer_id"], d["user_group"], d["serving_mode"], d["model_version"],
                 [(i["rank"], i["article_id"], i["score"]) for i in d["items"]]) for d in lines]
    if fmt == "parquet":
        return [(d["customer_id"], d["user_group"], d["serving_mode"], d["model_version"],
                 [(i["rank"], i["article_id"], i["score"]) for i in d["items"]])
                for d in pq.read_table(path).to_pylist()]
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == export.CSV_COLUMNS
        return [(d["customer_id"], d["user_group"], d["serving_mode"], d["model_version"],
                 [(rank, a, float(s)) for rank, (a, s) in
                  enumerate(zip(d["article_ids"].split(" "), d["scores"].split(" ")), start=1)])
                for d in reader]


def _same_scores(got: list[tuple], expected: list[tuple], fmt: str) -> None:
    for g, e in zip(got, expected):
        for (_, _, gs), (_, _, es) in zip(g[4], e[4]):
            if fmt == "csv":
                assert f"{gs:.6g}" == f"{np.float32(es):.6g}"
            else:  # exact: the float32 read back is the stored one
                assert np.float32(gs) == np.float32(es)


def _without_scores(rows: list[tuple]) -> list[tuple]:
    return [(*r[:4], [(rank, a) for rank, a, _ in r[4]]) for r in rows]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_slugify_and_collisions():
    assert slugify("  Jäckchen / Blazer!! ") == "jackchen-blazer"
    assert slugify("日本") == "category" and slugify("") == "category"
    assert slugify("A" * 200) == "a" * export.MAX_SLUG_LENGTH
    assert category_slugs(CATEGORIES) == EXPECTED_SLUGS
    assert category_slugs(reversed(CATEGORIES)) == EXPECTED_SLUGS  # deterministic


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_export_files_and_manifest_match_the_partition(spark, lake_with_recs, tmp_path, fmt):
    lines: list[str] = []
    summary = export_recommendations(spark, lake_with_recs, D1, fmt, str(tmp_path / "out"), progress=lines.append)
    folder = tmp_path / "out" / "run_date=2020-03-10"
    assert summary.path == folder and summary.rows == 10
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == summary.manifest
    assert manifest["format"] == "fashion-meta-export/1" and manifest["file_format"] == fmt
    assert manifest["run_date"] == "2020-03-10" and manifest["total_rows"] == 10
    assert manifest["model_versions"] == ["m-1"]
    assert manifest["serving_modes"] == {"fallback": 3, "meta_adapted": 3, "transferred": 1, "warm": 3}
    assert {c["category"]: c["slug"] for c in manifest["categories"]} == EXPECTED_SLUGS
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{s}.{fmt}" for s in EXPECTED_SLUGS.values()]
                                                              + ["manifest.json"])
    assert sorted(summary.files) == sorted(folder / f"{s}.{fmt}" for s in EXPECTED_SLUGS.values())
    assert len(lines) == 3 and lines[0].startswith("export 1/3: ") and lines[-1].endswith(" rows)")

    expected = _delta_rows(D1)
    for entry in manifest["categories"]:
        path = folder / entry["file"]
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        got = _read_back(path, fmt)
        assert entry["rows"] == len(got)
        assert _without_scores(got) == _without_scores(expected[entry["category"]])  # ids keep leading zeros
        _same_scores(got, expected[entry["category"]], fmt)
    assert sum(c["rows"] for c in manifest["categories"]) == manifest["total_rows"]


def test_jsonl_scores_are_short_decimals(spark, lake_with_recs, tmp_path):
    summary = export_recommendations(spark, lake_with_recs, D1, "jsonl", str(tmp_path))
    text = (summary.path / f"{EXPECTED_SLUGS['T shirt']}.jsonl").read_text(encoding="utf-8")
    assert '"score": 0.9' in text and '"score": 0.12345679' in text and '"article_id": "0000000042"' in text


def test_csv_keeps_six_significant_digits(spark, lake_with_recs, tmp_path):
    summary = export_recommendations(spark, lake_with_recs, D1, "csv", str(tmp_path))
    lines = (summary.path / f"{EXPECTED_SLUGS['T shirt']}.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "customer_id,user_group,serving_mode,model_version,article_ids,scores"
    assert lines[1] == "c1,25-34|online,fallback,m-1,0001100001 0108775015 0110000000,0.9 0.123457 0.1"
    assert lines[-1] == "c4,unknown|store,transferred,m-1,0000000042,1e-07"


def test_other_run_date_is_exported_alone(spark, lake_with_recs, tmp_path):
    summary = export_recommendations(spark, lake_with_recs, D2, "parquet", str(tmp_path))
    assert summary.rows == 3 and summary.manifest["model_versions"] == ["m-2"]
    for path in summary.files:
        assert [r["customer_id"] for r in pq.read_table(path).to_pylist()] == ["c9"]


def test_reexport_replaces_previous_and_leaves_no_staging(spark, lake_with_recs, tmp_path):
    first = export_recommendations(spark, lake_with_recs, D1, "csv", str(tmp_path))
    (first.path / "stale.csv").write_text("old", encoding="utf-8")
    second = export_recommendations(spark, lake_with_recs, D1, "jsonl", str(tmp_path))
    assert second.path == first.path
    assert sorted(p.name for p in second.path.iterdir()) == sorted([p.name for p in second.files] + ["manifest.json"])
    assert [p.name for p in tmp_path.iterdir()] == ["run_date=2020-03-10"]  # no staging or old folders


def test_failure_mid_export_keeps_previous_export(spark, lake_with_recs, tmp_path, monkeypatch):
    first = export_recommendations(spark, lake_with_recs, D1, "parquet", str(tmp_path))
    before = _snapshot(tmp_path)
    calls = []
    real_write = export.write_category

    def failing_write(table, path, fmt):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(table, path, fmt)

    monkeypatch.setattr(export, "write_category", failing_write)
    with pytest.raises(OSError, match="disk full"):
        export_recommendations(spark, lake_with_recs, D1, "jsonl", str(tmp_path))
    assert len(calls) == 2
    assert _snapshot(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]


def test_missing_rows_are_never_published(spark, lake_with_recs, tmp_path, monkeypatch):
    real_read = export._read_category
    monkeypatch.setattr(export, "_read_category", lambda part, category: real_read(part, category).slice(0, 1))
    with pytest.raises(RuntimeError, match="not published"):
        export_recommendations(spark, lake_with_recs, D1, "csv", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_missing_partition_or_table_is_an_input_error(spark, lake_with_recs, tmp_path):
    with pytest.raises(InputError, match="no recommendations for run date 2020-03-12"):
        export_recommendations(spark, lake_with_recs, dt.date(2020, 3, 12), "csv", str(tmp_path))
    with pytest.raises(InputError, match="no recommendations table"):
        export_recommendations(spark, str(tmp_path / "empty_lake"), D1, "csv", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, out", [("xlsx", "out"), ("csv", "s3://bucket/exports")])
def test_bad_format_or_remote_folder_is_an_input_error(spark, lake_with_recs, tmp_path, fmt, out):
    target = out if "://" in out else str(tmp_path / out)
    with pytest.raises(InputError) as info:
        export_recommendations(spark, lake_with_recs, D1, fmt, target)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
