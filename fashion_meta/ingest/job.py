"""The ingest stage: H&M files in a folder -> bronze Delta tables, with every dropped row in bronze/rejects.

Order of work: all headers are checked before anything is read or written (a missing file or required column
is an ``InputError``, exit 2, nothing written); then articles and customers are upserted by key, the
transaction dates present in the input are replaced, and the rejects of each ingested file are replaced.
Each write is one atomic Delta commit and the whole stage is idempotent, so a rerun after a crash converges
to the same tables.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import fs, lake, schemas
from fashion_meta.errors import InputError
from fashion_meta.ingest import sources, validate

log = logging.getLogger(__name__)

_EXPECTED = {
    C.ARTICLES_FILE: C.ARTICLE_COLUMNS,
    C.CUSTOMERS_FILE: C.CUSTOMER_COLUMNS,
    C.TRANSACTIONS_FILE: C.TRANSACTION_COLUMNS,
}
_TABLES = {
    C.ARTICLES_FILE: C.BRONZE_ARTICLES,
    C.CUSTOMERS_FILE: C.BRONZE_CUSTOMERS,
    C.TRANSACTIONS_FILE: C.BRONZE_TRANSACTIONS,
}


@dataclass
class FileCounts:
    """Rows of one input file: read = written + rejected + skipped."""

    path: str
    read: int = 0
    written: int = 0
    rejected: int = 0
    skipped: int = 0


@dataclass
class IngestSummary:
    """What one ingest did."""

    files: dict[str, FileCounts] = field(default_factory=dict)
    first_date: str | None = None
    last_date: str | None = None
    articles_inserted: int = 0
    articles_updated: int = 0
    customers_inserted: int = 0
    customers_updated: int = 0
    transactions_unknown_customer: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """Flat name -> count mapping for the run log."""
        out = {f"{name}.{k}": v for name, fc in self.files.items() for k, v in asdict(fc).items() if k != "path"}
        out.update(
            articles_inserted=self.articles_inserted,
            articles_updated=self.articles_updated,
            customers_inserted=self.customers_inserted,
            customers_updated=self.customers_updated,
            transactions_unknown_customer=self.transactions_unknown_customer,
        )
        return out


def _open_sources(spark: SparkSession, input_dir: str, lake_root: str) -> dict[str, sources.SourceFile]:
    if not fs.exists(spark, input_dir):
        raise InputError(f"input folder not found: {input_dir}")
    opened = {}
    for name in C.INPUT_FILES:
        path = sources.find_source(spark, input_dir, name)
        if path is None:
            if name == C.TRANSACTIONS_FILE:
                raise InputError(f"{input_dir}: no {name}.csv / .csv.gz / .parquet found")
            if not lake.table_exists(spark, lake.table_path(lake_root, _TABLES[name])):
                raise InputError(
                    f"{input_dir}: no {name}.csv / .csv.gz / .parquet found, and {_TABLES[name]} does not exist yet"
                )
            log.info("%s: no file in the input; keeping %s as it is", name, _TABLES[name])
            continue
        opened[name] = sources.open_source(
            spark, name, fs.qualified(spark, path), _EXPECTED[name], C.REQUIRED_COLUMNS[name]
        )
    return opened


def _parse(spark: SparkSession, source: sources.SourceFile, max_field_chars: int) -> DataFrame:
    rows = sources.read_rows(spark, source, _EXPECTED[source.name])
    return validate.with_field_length_checks(rows, _EXPECTED[source.name], max_field_chars)


def _rejects(df: DataFrame, source: sources.SourceFile, now: dt.datetime) -> DataFrame:
    return df.where(F.size("_reasons") > 0).select(
        F.lit(source.path).alias("source_path"),
        F.lit(source.file_name).alias("source_file"),
        F.col("row_number").cast("long"),
        F.col("raw"),
        F.concat_ws("; ", "_reasons").alias("reason"),
        F.lit(now).cast("timestamp").alias("ingested_at"),
    )


def run_ingest(
    spark: SparkSession,
    input_dir: str,
    lake_root: str,
    *,
    since: dt.date | None = None,
    as_of: dt.date | None = None,
    max_field_chars: int = 20_000,
) -> IngestSummary:
    """Ingest ``input_dir`` into the bronze tables under ``lake_root``; see the module docstring."""
    started = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    summary = IngestSummary()
    opened = _open_sources(spark, input_dir, lake_root)
    paths = {name: lake.table_path(lake_root, t) for name, t in _TABLES.items()}
    rejects_path = lake.table_path(lake_root, C.BRONZE_REJECTS)
    persisted: list[DataFrame] = []
    reject_frames: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    # --- parse and validate (nothing written yet) ---
    try:  # every file is read to its end here, before any write: an unreadable file stops the job cleanly
        articles = customers = None
        if C.ARTICLES_FILE in opened:
            articles = keep(validate.with_typed_articles(_parse(spark, opened[C.ARTICLES_FILE], max_field_chars)))
        if C.CUSTOMERS_FILE in opened:
            customers = keep(validate.with_typed_customers(_parse(spark, opened[C.CUSTOMERS_FILE], max_field_chars)))

        known_ids = []
        if articles is not None:
            known_ids.append(articles.where(F.size("_reasons") == 0).select("article_id"))
        if lake.table_exists(spark, paths[C.ARTICLES_FILE]):
            known_ids.append(lake.read_table(spark, paths[C.ARTICLES_FILE]).select("article_id"))
        tx_source = opened[C.TRANSACTIONS_FILE]
        tx = validate.with_typed_transactions(_parse(spark, tx_source, max_field_chars))
        tx = validate.with_known_articles(tx, known_ids[0].unionByName(known_ids[1]) if len(known_ids) == 2 else known_ids[0])
        valid = F.size("_reasons") == 0
        skipped = (valid & (F.col("t_dat") < F.lit(since))) if since else F.lit(False)
        tx = keep(tx.withColumn("_skipped", skipped))

        stats = tx.agg(
            F.count(F.lit(1)).alias("read"),
            F.sum(F.when(F.size("_reasons") > 0, 1).otherwise(0)).alias("rejected"),
            F.sum(F.col("_skipped").cast("int")).alias("skipped"),
            F.min(F.when(valid & ~F.col("_skipped"), F.col("t_dat"))).alias("first"),
            F.max(F.when(valid & ~F.col("_skipped"), F.col("t_dat"))).alias("last"),
        ).first()
        master_counts = {
            name: (df.count(), df.where(F.size("_reasons") > 0).count())
            for name, df in ((C.ARTICLES_FILE, articles), (C.CUSTOMERS_FILE, customers))
            if df is not None
        }
    except Exception as exc:
        problem = sources.unreadable_file(exc, list(opened.values()))
        if problem is None:
            raise
        for df in persisted:
            df.unpersist()
        raise InputError(problem) from None
    tx_counts = FileCounts(tx_source.path, read=stats["read"], rejected=stats["rejected"] or 0, skipped=stats["skipped"] or 0)
    tx_counts.written = tx_counts.read - tx_counts.rejected - tx_counts.skipped
    summary.files[C.TRANSACTIONS_FILE] = tx_counts
    summary.first_date = stats["first"].isoformat() if stats["first"] else None
    summary.last_date = stats["last"].isoformat() if stats["last"] else None
    log.info(
        "%s: %d rows read, %d valid, %d rejected, %d before --since; dates %s..%s",
        tx_source.file_name, tx_counts.read, tx_counts.written, tx_counts.rejected, tx_counts.skipped,
        summary.first_date, summary.last_date,
    )
    good_tx = tx.where(valid & ~F.col("_skipped"))
    as_of = as_of or stats["last"] or now.date()

    # --- writes: articles, customers, transactions, rejects; each one atomic, all idempotent ---
    if articles is not None:
        src = opened[C.ARTICLES_FILE]
        first_sale = good_tx.groupBy("article_id").agg(F.min("t_dat").alias("_first_sale"))
        rows = (
            articles.where(F.size("_reasons") == 0)
            .join(first_sale, on="article_id", how="left")
            .withColumn("first_seen_date", F.least(F.lit(as_of), F.coalesce("_first_sale", F.lit(as_of))))
            .withColumn("ingested_at", F.lit(now).cast("timestamp"))
            .withColumn("source_file", F.lit(src.file_name))
        )
        lake.ensure_table(spark, paths[C.ARTICLES_FILE], schemas.BRONZE_ARTICLES)
        merged = lake.merge_upsert(
            spark,
            schemas.check_schema(rows, schemas.BRONZE_ARTICLES, C.BRONZE_ARTICLES),
            paths[C.ARTICLES_FILE],
            ("article_id",),
            update_set={"first_seen_date": "least(t.first_seen_date, s.first_seen_date)"},
        )
        summary.articles_inserted, summary.articles_updated = merged["inserted"], merged["updated"]
        counts = FileCounts(src.path, read=master_counts[C.ARTICLES_FILE][0], rejected=master_counts[C.ARTICLES_FILE][1])
        counts.written = counts.read - counts.rejected
        summary.files[C.ARTICLES_FILE] = counts
        reject_frames.append(_rejects(articles, src, now))
        log.info("%s: %d rows read, %d rejected; %d articles inserted, %d updated",
                 src.file_name, counts.read, counts.rejected, merged["inserted"], merged["updated"])

    if customers is not None:
        src = opened[C.CUSTOMERS_FILE]
        rows = (
            customers.where(F.size("_reasons") == 0)
            .withColumn("ingested_at", F.lit(now).cast("timestamp"))
            .withColumn("source_file", F.lit(src.file_name))
        )
        lake.ensure_table(spark, paths[C.CUSTOMERS_FILE], schemas.BRONZE_CUSTOMERS)
        merged = lake.merge_upsert(
            spark, schemas.check_schema(rows, schemas.BRONZE_CUSTOMERS, C.BRONZE_CUSTOMERS), paths[C.CUSTOMERS_FILE], ("customer_id",)
        )
        summary.customers_inserted, summary.customers_updated = merged["inserted"], merged["updated"]
        counts = FileCounts(src.path, read=master_counts[C.CUSTOMERS_FILE][0], rejected=master_counts[C.CUSTOMERS_FILE][1])
        counts.written = counts.read - counts.rejected
        summary.files[C.CUSTOMERS_FILE] = counts
        reject_frames.append(_rejects(customers, src, now))
        log.info("%s: %d rows read, %d rejected; %d customers inserted, %d updated",
                 src.file_name, counts.read, counts.rejected, merged["inserted"], merged["updated"])

    lake.ensure_table(spark, paths[C.TRANSACTIONS_FILE], schemas.BRONZE_TRANSACTIONS, partition_by=("t_dat",))
    lake.replace_partitions(
        schemas.check_schema(good_tx, schemas.BRONZE_TRANSACTIONS, C.BRONZE_TRANSACTIONS),
        paths[C.TRANSACTIONS_FILE],
        ("t_dat",),
    )
    reject_frames.append(_rejects(tx, tx_source, now))
    if lake.table_exists(spark, paths[C.CUSTOMERS_FILE]):
        # Kept by rule: a purchase by a customer missing from customers.csv is real; the age band is 'unknown'.
        known_customers = lake.read_table(spark, paths[C.CUSTOMERS_FILE]).select("customer_id")
        summary.transactions_unknown_customer = good_tx.join(known_customers, on="customer_id", how="left_anti").count()
        if summary.transactions_unknown_customer:
            log.warning("%d transactions name a customer absent from customers (kept; age band unknown)",
                        summary.transactions_unknown_customer)

    lake.ensure_table(spark, rejects_path, schemas.BRONZE_REJECTS)
    all_rejects = reject_frames[0]
    for frame in reject_frames[1:]:
        all_rejects = all_rejects.unionByName(frame)
    ingested_paths = lake.sql_literal_list([s.path for s in opened.values()])
    lake.replace_where(
        schemas.check_schema(all_rejects, schemas.BRONZE_REJECTS, C.BRONZE_REJECTS),
        rejects_path,
        f"source_path IN ({ingested_paths})",
    )
    for df in persisted:
        df.unpersist()
    summary.seconds = round(time.monotonic() - started, 2)
    return summary
