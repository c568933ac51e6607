"""Lake maintenance (`fashion-meta maintain`): compaction, VACUUM, and retention of run records and dated folders.

What it does, in this order, every step skipped by ``dry_run`` (which only measures what would happen):

1. **Run-log retention**: ops/run_log rows that started more than ``run_log_days`` days ago are deleted, except every
   row of the latest run of each command (and of each nightly stage), so resume and "when did X last run" keep
   working.
2. **Dated folders**: ``<exports>/run_date=D``, ``<lake>/<task files>/run_date=D`` and ``<lake>/runs/run_date=D``
   whose D is ``*_days`` days or more before the newest D of that folder are removed; never the newest one, and
   never the task files of the current model's run date (``<registry>/current.json`` -> its card). Staging and
   other folders are left alone.
3. **OPTIMIZE** (bin-packing compaction) of every Delta table of the lake: files before/after are reported.
4. **VACUUM** with ``retention_hours`` (default 168 = 7 days): only files that no version younger than the
   retention needs are deleted, so readers and time travel to versions inside the window keep working. A
   retention under 168 hours can break a reader of a recent version (or a writer still committing) and is refused
   unless ``allow_short_retention`` is set; then Delta's own check is switched off for this VACUUM only.

It never deletes the current model (the registry is not touched) and holds the lake's writer lock (CLI).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import fs, lake
from fashion_meta.errors import UsageError

log = logging.getLogger(__name__)

SAFE_RETENTION_HOURS = 168.0
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
DEFAULT_LISTING_PARALLELISM = "10000"
TABLES = (
    C.BRONZE_ARTICLES, C.BRONZE_CUSTOMERS, C.BRONZE_TRANSACTIONS, C.BRONZE_REJECTS,
    C.FEATURES_CUSTOMER_DAILY, C.FEATURES_ARTICLE_DAILY, C.FEATURES_ARTICLE_TEXT,
    C.FEATURES_CATEGORY_DAILY, C.FEATURES_GROUP_CATEGORY_DAILY, C.FEATURES_COMPUTED_DAYS,
    C.TASKS, C.RECOMMENDATIONS, C.RUN_LOG,
)
RUNS_DIR = "runs"
_DATED = "run_date="


@dataclass(frozen=True)
class MaintainParams:
    """The [maintain] config section (0 days = keep everything of that kind)."""

    retention_hours: float = SAFE_RETENTION_HOURS
    allow_short_retention: bool = False
    optimize: bool = True
    vacuum: bool = True
    run_log_days: int = 90
    export_days: int = 30
    task_files_days: int = 30
    run_summary_days: int = 90

    @classmethod
    def from_config(cls, cfg) -> "MaintainParams":
        m = cfg["maintain"]
        return cls(
            retention_hours=float(m["retention_hours"]), allow_short_retention=m["allow_short_retention"],
            optimize=m["optimize"], vacuum=m["vacuum"], run_log_days=m["run_log_days"], export_days=m["export_days"],
            task_files_days=m["task_files_days"], run_summary_days=m["run_summary_days"],
        )


@dataclass
class TableReport:
    """One Delta table: active files before/after OPTIMIZE, files and bytes VACUUM removed (or would remove)."""

    table: str
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    vacuum_files: int = 0
    vacuum_bytes: int = 0


@dataclass
class FolderReport:
    """Dated folders of one kind: those removed (or that would be), their bytes, and those kept on purpose."""

    kind: str
    root: str
    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    protected: list[str] = field(default_factory=list)


@dataclass
class MaintainReport:
    """Everything one maintain run did (or, with dry_run, would do)."""

    dry_run: bool
    retention_hours: float
    tables: list[TableReport] = field(default_factory=list)
    run_log_rows_deleted: int = 0
    run_log_rows_kept: int = 0
    folders: list[FolderReport] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Flat name -> count mapping for the run log."""
        out: dict[str, int] = {}
        for t in self.tables:
            out.update({f"{t.table}.files_before": t.files_before, f"{t.table}.files_after": t.files_after,
                        f"{t.table}.vacuum_files": t.vacuum_files, f"{t.table}.vacuum_bytes": t.vacuum_bytes})
        out["run_log.rows_deleted"] = self.run_log_rows_deleted
        for f in self.folders:
            out[f"{f.kind}.folders_removed"] = len(f.removed)
            out[f"{f.kind}.bytes_removed"] = f.bytes
        out["dry_run"] = int(self.dry_run)
        return out

    def format(self) -> str:
        """A human-readable report (one line per table and per kind of folder)."""
        verb = "would " if self.dry_run else ""
        lines = [f"maintain{' (dry run: nothing changed)' if self.dry_run else ''}, VACUUM retention "
                 f"{self.retention_hours:g} h:"]
        for t in self.tables:
            lines.append(f"  {t.table}: files {t.files_before} -> {t.files_after} ({t.bytes_before} -> "
                         f"{t.bytes_after} bytes); VACUUM {verb}delete {t.vacuum_files} files, {t.vacuum_bytes} bytes")
        lines.append(f"  ops/run_log: {verb}delete {self.run_log_rows_deleted} rows, {self.run_log_rows_kept} kept")
        for f in self.folders:
            kept = f"; kept on purpose: {', '.join(f.protected)}" if f.protected else ""
            lines.append(f"  {f.kind} ({f.root}): {verb}remove {len(f.removed)} folders, {f.bytes} bytes"
                         f"{': ' + ', '.join(f.removed) if f.removed else ''}{kept}")
        return "\n".join(lines)


def check_retention(hours: float, allow_short: bool) -> None:
    """Refuse a negative retention, and one under 168 hours unless explicitly allowed."""
    if hours < 0:
        raise UsageError(f"retention must not be negative, got {hours:g} hours")
    if hours < SAFE_RETENTION_HOURS and not allow_short:
        raise UsageError(
            f"VACUUM retention {hours:g} h is shorter than Delta's safe minimum of {SAFE_RETENTION_HOURS:g} h "
            "(7 days): a reader of a recent version or a writer still committing could lose files; use "
            "--allow-short-retention ([maintain] allow_short_retention = true) to do it anyway"
        )


# ----------------------------------------------------------------------------------------- Delta tables
def _detail(spark: SparkSession, path: str) -> tuple[int, int]:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).detail().select("numFiles", "sizeInBytes").first()
    return int(row[0] or 0), int(row[1] or 0)


@contextmanager
def _session_conf(spark: SparkSession, settings: dict[str, str]):
    """Set session configs for the block only, restoring the previous values."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _vacuum_candidates(spark: SparkSession, path: str, hours: float) -> list[str]:
    quoted = path.replace("`", "``")
    rows = spark.sql(f"VACUUM delta.`{quoted}` RETAIN {hours:g} HOURS DRY RUN").collect()
    return [r[0] for r in rows]


def maintain_table(spark: SparkSession, path: str, table: str, params: MaintainParams, dry_run: bool) -> TableReport:
    """OPTIMIZE then VACUUM one table (dry_run: measure only)."""
    from delta.tables import DeltaTable

    report = TableReport(table)
    report.files_before, report.bytes_before = _detail(spark, path)
    if params.optimize and not dry_run:
        DeltaTable.forPath(spark, path).optimize().executeCompaction()
    report.files_after, report.bytes_after = _detail(spark, path)
    if params.vacuum:
        settings = {}
        if params.retention_hours < SAFE_RETENTION_HOURS:  # allowed explicitly (check_retention ran first)
            settings[RETENTION_CHECK] = "false"
        if spark.conf.get(LISTING_PARALLELISM, DEFAULT_LISTING_PARALLELISM) == DEFAULT_LISTING_PARALLELISM:
            # VACUUM lists the table folder in that many Spark tasks (default 10,000): minutes on a small machine
            settings[LISTING_PARALLELISM] = spark.conf.get("spark.sql.shuffle.partitions")
        with _session_conf(spark, settings):
            candidates = _vacuum_candidates(spark, path, params.retention_hours)
            report.vacuum_files = len(candidates)
            report.vacuum_bytes = sum(fs.size(spark, p) for p in candidates if fs.exists(spark, p))
            if candidates and not dry_run:
                DeltaTable.forPath(spark, path).vacuum(params.retention_hours)
    log.info("maintain %s: files %d -> %d, VACUUM %d files (%d bytes)%s", table, report.files_before,
             report.files_after, report.vacuum_files, report.vacuum_bytes, " [dry run]" if dry_run else "")
    return report


# ---------------------------------------------------------------------------------------------- run log
def prune_run_log(spark: SparkSession, lake_root: str, days: int, now: dt.datetime,
                  dry_run: bool) -> tuple[int, int]:
    """Delete run-log rows started more than ``days`` days before ``now``, keeping each command's (and nightly
    stage's) latest run whole; return (rows deleted, rows kept)."""
    from delta.tables import DeltaTable

    path = lake.table_path(lake_root, C.RUN_LOG)
    if days <= 0 or not lake.table_exists(spark, path):
        return 0, 0
    runs = lake.read_table(spark, path)
    keys = ["command", "stage"] if "stage" in runs.columns else ["command"]
    latest = Window.partitionBy(*keys).orderBy(F.col("started_at").desc(), F.col("run_id").desc())
    keep_ids = sorted({r.run_id for r in runs.withColumn("_n", F.row_number().over(latest))
                      .where(F.col("_n") == 1).select("run_id").collect()})
    cutoff = (now - dt.timedelta(days=days)).astimezone(dt.timezone.utc)  # aware: Spark converts it exactly
    condition = F.col("started_at") < F.lit(cutoff)
    if keep_ids:
        condition = condition & ~F.col("run_id").isin(keep_ids)
    tally = runs.agg(F.count(F.lit(1)).alias("total"), F.sum(condition.cast("int")).alias("doomed")).first()
    total, doomed = int(tally["total"]), int(tally["doomed"] or 0)
    if doomed and not dry_run:
        DeltaTable.forPath(spark, path).delete(condition)
    log.info("maintain ops/run_log: %d rows older than %d days%s deleted, %d kept", doomed, days,
             " would be" if dry_run else "", total - doomed)
    return doomed, total - doomed


# ------------------------------------------------------------------------------------------ dated folders
def dated_folders(spark: SparkSession, root: str) -> dict[dt.date, str]:
    """run_date=YYYY-MM-DD folders directly under ``root`` (anything else, staging included, is ignored)."""
    out = {}
    for name in fs.list_names(spark, root):
        if name.startswith(_DATED):
            try:
                out[dt.date.fromisoformat(name[len(_DATED):])] = name
            except ValueError:
                continue
    return out


def prune_dated_folders(spark: SparkSession, kind: str, root: str, days: int, protect: set[dt.date],
                        dry_run: bool) -> FolderReport:
    """Remove ``root``/run_date=D folders with D at least ``days`` days before the newest D (never the newest
    one, nor those in ``protect``)."""
    report = FolderReport(kind, root)
    folders = dated_folders(spark, root)
    if days <= 0 or not folders:
        return report
    newest = max(folders)
    cutoff = newest - dt.timedelta(days=days)
    for day in sorted(folders):
        if day > cutoff:
            continue
        if day == newest or day in protect:
            report.protected.append(folders[day])
            continue
        folder = f"{root.rstrip('/')}/{folders[day]}"
        report.bytes += fs.size(spark, folder)
        report.removed.append(folders[day])
        if not dry_run:
            fs.delete(spark, folder)
    log.info("maintain %s: %d folders%s removed (%d bytes)", kind, len(report.removed), " would be" if dry_run else "",
             report.bytes)
    return report


def current_model_run_date(registry: str | Path) -> dt.date | None:
    """The run date of the task files the current model was trained on (from its card), if any."""
    current = Path(registry) / "current.json"
    try:
        version = json.loads(current.read_text(encoding="utf-8"))["version"]
        card = json.loads((Path(registry) / version / "card.json").read_text(encoding="utf-8"))
        return dt.date.fromisoformat(str(card["run_date"])) if card.get("run_date") else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------------------------------------- entry
def run_maintain(
    spark: SparkSession,
    lake_root: str,
    params: MaintainParams = MaintainParams(),
    *,
    exports_dir: str | None = None,
    task_files_dir: str = "task_files",
    registry: str | Path | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> MaintainReport:
    """Run every maintenance step on the lake under ``lake_root`` (see the module docstring)."""
    check_retention(params.retention_hours, params.allow_short_retention)
    now = now or dt.datetime.now(dt.timezone.utc)
    root = lake.resolve_root(lake_root).rstrip("/")
    report = MaintainReport(dry_run=dry_run, retention_hours=params.retention_hours)

    report.run_log_rows_deleted, report.run_log_rows_kept = prune_run_log(spark, root, params.run_log_days, now, dry_run)
    model_day = current_model_run_date(registry if registry is not None else f"{root}/models")
    report.folders = [
        prune_dated_folders(spark, "exports", exports_dir or f"{root}/exports", params.export_days, set(), dry_run),
        prune_dated_folders(spark, "task_files", f"{root}/{task_files_dir}", params.task_files_days,
                            {model_day} if model_day else set(), dry_run),
        prune_dated_folders(spark, "runs", f"{root}/{RUNS_DIR}", params.run_summary_days, set(), dry_run),
    ]
    for table in TABLES:
        path = lake.table_path(root, table)
        if lake.table_exists(spark, path):
            report.tables.append(maintain_table(spark, path, table, params, dry_run))
    return report
