"""`fashion-meta maintain` on a tiny lake with several small commits: compaction, VACUUM that keeps time travel
inside the retention window, run-log and folder retention that keep what a current reader needs, and a dry run
that changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from fashion_meta import constants as C
from fashion_meta import lake, schemas
from fashion_meta.cli import main
from fashion_meta.errors import UsageError
from fashion_meta.maintain import MaintainParams, check_retention, run_maintain
from fashion_meta.runlog import record_run

pytestmark = pytest.mark.spark
NOW = dt.datetime.now(dt.timezone.utc)
DAYS = [dt.date(2020, 9, 1), dt.date(2020, 9, 10), dt.date(2020, 9, 20), dt.date(2020, 9, 28)]
PARAMS = MaintainParams(run_log_days=30, export_days=7, task_files_days=7, run_summary_days=7)


def _build_lake(spark, root: Path) -> int:
    """Transactions in 4 small commits over 2 dates, run-log rows of several ages, dated folders, a current model;
    returns the transactions table's latest version."""
    path = lake.table_path(str(root), C.BRONZE_TRANSACTIONS)
    lake.ensure_table(spark, path, schemas.BRONZE_TRANSACTIONS, partition_by=("t_dat",))
    for i in range(4):
        rows = [(DAYS[0], "c" * 64, f"{i:010d}", 0.01 * (i + 1), 1), (DAYS[1], "d" * 64, f"{i:010d}", 0.02, 2)]
        spark.createDataFrame(rows, schemas.BRONZE_TRANSACTIONS).write.format("delta").mode("append").save(path)

    def run(run_id, command, days_ago, stage=None):
        record_run(spark, str(root), run_id=run_id, command=command, run_date=None, status="succeeded",
                   started_at=NOW - dt.timedelta(days=days_ago), counts={}, message="", config={}, stage=stage)

    run("ingest-old", "ingest", 100)  # older than 30 days, not the latest ingest: deleted
    run("ingest-new", "ingest", 1)
    run("export-old", "export", 200)  # older than 30 days but the only export run: kept
    run("nightly-old", "nightly", 90, stage="train")  # an older nightly stage row: deleted
    run("nightly-new", "nightly", 60, stage="train")  # the latest train stage, though old: kept

    for kind in ("exports", "task_files", "runs"):
        for day in DAYS:
            folder = root / kind / f"run_date={day}"
            folder.mkdir(parents=True)
            (folder / "manifest.json").write_text("{}" + " " * 100)
    (root / "exports" / ".staging-abc").mkdir()
    (root / "models" / "v1").mkdir(parents=True)
    (root / "models" / "v1" / "card.json").write_text(json.dumps({"version": "v1", "run_date": str(DAYS[0])}))
    (root / "models" / "current.json").write_text(json.dumps({"version": "v1"}))
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.name.endswith(".crc")}


def _folders(root: Path, kind: str) -> list[str]:
    return sorted(p.name for p in (root / kind).iterdir())


def test_short_retention_is_refused_unless_allowed():
    with pytest.raises(UsageError, match="shorter than Delta's safe minimum of 168 h.*--allow-short-retention"):
        check_retention(24, allow_short=False)
    with pytest.raises(UsageError, match="negative"):
        check_retention(-1, allow_short=True)
    check_retention(0, allow_short=True)
    check_retention(168, allow_short=False)


@pytest.mark.slow
def test_maintain_compacts_vacuums_and_prunes_but_keeps_what_readers_need(spark, tmp_path, capsys):
    root = tmp_path / "lake"
    last = _build_lake(spark, root)
    path = lake.table_path(str(root), C.BRONZE_TRANSACTIONS)
    versions = {v: sorted(map(tuple, spark.read.format("delta").option("versionAsOf", v).load(path).collect()))
                for v in range(1, last + 1)}

    # a dry run (even with a 0 h retention) measures but changes nothing
    before = _snapshot(root)
    dry = run_maintain(spark, str(root), MaintainParams(**{**PARAMS.__dict__, "retention_hours": 0.0,
                                                           "allow_short_retention": True}), dry_run=True)
    assert _snapshot(root) == before
    assert dry.run_log_rows_deleted == 2
    assert next(t for t in dry.tables if t.table == C.BRONZE_TRANSACTIONS).files_before == 8

    # the CLI refuses a short retention with one clear line, and its dry run prints the report
    assert main(["maintain", "--lake", str(root), "--retention-hours", "1"]) == 2
    assert "safe minimum of 168 h" in capsys.readouterr().err
    assert main(["maintain", "--lake", str(root), "--dry-run", "--export-days", "7"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing changed" in out and "exports" in out
    assert sorted(_folders(root, "exports")) == sorted([f"run_date={d}" for d in DAYS] + [".staging-abc"])

    # the real run, default 168 h retention
    report = run_maintain(spark, str(root), PARAMS)
    tx = next(t for t in report.tables if t.table == C.BRONZE_TRANSACTIONS)
    assert (tx.files_before, tx.files_after) == (8, 2)  # 4 small files per date -> one per date
    assert tx.vacuum_files == 0  # the replaced files are younger than the retention: kept for readers
    for v, rows in versions.items():  # time travel to every version inside the window still works
        assert sorted(map(tuple, spark.read.format("delta").option("versionAsOf", v).load(path).collect())) == rows

    runs = {r.run_id for r in lake.read_table(spark, lake.table_path(str(root), C.RUN_LOG)).collect()}
    assert {"ingest-new", "export-old", "nightly-new"} <= runs
    assert not runs & {"ingest-old", "nightly-old"}
    assert report.run_log_rows_deleted == 2

    assert _folders(root, "exports") == [".staging-abc", f"run_date={DAYS[3]}"]  # the latest export stays
    assert _folders(root, "task_files") == [f"run_date={DAYS[0]}", f"run_date={DAYS[3]}"]  # current model's too
    assert _folders(root, "runs") == [f"run_date={DAYS[3]}"]
    assert (root / "models" / "v1" / "card.json").is_file() and (root / "models" / "current.json").is_file()
    removed = {f.kind: len(f.removed) for f in report.folders}
    assert removed == {"exports": 3, "task_files": 2, "runs": 3}
    assert report.counts()[f"{C.BRONZE_TRANSACTIONS}.files_after"] == 2

    # an explicitly allowed 0 h retention deletes the replaced files: old versions are gone, the latest is intact
    short = run_maintain(spark, str(root), MaintainParams(retention_hours=0.0, allow_short_retention=True,
                                                          run_log_days=0, export_days=0, task_files_days=0,
                                                          run_summary_days=0))
    assert next(t for t in short.tables if t.table == C.BRONZE_TRANSACTIONS).vacuum_files == 8
    assert sorted(map(tuple, lake.read_table(spark, path).collect())) == versions[last]
    after = {r.run_id for r in lake.read_table(spark, lake.table_path(str(root), C.RUN_LOG)).collect()}
    assert after == runs  # VACUUM removed only unreferenced files (Spark's empty part files here), no live rows
    with pytest.raises(Exception):
        spark.read.format("delta").option("versionAsOf", 1).load(path).collect()
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", "true") == "true"  # restored
    assert os.listdir(root / "exports")  # retention 0 days = keep all
