"""Benchmark of the tasks stage (entity rows + Feast point-in-time join + Delta/Parquet writes) on a large shop.

    .venv/bin/python benchmarks/tasks.py [--workdir DIR] [--transactions 5000000] [--window-days 14]

Reuses a shop/lake left in --workdir by benchmarks/features.py (same generator settings), else generates and
ingests one. Feature days missing in the task window are computed first (timed, not the subject). Then the tasks
stage runs as `fashion-meta tasks` would: rows/s = task rows written / stage seconds.

Reference in the same run: the same entity rows joined to the same daily feature tables with plain Spark equi-joins
on (key, feature_date = t_dat - 1), which is what the point-in-time join amounts to when every day has a row.
The ratio Feast join / direct join is Feast's overhead for correctness (TTL, created_timestamp tie-breaks,
no assumption about daily rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import lake
from fashion_meta.features.job import FeatureParams, run_features
from fashion_meta.ingest.job import run_ingest
from fashion_meta.spark import get_spark
from fashion_meta.synth import ShopSpec, generate_shop
from fashion_meta.tasks import job as tasks_job
from fashion_meta.tasks.job import TaskParams, run_tasks


def direct_join_seconds(spark, lake_root: str, run_date: dt.date) -> tuple[float, int]:
    """Seconds to join the stored entity rows of run_date to the daily tables by equi-joins (the reference)."""
    read = lambda t: lake.read_table(spark, lake.table_path(lake_root, t))  # noqa: E731
    entities = (
        read(C.TASKS).where(F.col("run_date") == F.lit(run_date))
        .select("task_id", "split", "customer_id", "article_id", "category", "user_group", "t_dat", "label")
        .withColumn("feature_date", F.date_sub("t_dat", 1))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    n = entities.count()
    t0 = time.monotonic()
    drop = ("event_timestamp", "created_timestamp")
    joined = (
        entities.join(read(C.FEATURES_CUSTOMER_DAILY).drop("user_group", *drop), ["customer_id", "feature_date"], "left")
        .join(read(C.FEATURES_ARTICLE_DAILY).drop("category", "product_code", *drop), ["article_id", "feature_date"], "left")
        .join(read(C.FEATURES_CATEGORY_DAILY).drop(*drop).withColumnRenamed("purchases_7d", "c7"), ["category", "feature_date"], "left")
        .join(read(C.FEATURES_GROUP_CATEGORY_DAILY).drop(*drop).withColumnRenamed("purchases_7d", "g7")
              .withColumnRenamed("purchases_28d", "g28"), ["user_group", "category", "feature_date"], "left")
    )
    joined.write.format("noop").mode("overwrite").save()
    seconds = time.monotonic() - t0
    entities.unpersist()
    return seconds, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="folder with shop/ and lake/ (reused when present)")
    parser.add_argument("--transactions", type=int, default=5_000_000)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--window-days", type=int, default=14)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-tasks-"))
    shop, lake_root = work / "shop", str(work / "lake")
    spec = ShopSpec(customers=args.customers, articles=args.articles, categories=60, days=args.days,
                    transactions=args.transactions, seed=1)
    run_date = spec.start_date + dt.timedelta(days=args.days - 1)
    figures: dict[str, float] = {}
    if not (shop / "transactions_train.csv").exists():
        generate_shop(spec, shop)
    spark = get_spark("bench-tasks", master="local[2]", shuffle_partitions=4, driver_memory="8g", ui=False)
    if not Path(lake_root, "bronze", "transactions").exists():
        t0 = time.monotonic()
        run_ingest(spark, str(shop), lake_root)
        figures["ingest_s (setup)"] = time.monotonic() - t0
    tx = lake.read_table(spark, lake.table_path(lake_root, C.BRONZE_TRANSACTIONS)).count()

    params = TaskParams(window_days=args.window_days)
    needed = tasks_job.required_feature_dates(spark, lake_root, run_date, params.window_days)
    if needed is None:
        sys.exit(f"no transactions under {lake_root}: nothing to build tasks from")
    missing = tasks_job.missing_feature_dates(spark, lake_root, *needed)
    if missing:
        t0 = time.monotonic()
        run_features(spark, lake_root, missing[0], run_date, FeatureParams())
        figures[f"features {missing[0]}..{run_date} (setup)"] = time.monotonic() - t0

    summary = run_tasks(spark, lake_root, run_date, params)
    for key, value in summary.seconds.items():
        figures[f"tasks.{key}_s"] = value
    rows = summary.rows["total"]
    direct_s, n = direct_join_seconds(spark, lake_root, run_date)
    figures["reference: direct equi-join_s"] = direct_s

    print(f"\nshop: {tx:,} transactions, {args.articles:,} articles, {args.customers:,} customers; run date {run_date}; "
          f"window {summary.window['start']}..{summary.window['end']}")
    print(f"tasks: {summary.tasks}; rows {summary.rows}")
    print("| step | seconds |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value:,.1f} |")
    print(f"\ntask rows/s (whole stage): {rows / summary.seconds['total']:,.0f}")
    print(f"entity rows/s (Spark sampling only): {rows / summary.seconds['entity_rows']:,.0f}")
    print(f"ratio Feast point-in-time join / direct equi-join on the same {n:,} rows: "
          f"{summary.seconds['feast_join'] / direct_s:.1f}x")
    print(f"peak RSS of this Python process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    spark.stop()


if __name__ == "__main__":
    main()
