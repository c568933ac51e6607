"""The data side of the evaluation protocol: what the system may see before the cutoff, and the truth after it.

Held-out categories play "new": before the cutoff only their first K interactions are kept (the launch support
set, pooled over user groups; order: day, then a hash of the row's keys and the seed, so every cluster keeps the
same K rows); held-out user groups likewise, pooled over categories. Everything else before the cutoff is kept,
everything after it is removed. Features, tasks and models for K are then built from this truncated data only.
The query truth is every (customer, category) purchase set in the ``query_days`` days after the cutoff.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fashion_meta.schemas import require_columns


def truncate_for_holdout(tx: DataFrame, categories: DataFrame, cutoff: dt.date, k: int, seed: int,
                         holdout_categories: list[str], holdout_customers: DataFrame | None = None) -> DataFrame:
    """Transactions up to ``cutoff`` with held-out slices cut to their first ``k`` interactions.

    ``categories``: (article_id, category). ``holdout_customers``: (customer_id, user_group) of the held-out user
    groups, or None: each group keeps its own first K interactions, pooled over categories. A duplicate row is a
    real repeat purchase and counts as one interaction of its own. Returns the columns of ``tx``.
    """
    if k < 0:
        raise ValueError(f"K must be >= 0, got {k}")
    columns = tx.columns
    rows = (
        tx.where(F.col("t_dat") <= F.lit(cutoff))
        .withColumn("_row", F.monotonically_increasing_id())  # only to tell duplicates apart; never orders
        .join(categories.select("article_id", F.col("category").alias("_category")), on="article_id", how="left")
        .withColumn("_held_category", F.coalesce(F.col("_category").isin(holdout_categories), F.lit(False)))
    )
    if holdout_customers is not None:
        require_columns(holdout_customers, ("customer_id", "user_group"), "holdout_customers")
        held = (holdout_customers.select("customer_id", F.col("user_group").alias("_group"))
                .dropDuplicates(["customer_id"]).withColumn("_held_group", F.lit(True)))
        rows = rows.join(F.broadcast(held), on="customer_id", how="left")
    else:
        rows = rows.withColumn("_held_group", F.lit(None).cast("boolean")).withColumn("_group", F.lit(None).cast("string"))
    rows = rows.withColumn("_held_group", F.coalesce("_held_group", F.lit(False)))
    tie = F.xxhash64("customer_id", "article_id", "t_dat", F.lit(seed))
    # a duplicate row gets the same tie hash: number them so each repeat is one interaction, deterministically
    dup = Window.partitionBy("customer_id", "article_id", "t_dat").orderBy("_row")
    rows = rows.withColumn("_tie", tie).withColumn("_dup", F.row_number().over(dup))
    # ranks count within each held-out slice only: a window spans every row of its partition whatever F.when picks
    # afterwards, so each held-out group gets a partition of its own (ranking all rows let other customers' earlier
    # purchases use up the K, and the held-out groups kept nothing; one pool for all groups split K between them)
    by_category = Window.partitionBy("_category").orderBy("t_dat", "_tie", "_dup")
    rows = rows.withColumn("_group_slice", F.col("_held_group") & ~F.col("_held_category"))
    by_group = Window.partitionBy("_group_slice", "_group").orderBy("t_dat", "_tie", "_dup", "customer_id", "article_id")
    rows = (
        rows.withColumn("_rank_category", F.when(F.col("_held_category"), F.row_number().over(by_category)))
        .withColumn("_rank_group", F.when(F.col("_group_slice"), F.row_number().over(by_group)))
    )
    keep = (
        (F.col("_held_category") & (F.col("_rank_category") <= k))
        | (F.col("_held_group") & ~F.col("_held_category") & (F.col("_rank_group") <= k))
        | (~F.col("_held_category") & ~F.col("_held_group"))
    )
    return rows.where(keep).select(*columns)


def query_truth(tx: DataFrame, categories: DataFrame, cutoff: dt.date, query_days: int = 7) -> DataFrame:
    """(customer_id, category, truth: sorted distinct article ids bought in (cutoff, cutoff + query_days])."""
    end = cutoff + dt.timedelta(days=query_days)
    return (
        tx.where((F.col("t_dat") > F.lit(cutoff)) & (F.col("t_dat") <= F.lit(end)))
        .join(categories.select("article_id", "category"), on="article_id", how="inner")
        .groupBy("customer_id", "category")
        .agg(F.array_sort(F.collect_set("article_id")).alias("truth"))
        .select("customer_id", "category", "truth")
    )
