"""Benchmark of the features stage on a generated shop, against DuckDB computing the same group x category aggregates.

    .venv/bin/python benchmarks/features.py [--transactions 5000000] [--articles 20000] [--customers 100000] [--workdir DIR]

Steps (each timed): generate the shop, ingest it (not the subject, but needed), encode the article texts
(texts/s), compute the four feature tables for the last day. Reference, in the same run: DuckDB with 2 threads
(like Spark's local[2]) computes, from the same CSV files, the user group of every active customer (age band x
dominant channel over 90 days) and the group x category purchases and buyers over 7 and 28 days, i.e. what
customer_daily + group_category_daily need. The ratio Spark / DuckDB is the figure to watch: absolute times on a
shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

from fashion_meta.features.embeddings import compute_article_embeddings
from fashion_meta.features.job import FeatureParams, run_features
from fashion_meta.ingest.job import run_ingest
from fashion_meta.spark import get_spark
from fashion_meta.synth import ShopSpec, generate_shop

DUCKDB_GROUP_CATEGORY = """
WITH tx AS (SELECT * FROM read_csv('{tx}', header=true, columns={{'t_dat':'DATE','customer_id':'VARCHAR',
              'article_id':'VARCHAR','price':'DOUBLE','sales_channel_id':'INTEGER'}})
            WHERE t_dat <= DATE '{d}' AND t_dat > DATE '{d}' - INTERVAL 90 DAY),
art AS (SELECT article_id, product_type_name AS category FROM read_csv('{art}', header=true, all_varchar=true)),
cust AS (SELECT customer_id, TRY_CAST(age AS INTEGER) AS age FROM read_csv('{cust}', header=true, all_varchar=true)),
act AS (SELECT customer_id, sum(CASE WHEN sales_channel_id = 2 THEN 1 ELSE 0 END) AS online, count(*) AS n
        FROM tx GROUP BY customer_id),
grp AS (SELECT a.customer_id,
          CASE WHEN c.age IS NULL OR c.age < 14 OR c.age > 100 THEN 'unknown' WHEN c.age <= 24 THEN '<=24'
               WHEN c.age <= 34 THEN '25-34' WHEN c.age <= 44 THEN '35-44' WHEN c.age <= 54 THEN '45-54' ELSE '55+' END
          || '|' || CASE WHEN a.online * 2 >= a.n THEN 'online' ELSE 'store' END AS user_group
        FROM act a LEFT JOIN cust c USING (customer_id))
SELECT g.user_group, ar.category,
       sum(CASE WHEN t.t_dat > DATE '{d}' - INTERVAL 7 DAY THEN 1 ELSE 0 END) AS purchases_7d,
       count(*) AS purchases_28d,
       count(DISTINCT CASE WHEN t.t_dat > DATE '{d}' - INTERVAL 7 DAY THEN t.customer_id END) AS buyers_7d,
       count(DISTINCT t.customer_id) AS buyers_28d
FROM tx t JOIN art ar USING (article_id) JOIN grp g USING (customer_id)
WHERE t.t_dat > DATE '{d}' - INTERVAL 28 DAY
GROUP BY 1, 2
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5_000_000)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-features-"))
    shop, lake_root = work / "shop", str(work / "lake")
    figures: dict[str, float] = {}

    spec = ShopSpec(customers=args.customers, articles=args.articles, categories=60, days=args.days,
                    transactions=args.transactions, seed=1)
    if not (shop / "transactions_train.csv").exists():
        t0 = time.monotonic()
        summary = generate_shop(spec, shop)
        figures["generate_s"] = time.monotonic() - t0
        rows = summary.transactions_rows
    else:
        rows = sum(1 for _ in open(shop / "transactions_train.csv")) - 1
    run_date = spec.start_date + dt.timedelta(days=args.days - 1)

    spark = get_spark("bench-features", master="local[2]", shuffle_partitions=4, driver_memory="8g", ui=False)
    if not Path(lake_root, "bronze", "transactions").exists():
        t0 = time.monotonic()
        run_ingest(spark, str(shop), lake_root)
        figures["ingest_s"] = time.monotonic() - t0

    t0 = time.monotonic()
    emb = compute_article_embeddings(spark, lake_root, run_date, threads=1)
    figures["embedding_s"] = time.monotonic() - t0
    figures["texts_per_s"] = emb.encoded / figures["embedding_s"] if emb.encoded else 0.0

    t0 = time.monotonic()
    feats = run_features(spark, lake_root, run_date, run_date, FeatureParams())
    figures["features_s"] = time.monotonic() - t0
    for table, seconds in feats.seconds.items():
        figures[f"{table}_s"] = seconds

    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    query = DUCKDB_GROUP_CATEGORY.format(tx=shop / "transactions_train.csv", art=shop / "articles.csv",
                                         cust=shop / "customers.csv", d=run_date.isoformat())
    t0 = time.monotonic()
    duck_rows = con.execute(query).fetchall()
    figures["duckdb_group_category_s"] = time.monotonic() - t0
    spark_group_path = figures["customer_daily_s"] + figures["group_category_daily_s"]

    print(f"\nshop: {rows:,} transactions, {args.articles:,} articles, {args.customers:,} customers; run date {run_date}")
    print(f"| step | seconds | note |\n|---|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value:,.1f} | |")
    print(f"| feature rows | | {feats.rows} |")
    print(f"| duckdb group x category rows | | {len(duck_rows)} (spark: {feats.rows['group_category_daily']}, incl. zero pairs) |")
    print(f"\nratio spark (customer_daily + group_category_daily) / duckdb (same aggregates from CSV): "
          f"{spark_group_path / figures['duckdb_group_category_s']:.1f}x")
    print(f"peak RSS of this Python process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    spark.stop()
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
