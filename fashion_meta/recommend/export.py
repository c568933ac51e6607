"""Storefront exports: one file per category of a run date's recommendations, plus a manifest written last.

Layout: ``<out_dir>/run_date=<D>/<slug>.<ext>`` and ``manifest.json``. The whole folder is built in a staging
folder beside it and swapped in by renames, so a re-run replaces the previous export and a failed run leaves it as
it was. The export folder is a local path: files are written with pyarrow and Python on the driver, which holds
one category at a time.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import lake
from fashion_meta.errors import InputError

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "fashion-meta-export/1"
MANIFEST_FILE = "manifest.json"
FORMATS = ("jsonl", "parquet", "csv")
EXPORT_COLUMNS = ("customer_id", "user_group", "serving_mode", "model_version", "items")
CSV_COLUMNS = ("customer_id", "user_group", "serving_mode", "model_version", "article_ids", "scores")
MAX_SLUG_LENGTH = 80  # file names stay far below the usual 255-byte limit
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")
_BATCH_ROWS = 10_000


@dataclass
class ExportSummary:
    """What one export wrote: the run date's folder, its category files, rows, seconds and the manifest."""

    path: Path
    files: list[Path]
    rows: int
    seconds: float
    manifest: dict[str, Any]


# ------------------------------------------------------------------------------------------------ slugs
def slugify(name: str) -> str:
    """A filesystem-safe slug: lowercase ASCII, runs of other characters -> '-', trimmed; empty -> 'category'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:MAX_SLUG_LENGTH].strip("-")
    return slug or "category"


def category_slugs(categories: Iterable[str]) -> dict[str, str]:
    """Slug per category; categories sharing a slug each get '-' + the first 8 hex digits of sha256(name)."""
    names = sorted(set(categories))
    base = {name: slugify(name) for name in names}
    counts = Counter(base.values())
    slugs = {
        name: f"{slug}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}" if counts[slug] > 1 else slug
        for name, slug in base.items()
    }
    if len(set(slugs.values())) != len(slugs):  # a suffixed slug equal to another name's plain slug
        raise RuntimeError(f"category slugs are not unique: {sorted(slugs.items())}")
    return slugs


# ---------------------------------------------------------------------------------------------- writers
def write_category(table: pa.Table, path: Path, fmt: str) -> None:
    """Write one category's rows (EXPORT_COLUMNS, sorted) to ``path`` in ``fmt``."""
    if fmt == "parquet":
        pq.write_table(table.select(list(EXPORT_COLUMNS)), path)
    elif fmt == "jsonl":
        _write_jsonl(table, path)
    elif fmt == "csv":
        _write_csv(table, path)
    else:
        raise InputError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


def _short_scores(table: pa.Table) -> pa.Table:
    """``items`` with float32 scores widened to the shortest decimal that reads back as the same float32."""
    items = table.column("items").combine_chunks()
    values = items.values  # the whole child array: ``offsets`` index into it, also for a sliced list array
    scores = pc.cast(pc.cast(values.field("score"), pa.string()), pa.float64())
    widened = pa.StructArray.from_arrays(
        [values.field("rank"), values.field("article_id"), scores], names=["rank", "article_id", "score"],
        mask=values.is_null(),
    )
    rebuilt = pa.ListArray.from_arrays(items.offsets, widened, mask=items.is_null())
    return table.set_column(table.schema.get_field_index("items"), "items", rebuilt)


def _json_score(score: float | None) -> float | None:
    # Checks reject NaN before publishing; should one slip through, JSON gets null rather than invalid NaN.
    return score if score is not None and math.isfinite(score) else None


def _write_jsonl(table: pa.Table, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for batch in _short_scores(table).select(list(EXPORT_COLUMNS)).to_batches(_BATCH_ROWS):
            for row in batch.to_pylist():
                row["items"] = [
                    None if i is None else {"rank": i["rank"], "article_id": i["article_id"],
                                            "score": _json_score(i["score"])}
                    for i in row["items"] or ()
                ]
                out.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


def _format_score(score: float | None) -> str:
    return "nan" if score is None or math.isnan(score) else f"{score:.6g}"


def _write_csv(table: pa.Table, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for batch in table.select(list(EXPORT_COLUMNS)).to_batches(_BATCH_ROWS):
            for row in batch.to_pylist():
                items = [i for i in row["items"] or () if i is not None]
                writer.writerow([
                    row["customer_id"], row["user_group"], row["serving_mode"], row["model_version"],
                    " ".join(str(i["article_id"]) for i in items),
                    " ".join(_format_score(i["score"]) for i in items),
                ])


# ------------------------------------------------------------------------------------------------ input
def _local_dir(out_dir: str) -> Path:
    """``out_dir`` as an absolute local path; a remote URL is refused."""
    if _URL.match(out_dir):
        parsed = urlparse(out_dir)
        if parsed.scheme != "file":
            raise InputError(f"export folder {out_dir} is not a local path: exports are written on the driver; "
                             "set [export] out to a local folder")
        out_dir = parsed.path
    return Path(out_dir).expanduser().resolve()


def _partition(spark: SparkSession, lake_root: str, run_date: dt.date) -> tuple[DataFrame, int]:
    """The run date's rows from one pinned version of the recommendations table, and that version."""
    from delta.tables import DeltaTable

    path = lake.table_path(lake_root, C.RECOMMENDATIONS)
    if not lake.table_exists(spark, path):
        raise InputError(f"no recommendations table at {path}: run `fashion-meta recommend` first")
    # Pin one version: every per-category read then sees the same snapshot as the row count.
    version = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    df = (
        spark.read.format("delta").option("versionAsOf", version).load(path)
        .where(F.col("run_date") == F.lit(run_date))
        .select("category", *EXPORT_COLUMNS)
    )
    return df, version


def _read_category(part: DataFrame, category: str) -> pa.Table:
    """One category's rows, sorted by customer_id, as an Arrow table on the driver."""
    return part.where(F.col("category") == category).select(*EXPORT_COLUMNS).orderBy("customer_id").toArrow()


# ---------------------------------------------------------------------------------------------- folders
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sync(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself to disk, so a crash after the swap loses nothing."""
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by the complete ``staging`` folder: old aside, staging in, old deleted.

    On a local file system each rename is atomic; between the two renames the folder is briefly absent, but never
    half written. If the second rename fails the old folder is put back.
    """
    old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
    moved_aside = False
    if target.exists():
        os.rename(target, old)
        moved_aside = True
    try:
        os.rename(staging, target)
    except BaseException:
        if moved_aside:
            os.rename(old, target)
        raise
    if moved_aside:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ export
def export_recommendations(
    spark: SparkSession,
    lake_root: str,
    run_date: dt.date,
    fmt: str,
    out_dir: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> ExportSummary:
    """Export the recommendations of ``run_date`` as per-category files + manifest under the local ``out_dir``."""
    started = time.monotonic()
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    root = _local_dir(out_dir)
    part, version = _partition(spark, lake_root, run_date)
    part = part.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        expected = part.count()
        if expected == 0:
            raise InputError(f"no recommendations for run date {run_date} in "
                             f"{lake.table_path(lake_root, C.RECOMMENDATIONS)}: run `fashion-meta recommend` first")
        categories = sorted(r[0] for r in part.select("category").distinct().collect())
        target = root / f"run_date={run_date.isoformat()}"
        staging = root / f".staging-run_date={run_date.isoformat()}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            manifest = _write_all(part, categories, staging, fmt, run_date, version, expected, progress)
            _sync(staging)
            _swap_in(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # already gone after a successful swap
    finally:
        part.unpersist()
    files = [target / c["file"] for c in manifest["categories"]]
    seconds = round(time.monotonic() - started, 2)
    log.info("export %s: %d rows in %d %s files to %s (%.1f s)", run_date, expected, len(files), fmt, target, seconds)
    return ExportSummary(path=target, files=files, rows=expected, seconds=seconds, manifest=manifest)


def _write_all(part: DataFrame, categories: list[str], folder: Path, fmt: str, run_date: dt.date, version: int,
               expected: int, progress: Callable[[str], None] | None) -> dict[str, Any]:
    """Write every category's file into ``folder``, then the manifest; refuse an export missing rows."""
    slugs = category_slugs(categories)
    entries: list[dict[str, Any]] = []
    modes: Counter[str] = Counter()
    versions: set[str] = set()
    for i, category in enumerate(categories, start=1):
        table = _read_category(part, category)
        name = f"{slugs[category]}.{fmt}"
        write_category(table, folder / name, fmt)
        modes.update(_counts(table, "serving_mode"))
        versions.update(v for v in pc.unique(table.column("model_version")).to_pylist() if v is not None)
        entries.append({"category": category, "slug": slugs[category], "file": name, "rows": table.num_rows,
                        "sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size})
        if progress is not None:
            progress(f"export {i}/{len(categories)}: {slugs[category]} ({table.num_rows} rows)")
    total = sum(e["rows"] for e in entries)
    if total != expected:
        raise RuntimeError(f"export of {run_date} wrote {total} rows but the partition has {expected}: not published")
    manifest = {
        "format": MANIFEST_FORMAT,
        "run_date": run_date.isoformat(),
        "file_format": fmt,
        "table_version": version,
        "model_versions": sorted(versions),
        "serving_modes": dict(sorted(modes.items())),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "categories": entries,
        "total_rows": total,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    """Row count per value of a string column."""
    return {str(r["values"]): int(r["counts"]) for r in pc.value_counts(table.column(column)).to_pylist()}
