"""Late and corrected data: ingest a late or corrected day, then recompute only the feature days it affects.

A feature row for day D reads transactions of the look-back windows ending at D (at most
``longest_window_days`` days: t_dat in (D - W, D]) plus a few values over the whole history up to D: an
article's first sale (``days_since_first_sale``), a category's purchases in total, first sale, age and
``is_new``. A change of the transactions of the dates T therefore affects the feature days
``[min T, max T + W - 1]`` and, only when it changes one of those whole-history values (per-article purchase
counts on T or an article's first sale), every later feature day too. A change of an article's category,
product code or first-seen date, or of a customer's age (the articles/customers files of the input, upserted
by ingest), affects every feature day.

The recompute never creates feature days that did not exist: it runs ``run_features`` once per run of
consecutive existing feature days inside the affected range (normally one), and every other day keeps its
rows and files (``replaceWhere`` replaces exactly the recomputed days).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import lake
from fashion_meta.features.job import FeatureParams, FeatureSummary, article_categories, run_features

log = logging.getLogger(__name__)

# Windows hard-coded in the feature definitions: 7 and 28 days (category, group x category and article sales).
FIXED_WINDOW_DAYS = 28
DAILY_TABLES = (
    C.FEATURES_CUSTOMER_DAILY,
    C.FEATURES_ARTICLE_DAILY,
    C.FEATURES_CATEGORY_DAILY,
    C.FEATURES_GROUP_CATEGORY_DAILY,
)


def longest_window_days(params: FeatureParams) -> int:
    """The longest bounded look-back of any daily feature, in days including the as-of day."""
    return max(params.lookback_days, params.channel_days, params.in_stock_sales_days, FIXED_WINDOW_DAYS)


@dataclass
class LatePlan:
    """What a late or corrected ingest changed, and which feature days to recompute."""

    touched_dates: list[dt.date] = field(default_factory=list)
    window_days: int = 0
    whole_history_changed: bool = False
    dimensions_changed: list[str] = field(default_factory=list)
    feature_dates: list[dt.date] = field(default_factory=list)
    recompute: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    @property
    def days(self) -> int:
        """Number of feature days to recompute."""
        return sum((end - start).days + 1 for start, end in self.recompute)

    def describe(self) -> str:
        """One line for the log and the command's message."""
        if not self.touched_dates and not self.dimensions_changed:
            return "no transaction dates written"
        if not self.recompute:
            return f"{len(self.touched_dates)} transaction dates written; no existing feature day affected"
        ranges = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in self.recompute)
        why = []
        if self.whole_history_changed:
            why.append("whole-history values changed: every later day")
        if self.dimensions_changed:
            why.append(f"{' and '.join(self.dimensions_changed)} changed: every day")
        reason = f" ({'; '.join(why)})" if why else f" (window {self.window_days} days)"
        return f"{len(self.touched_dates)} transaction dates written; recompute {self.days} feature days {ranges}{reason}"


def table_version(spark: SparkSession, path: str) -> int | None:
    """The Delta table's current version, or None when there is no table."""
    from delta.tables import DeltaTable

    if not lake.table_exists(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def lake_versions(spark: SparkSession, lake_root: str) -> dict[str, int | None]:
    """Current versions of the bronze tables (taken before an ingest, to see what it changed)."""
    tables = (C.BRONZE_TRANSACTIONS, C.BRONZE_ARTICLES, C.BRONZE_CUSTOMERS)
    return {t: table_version(spark, lake.table_path(lake_root, t)) for t in tables}


def written_partition_dates(spark: SparkSession, path: str, after_version: int | None) -> list[dt.date]:
    """t_dat partitions that the commits after ``after_version`` wrote (from the Delta log's add actions)."""
    now = table_version(spark, path)
    if now is None or (after_version is not None and now <= after_version):
        return []
    first = 0 if after_version is None else after_version + 1
    logs = [f"{path.rstrip('/')}/_delta_log/{v:020d}.json" for v in range(first, now + 1)]
    actions = spark.read.json(logs)
    if "add" not in actions.columns:
        return []
    rows = (actions.where(F.col("add").isNotNull())
            .select(F.col("add.partitionValues.t_dat").alias("t_dat")).distinct().collect())
    return sorted(dt.date.fromisoformat(r.t_dat) for r in rows if r.t_dat)


def existing_feature_dates(spark: SparkSession, lake_root: str) -> list[dt.date]:
    """Feature days present in every daily feature table (a day missing from one was never fully computed)."""
    dates: set[dt.date] | None = None
    for table in DAILY_TABLES:
        path = lake.table_path(lake_root, table)
        if not lake.table_exists(spark, path):
            return []
        days = {r.feature_date for r in lake.read_table(spark, path).select("feature_date").distinct().collect()}
        dates = days if dates is None else dates & days
    return sorted(dates or ())


def _differs(old: DataFrame, new: DataFrame) -> bool:
    return bool(old.exceptAll(new).limit(1).count() or new.exceptAll(old).limit(1).count())


def _at(spark: SparkSession, path: str, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def whole_history_changed(spark: SparkSession, path: str, before: int, dates: list[dt.date]) -> bool:
    """True when the rewrite of ``dates`` changed a per-article purchase count on them or an article's first sale."""
    old, new = _at(spark, path, before), lake.read_table(spark, path)

    def counts(df: DataFrame) -> DataFrame:
        return df.where(F.col("t_dat").isin(dates)).groupBy("article_id").agg(F.count(F.lit(1)).alias("n"))

    def first_sales(df: DataFrame) -> DataFrame:
        return df.groupBy("article_id").agg(F.min("t_dat").alias("first_sale"))

    return _differs(counts(old), counts(new)) or _differs(first_sales(old), first_sales(new))


def dimensions_changed(spark: SparkSession, lake_root: str, before: dict[str, int | None],
                       category_column: str) -> list[str]:
    """Which of articles / customers changed a column the features read (category, product code, first seen; age)."""
    changed = []
    checks = {
        C.BRONZE_ARTICLES: lambda df: article_categories(df, category_column),
        C.BRONZE_CUSTOMERS: lambda df: df.select("customer_id", "age"),
    }
    for table, columns in checks.items():
        path = lake.table_path(lake_root, table)
        version = before.get(table)
        if version is None or table_version(spark, path) == version:
            continue
        if _differs(columns(_at(spark, path, version)), columns(lake.read_table(spark, path))):
            changed.append(table.split("/")[-1])
    return changed


def consecutive_runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as (start, end) runs of consecutive days."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def affected_ranges(touched: list[dt.date], window_days: int, feature_dates: list[dt.date], *,
                    whole_history: bool = False, everything: bool = False) -> list[tuple[dt.date, dt.date]]:
    """Existing feature days to recompute, as runs: [min touched, min(max touched + W - 1, latest feature day)]
    (to the latest feature day when whole-history values changed; every day when articles/customers did)."""
    if not feature_dates or (not touched and not everything):
        return []
    if everything:
        start, end = feature_dates[0], feature_dates[-1]
    else:
        start = min(touched)
        end = feature_dates[-1] if whole_history else min(max(touched) + dt.timedelta(days=window_days - 1),
                                                          feature_dates[-1])
    return consecutive_runs([d for d in feature_dates if start <= d <= end])


def plan_recompute(spark: SparkSession, lake_root: str, before: dict[str, int | None],
                   params: FeatureParams) -> LatePlan:
    """What changed since the bronze versions ``before`` (see ``lake_versions``) and which feature days to recompute."""
    tx_path = lake.table_path(lake_root, C.BRONZE_TRANSACTIONS)
    plan = LatePlan(window_days=longest_window_days(params))
    plan.touched_dates = written_partition_dates(spark, tx_path, before.get(C.BRONZE_TRANSACTIONS))
    plan.feature_dates = existing_feature_dates(spark, lake_root)
    if not plan.feature_dates:
        return plan
    plan.dimensions_changed = dimensions_changed(spark, lake_root, before, params.category_column)
    tx_before = before.get(C.BRONZE_TRANSACTIONS)
    if plan.touched_dates and tx_before is not None and not plan.dimensions_changed:
        plan.whole_history_changed = whole_history_changed(spark, tx_path, tx_before, plan.touched_dates)
    plan.recompute = affected_ranges(plan.touched_dates, plan.window_days, plan.feature_dates,
                                     whole_history=plan.whole_history_changed,
                                     everything=bool(plan.dimensions_changed))
    return plan


def recompute_features(spark: SparkSession, lake_root: str, plan: LatePlan,
                       params: FeatureParams) -> list[FeatureSummary]:
    """Run the features stage over each range of the plan (one Spark job per range; normally one)."""
    summaries = []
    for start, end in plan.recompute:
        log.info("late data: recomputing features %s..%s", start, end)
        summaries.append(run_features(spark, lake_root, start, end, params))
    return summaries


def latest_transaction_date(spark: SparkSession, lake_root: str) -> dt.date | None:
    """The last t_dat in bronze/transactions (None without the table)."""
    path = lake.table_path(lake_root, C.BRONZE_TRANSACTIONS)
    if not lake.table_exists(spark, path):
        return None
    return lake.read_table(spark, path).agg(F.max("t_dat")).first()[0]
