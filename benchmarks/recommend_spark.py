"""Benchmark of the recommend job inside Spark (parts b and c): our scoring against Spark ML ALS, and the real run.

    nice -n 10 .venv/bin/python benchmarks/recommend_spark.py [--customers 200000] [--articles 20000] [--dim 64]
        [--n 12] [--categories 30] [--part b|c|both] [--interactions 10] [--als-iter 1] [--repeats 1] [--purchases 3]
        [--shuffle-partitions 4] [--seed 0] [--keep] [--omp-wait-policy passive|active|inherit]

One Spark session, ``get_spark(master="local[2]", shuffle_partitions=4, driver_memory="6g", ui=False)``, for
both parts; everything is written under a temporary folder, removed at the end unless ``--keep``.

**(b) ALS against our scoring, same factors.** Implicit interactions, seeded
(``numpy.random.default_rng([seed, 1])``): each customer buys 1 to ``2 * --interactions - 1`` articles
(mean ``--interactions``), drawn from a Zipf-like popularity (weight ``rank ** -0.8``, ranks shuffled over ids),
duplicates removed. ``pyspark.ml.recommendation.ALS(rank=--dim, maxIter=--als-iter, implicitPrefs=True,
seed=--seed)`` is fitted on them; **the fit is not timed** (its seconds are printed for information). Then, after an
untimed warm-up on 2,000 customers (JIT for ALS; both Python workers started with torch imported for us), ``--repeats``
times one timed run of each, alternating:

- **ALS**: ``model.recommendForAllUsers(--n).write.parquet(...)``: (user int, recommendations
  array<struct<item int, rating float>>).
- **ours**: the same ``model.userFactors`` DataFrame (every customer's vector), ``repartition(default parallelism,
  "id")`` as ``job._score_spark`` does, ``mapInArrow`` with ``fashion_meta.recommend.scoring.top_n_blocked``
  (``threads=1`` per Python worker, ``block_rows=4096``, no exclusions, no cap) against ``model.itemFactors``
  collected on the driver as one float32 matrix (every article, one category) and shipped in the function's
  closure as the job ships its plan; written as Parquet (customer_id int, items array<struct<rank int,
  article_id int, score float>>). Ids stay the ALS integers on both sides.

CPU s: user + system CPU seconds of the whole process tree (driver, JVM, Python workers, reaped children; psutil)
over the timed write; cores busy = CPU s / wall s. On a shared machine CPU s moves less than wall time with the
other jobs, but JVM background threads (GC, JIT) count too. Each output must have one row per customer.
Agreement (first repeat): for 100 random customers, the size of the intersection of the two top-n article sets
(ALS scores are the same dot products, so n/n is expected; near-ties may swap at the last place).
Ratio = ALS s / ours s, per repeat.

**(c) the real job.** A synthetic lake for run date 2020-09-22, in the layout the tasks stage writes
(``tasks.job._write_files``): ``task_files/run_date=D/manifest.json``, one task-rows Parquet file (a few train
tasks; one ``serve`` unit for a new category, so one category is meta-adapted; one new user group without a unit,
so its rows are ``fallback``), and the scoring snapshot: ``--customers`` customers (12 user groups, 6
``customer_daily__*`` numbers, a ``--dim`` history vector, 5% null), ``--articles`` articles over
``--categories`` categories (at least 2 n each, sizes uneven; product codes in runs of 1 to 9; 4
``article_daily__*`` and 2 ``category_daily__*`` numbers; a ``--dim`` text vector), one group x category row per
pair (4 ``group_category_daily__*`` numbers). Bronze transactions (Delta, partitioned by t_dat): 0 to
``2 * --purchases`` purchases per customer in the 90 days up to D, so exclusions apply. A registry with one model,
``build_model`` (``ModelConfig(hidden=(128,), dim=--dim)``, untrained: scores are arbitrary but cost the same),
``FeatureSpec.fit`` on the train-role task rows, card adaptation ``{"kind": "meta", "method": "fomaml", "steps":
1, "lr": 0.1}``, promoted. Then ``run_recommend(spark, lake, D, lake/models, RecommendParams(engine="spark"))``
is timed (wall and CPU seconds of the process tree); its ``summary.seconds`` breakdown is printed with pairs/s =
customers x articles / score seconds.

``--omp-wait-policy passive`` (default) sets ``OMP_WAIT_POLICY=PASSIVE`` before Spark starts, so the Python
workers inherit it (see benchmarks/train.py). Prints the conditions and Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

RUN_DATE = dt.date(2020, 9, 22)
GROUPS = tuple(f"{band}|{channel}" for band in ("<=24", "25-34", "35-44", "45-54", "55+", "unknown")
               for channel in ("online", "store"))
CUSTOMER_COLUMNS = ("customer_daily__purchases_7d", "customer_daily__purchases_28d", "customer_daily__purchases_90d",
                    "customer_daily__online_share_90d", "customer_daily__days_since_last_purchase",
                    "customer_daily__avg_price_90d")
GC_COLUMNS = ("group_category_daily__purchases_28d", "group_category_daily__buyers_28d",
              "group_category_daily__trend_7d_vs_28d", "group_category_daily__affinity")
ARTICLE_COLUMNS = ("article_daily__price_28d", "article_daily__price_level", "article_daily__sales_7d",
                   "article_daily__sales_28d")
CATEGORY_COLUMNS = ("category_daily__purchases_7d", "category_daily__articles_in_stock")
CUSTOMER_VECTOR = "customer_daily__history_vector"
ARTICLE_VECTOR = "article_text_embedding__embedding"
OURS_DDL = "customer_id int, items array<struct<rank:int,article_id:int,score:float>>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--part", choices=("b", "c", "both"), default="both")
    parser.add_argument("--interactions", type=int, default=10, help="(b) mean interactions per customer")
    parser.add_argument("--als-iter", type=int, default=1, help="(b) ALS maxIter (the fit is not timed)")
    parser.add_argument("--repeats", type=int, default=1, help="(b) timed ALS / ours pairs, alternating")
    parser.add_argument("--purchases", type=int, default=3, help="(c) mean bronze purchases per customer")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--omp-wait-policy", choices=("passive", "active", "inherit"), default="passive")
    args = parser.parse_args()
    if args.omp_wait_policy != "inherit":
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    run(args)


def run(args: argparse.Namespace) -> None:
    import pyspark
    import torch

    from fashion_meta.spark import get_spark

    load_start = Path("/proc/loadavg").read_text().split()[:3]
    work = Path(tempfile.mkdtemp(prefix="bench-recommend-spark-"))
    spark = get_spark("bench-recommend-spark", master="local[2]", shuffle_partitions=args.shuffle_partitions,
                      driver_memory="6g", ui=False, extra={"spark.sql.warehouse.dir": str(work / "warehouse")})
    print(f"pyspark {pyspark.__version__}, torch {torch.__version__}, {os.cpu_count()} cores, niceness "
          f"{os.nice(0)}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, default parallelism "
          f"{spark.sparkContext.defaultParallelism}, /proc/loadavg at start {' '.join(load_start)}; work dir {work}")
    print(f"{args.customers} customers x {args.articles} articles x {args.dim}-d, n={args.n}")
    ours_seconds = None
    try:
        if args.part in ("b", "both"):
            ours_seconds = part_b(spark, args, work / "b")
        if args.part in ("c", "both"):
            part_c(spark, args, work / "c", ours_seconds)
    finally:
        print(f"/proc/loadavg at end {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
        spark.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ part b
def interactions(customers: int, articles: int, mean: int, seed: int):
    """Seeded implicit interactions (user, item, rating=1) as a pandas DataFrame, duplicates removed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, 1])
    users = np.repeat(np.arange(customers, dtype=np.int64), rng.integers(1, 2 * mean, size=customers))
    weights = 1.0 / np.arange(1, articles + 1) ** 0.8
    items = rng.permutation(articles)[rng.choice(articles, size=len(users), p=weights / weights.sum())]
    keys = np.unique(users * articles + items)
    return pd.DataFrame({"user": (keys // articles).astype(np.int32), "item": (keys % articles).astype(np.int32),
                         "rating": np.ones(len(keys), dtype=np.float32)})


def our_scoring(users, item_ids, item_vecs, n: int, partitions: int, block_rows: int = 4096):
    """Top-n per ALS user against every item with ``top_n_blocked`` in ``mapInArrow``, as the job scores."""
    def score(batches):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from fashion_meta.recommend.scoring import top_n_blocked

        item_type = pa.struct([("rank", pa.int32()), ("article_id", pa.int32()), ("score", pa.float32())])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            flat = pc.list_flatten(batch.column("features")).to_numpy(zero_copy_only=False, writable=True)
            vecs = flat.reshape(batch.num_rows, -1)
            top = top_n_blocked(vecs, item_vecs, n, block_rows=block_rows, threads=1)
            offsets = np.zeros(batch.num_rows + 1, dtype=np.int32)
            np.cumsum(top.counts, out=offsets[1:])
            real = top.indices >= 0
            ranks = np.broadcast_to(np.arange(1, n + 1, dtype=np.int32), top.indices.shape)[real]
            items = pa.StructArray.from_arrays(
                [pa.array(ranks), pa.array(item_ids[top.indices[real]]), pa.array(top.scores[real])],
                fields=list(item_type))
            lists = pa.ListArray.from_arrays(pa.array(offsets), items).cast(pa.list_(pa.field("element", item_type)))
            yield pa.RecordBatch.from_arrays([batch.column("id"), lists], names=["customer_id", "items"])

    return users.repartition(partitions, "id").mapInArrow(score, OURS_DDL)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process tree: driver, JVM, Python workers, and their reaped children."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in (me, *me.children(recursive=True)):
        try:
            t = proc.cpu_times()
        except psutil.Error:  # exited meanwhile: its time went to the parent's children_* (reaped) or is lost
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _timed_write(df, path: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of writing ``df`` as Parquet."""
    start, cpu = time.perf_counter(), cpu_seconds()
    df.write.mode("errorifexists").parquet(str(path))
    return time.perf_counter() - start, cpu_seconds() - cpu


def _parquet_rows_mb(path: Path) -> tuple[int, float]:
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files), sum(f.stat().st_size for f in files) / 2**20


def part_b(spark, args: argparse.Namespace, work: Path) -> float:
    """ALS recommendForAllUsers against our mapInArrow scoring with the same factors; returns ours seconds."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    print("\n## (b) ALS recommendForAllUsers vs our scoring, same factors")
    try:
        blas = spark._jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName()
    except Exception as exc:  # informational only
        blas = f"unknown ({type(exc).__name__})"
    ratings_pd = interactions(args.customers, args.articles, args.interactions, args.seed)
    ratings = spark.createDataFrame(ratings_pd)
    start = time.perf_counter()
    model = ALS(rank=args.dim, maxIter=args.als_iter, implicitPrefs=True, seed=args.seed, userCol="user",
                itemCol="item", ratingCol="rating").fit(ratings)
    users, items_df = model.userFactors, model.itemFactors
    n_users, n_items = users.count(), items_df.count()
    fit_seconds = time.perf_counter() - start
    print(f"{len(ratings_pd):,} interactions; ALS fit (not timed in the comparison): {fit_seconds:.1f} s; "
          f"{n_users:,} user and {n_items:,} item factors of rank {model.rank}; JVM BLAS {blas}")

    items = items_df.orderBy("id").toArrow()
    item_ids = items.column("id").to_numpy()
    item_vecs = np.array(pc.list_flatten(items.column("features")).to_numpy().reshape(len(item_ids), -1),
                         dtype=np.float32)  # a writable copy: torch warns on read-only arrays
    partitions = max(1, spark.sparkContext.defaultParallelism)

    # Untimed warm-up on a few customers: JIT of ALS's recommendForAll path; Python workers with torch imported.
    few = users.orderBy("id").limit(2000)
    model.recommendForUserSubset(few.select(F.col("id").alias("user")), args.n).write.parquet(str(work / "warm-als"))
    our_scoring(few, item_ids, item_vecs, args.n, partitions).write.parquet(str(work / "warm-ours"))

    loads, runs = [os.getloadavg()], []  # runs: (repeat, engine, wall s, CPU s, folder)
    for i in range(args.repeats):
        for engine, frame in (("ALS", model.recommendForAllUsers(args.n)),
                              ("ours", our_scoring(users, item_ids, item_vecs, args.n, partitions))):
            folder = work / f"{engine.lower()}-{i}"
            runs.append((i, engine, *_timed_write(frame, folder), folder))
        loads.append(os.getloadavg())
    for _, engine, _, _, folder in runs:
        rows, _ = _parquet_rows_mb(folder)
        if rows != n_users:
            raise RuntimeError(f"{engine} wrote {rows} rows to {folder.name}, expected {n_users}")

    sample = np.random.default_rng([args.seed, 2]).choice(users.select("id").toArrow().column("id").to_numpy(),
                                                          size=min(100, n_users), replace=False).tolist()
    als = pq.read_table(work / "als-0", filters=[("user", "in", sample)]).to_pylist()
    ours = pq.read_table(work / "ours-0", filters=[("customer_id", "in", sample)]).to_pylist()
    als_top = {r["user"]: [x["item"] for x in r["recommendations"]] for r in als}
    ours_top = {r["customer_id"]: [x["article_id"] for x in r["items"]] for r in ours}
    overlaps = [len(set(als_top[u]) & set(ours_top[u])) for u in sample]
    same_order = sum(als_top[u] == ours_top[u] for u in sample)
    pairs = n_users * n_items
    print(f"load averages before / after each repeat {[tuple(round(x, 1) for x in l) for l in loads]}; agreement on "
          f"{len(sample)} customers: mean overlap {np.mean(overlaps):.2f}/{args.n} (min {min(overlaps)}), identical "
          f"ordered lists {same_order}\n")
    print("| repeat | run | seconds | CPU s | cores busy | pairs/s | Parquet MB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    label = {"ALS": f"ALS recommendForAllUsers({args.n}) + write",
             "ours": "ours: repartition + mapInArrow(top_n_blocked) + write"}
    for i, engine, wall, cpu, folder in runs:
        print(f"| {i + 1} | {label[engine]} | {wall:.1f} | {cpu:.1f} | {cpu / wall:.2f} | {pairs / wall / 1e6:,.1f}M "
              f"| {_parquet_rows_mb(folder)[1]:.1f} |")
    print()
    for i in range(args.repeats):
        (_, _, als_s, als_cpu, _), (_, _, ours_s, ours_cpu, _) = runs[2 * i:2 * i + 2]
        print(f"repeat {i + 1}: ours / ALS time = {ours_s / als_s:.3f}; ALS / ours = **{als_s / ours_s:.1f}x** wall "
              f"(aim >= 5x), {als_cpu / ours_cpu:.1f}x CPU seconds")
    return statistics.median(r[2] for r in runs if r[1] == "ours")


# ------------------------------------------------------------------------------------------------ part c
def _vectors(rng, n: int, dim: int, null_rate: float = 0.0):
    """list<float32> column of unit vectors, ``null_rate`` of them null."""
    import numpy as np
    import pyarrow as pa

    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    mask = pa.array(rng.random(n) < null_rate) if null_rate else None
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)), pa.array(v.ravel()),
                                    mask=mask)


def _nullable(rng, values, rate: float = 0.05):
    import pyarrow as pa

    return pa.array(values, mask=rng.random(len(values)) < rate)


def snapshot_tables(args: argparse.Namespace):
    """(customers, articles, group_category) pyarrow tables of the scoring snapshot, sorted as the tasks stage does."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([args.seed, 3])
    c, a, k, n = args.customers, args.articles, args.categories, args.n
    if a < 2 * n * k:
        raise SystemExit(f"--articles must be at least 2 * n * categories = {2 * n * k}")
    categories = [f"Category {i:02d}" for i in range(k)]
    weights = rng.lognormal(0.0, 0.6, size=k)
    sizes = 2 * n + rng.multinomial(a - 2 * n * k, weights / weights.sum())
    article_cat = np.repeat(np.arange(k), sizes)
    codes = np.concatenate([np.repeat(np.arange(s), rng.integers(1, 10, size=s))[:s] for s in sizes])
    product_code = (108_775 + article_cat * 10_000 + codes).astype(np.int32)
    articles = pa.table({
        "article_id": pa.array([f"{700_000_000 + i:010d}" for i in range(a)]),
        "category": pa.array([categories[j] for j in article_cat]),
        ARTICLE_COLUMNS[0]: _nullable(rng, rng.lognormal(-3.5, 0.5, size=a), 0.2),
        ARTICLE_COLUMNS[1]: _nullable(rng, rng.lognormal(0.0, 0.3, size=a), 0.2),
        ARTICLE_COLUMNS[2]: pa.array(rng.poisson(5, size=a).astype(np.int64)),
        ARTICLE_COLUMNS[3]: pa.array(rng.poisson(20, size=a).astype(np.int64)),
        CATEGORY_COLUMNS[0]: pa.array(rng.poisson(500, size=k).astype(np.int64)[article_cat]),
        CATEGORY_COLUMNS[1]: pa.array(sizes.astype(np.int64)[article_cat]),
        ARTICLE_VECTOR: _vectors(rng, a, args.dim),
        "product_code": pa.array(product_code),
        "first_seen_date": pa.array([RUN_DATE - dt.timedelta(days=int(d)) for d in rng.integers(0, 700, size=a)]),
    })
    customers = pa.table({
        "customer_id": pa.array([f"{i:064x}" for i in range(c)]),
        "user_group": pa.array([GROUPS[j] for j in rng.integers(0, len(GROUPS), size=c)]),
        CUSTOMER_COLUMNS[0]: pa.array(rng.poisson(0.5, size=c).astype(np.int64)),
        CUSTOMER_COLUMNS[1]: pa.array(rng.poisson(2, size=c).astype(np.int64)),
        CUSTOMER_COLUMNS[2]: pa.array(rng.poisson(6, size=c).astype(np.int64)),
        CUSTOMER_COLUMNS[3]: _nullable(rng, rng.random(c), 0.1),
        CUSTOMER_COLUMNS[4]: _nullable(rng, rng.integers(0, 90, size=c).astype(np.int32), 0.1),
        CUSTOMER_COLUMNS[5]: _nullable(rng, rng.lognormal(-3.5, 0.5, size=c), 0.1),
        CUSTOMER_VECTOR: _vectors(rng, c, args.dim, null_rate=0.05),
    })
    pairs = [(g, cat) for g in GROUPS for cat in categories]
    m = len(pairs)
    group_category = pa.table({
        "user_group": pa.array([p[0] for p in pairs]),
        "category": pa.array([p[1] for p in pairs]),
        GC_COLUMNS[0]: pa.array(rng.poisson(40, size=m).astype(np.int64)),
        GC_COLUMNS[1]: pa.array(rng.poisson(30, size=m).astype(np.int64)),
        GC_COLUMNS[2]: _nullable(rng, rng.lognormal(0.0, 0.3, size=m), 0.1),
        GC_COLUMNS[3]: pa.array(rng.lognormal(0.0, 0.5, size=m)),
    })
    return (customers.sort_by("customer_id"),
            articles.sort_by([("category", "ascending"), ("article_id", "ascending")]),
            group_category.sort_by([("user_group", "ascending"), ("category", "ascending")]))


def task_rows(customers, articles, group_category, new_category: str, seed: int):
    """Task rows (format fashion-meta-tasks/1) and their manifest task entries: 4 train tasks and one serve unit."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, 4])
    categories = sorted(set(articles.column("category").to_pylist()) - {new_category})
    groups = customers.column("user_group").to_numpy(zero_copy_only=False)
    article_cat = articles.column("category").to_numpy(zero_copy_only=False)
    gc_keys = zip(group_category.column("user_group").to_pylist(), group_category.column("category").to_pylist())
    gc_index = {key: i for i, key in enumerate(gc_keys)}
    specs = [(f"{cat}|{GROUPS[i]}", cat, GROUPS[i], "train") for i, cat in enumerate(categories[:4])]
    specs.append((f"{new_category}|*", new_category, None, "serve"))
    parts, tasks = [], []
    for task_id, category, group, role in specs:
        pool_c = np.flatnonzero(groups == group) if group else np.arange(len(groups))
        pool_a = np.flatnonzero(article_cat == category)
        rows = 5 * 16  # 16 purchases with 4 negatives each; the first 10 purchases are support
        cust = np.repeat(rng.choice(pool_c, size=16, replace=False), 5)
        art = rng.choice(pool_a, size=rows)
        split = np.where(np.arange(rows) < 50, "support", "query")
        days = np.where(split == "support", rng.integers(10, 20, size=rows), rng.integers(1, 5, size=rows))
        t_dat = [RUN_DATE - dt.timedelta(days=int(d)) for d in days]
        gc_rows = [gc_index[(g, category)] for g in groups[cust]]
        part = {
            "task_id": pa.array([task_id] * rows), "category": pa.array([category] * rows),
            "user_group": pa.array(groups[cust]), "role": pa.array([role] * rows), "split": pa.array(split),
            "customer_id": customers.column("customer_id").take(pa.array(cust)),
            "article_id": articles.column("article_id").take(pa.array(art)),
            "label": pa.array((np.arange(rows) % 5 == 0).astype(np.int32)),
            "t_dat": pa.array(t_dat, pa.date32()),
            "event_timestamp": pc.cast(pa.array(t_dat, pa.date32()), pa.timestamp("us", tz="UTC")),
        }
        for name in (*CUSTOMER_COLUMNS, CUSTOMER_VECTOR):
            part[name] = customers.column(name).take(pa.array(cust))
        for name in GC_COLUMNS:
            part[name] = group_category.column(name).take(pa.array(gc_rows))
        for name in (*ARTICLE_COLUMNS, *CATEGORY_COLUMNS, ARTICLE_VECTOR):
            part[name] = articles.column(name).take(pa.array(art))
        table = pa.table(part)
        parts.append(table)
        support = split == "support"
        labels = part["label"].to_numpy()
        tasks.append({"task_id": task_id, "category": category, "user_group": group or "*", "role": role,
                      "support_rows": int(support.sum()), "query_rows": int((~support).sum()),
                      "support_positives": int(labels[support].sum()), "query_positives": int(labels[~support].sum())})
    return pa.concat_tables(parts), tasks


def bronze_transactions(customers, articles, purchases: int, seed: int):
    """0 to 2 * purchases purchases per customer in the 90 days up to RUN_DATE (pandas, BRONZE_TRANSACTIONS)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([seed, 5])
    c, a = customers.num_rows, articles.num_rows
    who = np.repeat(np.arange(c), rng.integers(0, 2 * purchases + 1, size=c))
    weights = 1.0 / np.arange(1, a + 1) ** 0.8
    what = rng.permutation(a)[rng.choice(a, size=len(who), p=weights / weights.sum())]
    days = np.datetime64(RUN_DATE) - rng.integers(0, 90, size=len(who)).astype("timedelta64[D]")
    return pd.DataFrame({
        "t_dat": pd.Series(days).dt.date,
        "customer_id": customers.column("customer_id").to_numpy(zero_copy_only=False)[who],
        "article_id": articles.column("article_id").to_numpy(zero_copy_only=False)[what],
        "price": rng.lognormal(-3.5, 0.5, size=len(who)),
        "sales_channel_id": rng.integers(1, 3, size=len(who)).astype(np.int32),
    })


def build_lake(spark, args: argparse.Namespace, root: Path) -> dict:
    """Task files with a scoring snapshot, bronze transactions and a model registry for RUN_DATE; returns facts."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fashion_meta import constants as C
    from fashion_meta import lake, schemas
    from fashion_meta.model.checkpoint import promote, save_model
    from fashion_meta.model.spec import FeatureSpec
    from fashion_meta.model.towers import ModelConfig, build_model
    from fashion_meta.tasks.job import task_files_path

    customers, articles, group_category = snapshot_tables(args)
    categories = sorted(set(articles.column("category").to_pylist()))
    new_category, new_group = categories[-1], GROUPS[-1]
    rows, tasks = task_rows(customers, articles, group_category, new_category, args.seed)

    folder = Path(task_files_path(str(root), "task_files", RUN_DATE))
    scoring = {"as_of": RUN_DATE.isoformat()}
    for name, table in (("customers", customers), ("articles", articles), ("group_category", group_category)):
        (folder / "scoring" / name).mkdir(parents=True)
        pq.write_table(table, folder / "scoring" / name / "part-00000.parquet")
        scoring[name] = [f"scoring/{name}/part-00000.parquet"]
    pq.write_table(rows, folder / "part-00000.parquet")
    features = {"customer": [*CUSTOMER_COLUMNS, *GC_COLUMNS], "article": [*ARTICLE_COLUMNS, *CATEGORY_COLUMNS],
                "customer_vector": CUSTOMER_VECTOR, "article_vector": ARTICLE_VECTOR, "vector_dim": args.dim}
    manifest = {
        "format": "fashion-meta-tasks/1", "run_date": RUN_DATE.isoformat(),
        "window": {"start": (RUN_DATE - dt.timedelta(days=27)).isoformat(), "end": RUN_DATE.isoformat()},
        "seed": args.seed, "negatives_per_positive": 4, "feature_service": "meta_tasks_v1",
        "features": features, "columns": rows.column_names, "files": ["part-00000.parquet"], "tasks": tasks,
        "rows": {"support": sum(t["support_rows"] for t in tasks), "query": sum(t["query_rows"] for t in tasks),
                 "total": rows.num_rows},
        "holdout": {"categories": [], "user_groups": []},
        "serving": {"all_categories": [new_category], "all_user_groups": [new_group], "categories": [new_category],
                    "user_groups": []},
        "scoring": scoring,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")

    tx = bronze_transactions(customers, articles, args.purchases, args.seed)
    path = lake.table_path(str(root), C.BRONZE_TRANSACTIONS)
    lake.ensure_table(spark, path, schemas.BRONZE_TRANSACTIONS, partition_by=("t_dat",))
    lake.replace_partitions(spark.createDataFrame(tx, schema=schemas.BRONZE_TRANSACTIONS), path, ("t_dat",))

    train = rows.filter(rows.column("role").to_numpy(zero_copy_only=False) == "train")
    spec = FeatureSpec.fit(train, customer_columns=features["customer"], article_columns=features["article"],
                           customer_vector=CUSTOMER_VECTOR, article_vector=ARTICLE_VECTOR, vector_dim=args.dim)
    model = build_model(spec.customer_input_dim, spec.article_input_dim, ModelConfig(hidden=(128,), dim=args.dim),
                        seed=args.seed)
    registry = root / "models"
    version = save_model(registry, model, spec=spec, manifest=manifest, version="bench-recommend",
                         adaptation={"kind": "meta", "method": "fomaml", "steps": 1, "lr": 0.1},
                         git_commit="unknown")
    promote(registry, version)
    return {"registry": registry, "transactions": len(tx), "new_category": new_category, "new_group": new_group,
            "sizes": sorted(pc.value_counts(articles.column("category")).field("counts").to_pylist()),
            "parameters": sum(p.numel() for p in model.parameters())}


def part_c(spark, args: argparse.Namespace, root: Path, ours_b: float | None) -> None:
    """The real ``run_recommend`` on a synthetic lake of the same scale."""
    from fashion_meta.recommend.job import RecommendParams, run_recommend

    print("\n## (c) run_recommend, engine spark, per category")
    start = time.perf_counter()
    facts = build_lake(spark, args, root)
    print(f"lake built in {time.perf_counter() - start:.1f} s (set-up, not timed): {facts['transactions']:,} bronze "
          f"transactions, {args.categories} categories of {facts['sizes'][0]}-{facts['sizes'][-1]} articles, new "
          f"category {facts['new_category']!r} (serve unit), new group {facts['new_group']!r} (no unit), model "
          f"{facts['parameters']:,} parameters")
    load = os.getloadavg()
    start, cpu = time.perf_counter(), cpu_seconds()
    summary = run_recommend(spark, str(root), RUN_DATE, facts["registry"], RecommendParams(engine="spark"))
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    s = summary.seconds
    pairs = summary.customers * args.articles
    size_mb = sum(f.stat().st_size for f in (root / "recommendations").rglob("*.parquet")) / 2**20
    print(f"load average before the run {load}; wall {wall:.1f} s, CPU {cpu:.1f} s; rows {summary.rows:,} "
          f"({summary.customers:,} customers x {summary.categories} categories); rows by mode "
          f"{summary.rows_by_mode}; adaptation {json.dumps(summary.adaptation)}; published Parquet {size_mb:.0f} MB\n")
    print("| step | seconds |")
    print("|---|---:|")
    for step in ("adapt_and_plan", "score", "checks", "publish", "total"):
        print(f"| {step} | {s.get(step, float('nan')):.1f} |")
    print(f"\nscore: {pairs / s['score'] / 1e6:,.1f}M pairs/s ({summary.customers:,} x {args.articles:,} pairs), "
          f"{summary.rows / s['score']:,.0f} rows/s")
    if ours_b is not None:
        print(f"score ({summary.categories} categories, the job) / (b) ours (one category, same pairs) = "
              f"{s['score'] / ours_b:.2f}")


if __name__ == "__main__":
    main()
