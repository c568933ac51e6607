"""Spark transforms that turn bronze transactions into the entity rows of meta-learning tasks.

A task is one (category, user group) slice of the purchases in the window up to the run date. Its positives are
purchases (one row per customer, article and day: a repeat on the same day is one interaction); its support set
is its earliest ``support_size`` positives (at most half of them, so a small task keeps a query set), its query set the next ``query_size`` positives strictly after the last
support day. Negatives are in-stock articles of the same category that the customer did not buy that day, drawn
by a hash of (customer, day, positive article, draw number, seed): the same rows on any cluster and any
partitioning. Every row is stamped t_dat 00:00 UTC (DESIGN.md Conventions), so the point-in-time join gives it
the features of the day before and never its own purchase.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fashion_meta.schemas import require_columns

ENTITY_COLUMNS = (
    "task_id", "category", "user_group", "role", "split", "customer_id", "article_id", "label", "t_dat",
    "event_timestamp",
)
ROLES = ("train", "validation", "holdout", "serve")
UNKNOWN_CHANNEL_SUFFIX = "|unknown"


def _hash(*cols, seed: int):
    return F.xxhash64(*cols, F.lit(seed))


def purchases_with_group(tx: DataFrame, categories: DataFrame, day_groups: DataFrame, age_groups: DataFrame,
                         start: dt.date, end: dt.date) -> DataFrame:
    """(customer_id, article_id, t_dat, category, user_group): one row per purchase day in [start, end].

    The user group is the customer's as of the day before the purchase (``day_groups``: customer_id, feature_date,
    user_group from customer_daily); a customer without such a row had no purchase in the channel window, so the
    group is "<age band>|unknown" (``age_groups``: customer_id, age_band).
    """
    require_columns(tx, ("customer_id", "article_id", "t_dat"), "transactions")
    require_columns(day_groups, ("customer_id", "feature_date", "user_group"), "customer groups")
    bought = (
        tx.where(F.col("t_dat").between(F.lit(start), F.lit(end)))
        .select("customer_id", "article_id", "t_dat")
        .dropDuplicates()
        .join(categories.select("article_id", "category"), on="article_id", how="inner")
    )
    prior = day_groups.select(
        "customer_id", F.date_add("feature_date", 1).alias("t_dat"), F.col("user_group").alias("day_group")
    )
    return (
        bought.join(prior, on=["customer_id", "t_dat"], how="left")
        .join(age_groups.select("customer_id", "age_band"), on="customer_id", how="left")
        .select(
            "customer_id", "article_id", "t_dat", "category",
            F.coalesce(
                "day_group", F.concat(F.coalesce("age_band", F.lit("unknown")), F.lit(UNKNOWN_CHANNEL_SUFFIX))
            ).alias("user_group"),
        )
    )


def split_positives(positives: DataFrame, support_size: int, query_size: int, min_support: int, min_query: int,
                    seed: int) -> DataFrame:
    """Positives of tasks with enough data, each with split 'support' (earliest) or 'query' (strictly later)."""
    task = Window.partitionBy("category", "user_group")
    order = Window.partitionBy("category", "user_group").orderBy("t_dat", "tie")
    ranked = (
        positives.withColumn("tie", _hash("customer_id", "article_id", "t_dat", seed=seed))
        .withColumn("rn", F.row_number().over(order))
    )
    # support: the earliest support_size purchases, but never more than half of the task's, so small tasks keep a query
    support_n = F.least(F.lit(support_size), F.greatest(F.lit(1), F.floor(F.count(F.lit(1)).over(task) / 2)))
    ranked = ranked.withColumn("support_n", support_n)
    last_support = F.max(F.when(F.col("rn") <= F.col("support_n"), F.col("t_dat"))).over(task)
    query_order = Window.partitionBy("category", "user_group", "is_query").orderBy("t_dat", "tie")
    split = (
        ranked.withColumn("last_support_day", last_support)
        .withColumn("is_query", F.col("t_dat") > F.col("last_support_day"))
        .withColumn("qrn", F.row_number().over(query_order))
        .where((F.col("rn") <= F.col("support_n")) | (F.col("is_query") & (F.col("qrn") <= query_size)))
        .withColumn("split", F.when(F.col("is_query"), F.lit("query")).otherwise(F.lit("support")))
    )
    counts = split.groupBy("category", "user_group").agg(
        F.sum(F.when(F.col("split") == "support", 1).otherwise(0)).alias("n_support"),
        F.sum(F.when(F.col("split") == "query", 1).otherwise(0)).alias("n_query"),
    )
    enough = counts.where((F.col("n_support") >= min_support) & (F.col("n_query") >= min_query))
    return (
        split.join(enough.select("category", "user_group"), on=["category", "user_group"], how="left_semi")
        .withColumn("task_id", F.concat_ws("|", "category", "user_group"))
        .select("task_id", "category", "user_group", "split", "customer_id", "article_id", "t_dat")
    )


def is_held(holdout_categories: list[str], holdout_groups: list[str]):
    """True for rows of a held-out category or user group."""
    return F.col("category").isin(holdout_categories) | F.col("user_group").isin(holdout_groups)


def relabel_members(positives: DataFrame, members: DataFrame,
                    holdout_categories: list[str] = ()) -> tuple[DataFrame, int, list[str]]:
    """Positives with user groups held out as member lists (the offline evaluation), how many were set aside, and
    the held-out groups (sorted).

    ``members``: (customer_id, user_group), the held-out groups as the evaluation defines them (each member's group
    at the cutoff, from the full history). A purchase's own group is the customer's of the day before, computed from
    the *truncated* history the system sees, so a held-out member's few kept purchases would carry another group
    (often "<age band>|unknown") and the held-out unit would be empty. Here every purchase of a member carries the
    member's held-out group, and a non-member's purchase that its day-before group puts in a held-out group is set
    aside (returned count): it belongs to no held-out unit (whose members are fixed) and, labelled with a held-out
    group, must not train a warm task either. Purchases of held-out categories are kept in any case (their units
    pool every group).
    """
    require_columns(members, ("customer_id", "user_group"), "held-out group members")
    groups = sorted(r[0] for r in members.select("user_group").distinct().collect())
    keyed = members.select("customer_id", F.col("user_group").alias("_member_group")).dropDuplicates(["customer_id"])
    joined = positives.join(F.broadcast(keyed), on="customer_id", how="left")
    stray = F.coalesce(F.col("_member_group").isNull() & F.col("user_group").isin(groups)
                       & ~F.col("category").isin(list(holdout_categories)), F.lit(False))  # a null group is no stray
    excluded = joined.where(stray).count()
    relabelled = (
        joined.where(~stray)
        .withColumn("user_group", F.coalesce(F.col("_member_group"), F.col("user_group")))
        .select(*positives.columns)
    )
    return relabelled, excluded, groups


def holdout_units(positives: DataFrame, holdout_categories: list[str], holdout_groups: list[str]) -> DataFrame:
    """Positives of held-out slices as adaptation units (DESIGN.md), role 'holdout', every row 'support'.

    A held-out category is one unit pooled over user groups (task_id "<category>|*"); a held-out group one unit
    pooled over the other categories ("*|<group>"). No minimum size: a new category with 3 purchases is exactly what
    adaptation must serve. Their query is the future (evaluation truth, or the next nights' purchases). Rows keep
    their own category and user_group, the keys of their features.
    """
    held_category = F.col("category").isin(holdout_categories)
    return (
        positives.where(is_held(holdout_categories, holdout_groups))
        .withColumn("task_id", F.when(held_category, F.concat(F.col("category"), F.lit("|*")))
                    .otherwise(F.concat(F.lit("*|"), F.col("user_group"))))
        .withColumn("split", F.lit("support"))
        .withColumn("role", F.lit("holdout"))
        .select("task_id", "category", "user_group", "split", "customer_id", "article_id", "t_dat", "role")
    )


def new_groups(positives: DataFrame, run_date: dt.date, window_start: dt.date, new_days: int,
               min_history: int) -> DataFrame:
    """(user_group, purchases, first_day) of user groups that are new as of ``run_date`` by the DESIGN.md rule.

    Groups are derived per customer and day, so their history is measured over the task window: a group is new
    when it has fewer than ``min_history`` purchase days in the window, or its first one is within ``new_days`` of
    the run date (while the window reaches further back).
    """
    stats = positives.groupBy("user_group").agg(
        F.count(F.lit(1)).alias("purchases"), F.min("t_dat").alias("first_day")
    )
    recent = (F.datediff(F.lit(run_date), F.col("first_day")) < new_days) & (
        F.datediff(F.lit(run_date), F.lit(window_start)) >= new_days
    )
    return stats.where((F.col("purchases") < min_history) | recent)


def serving_units(positives: DataFrame, categories: list[str], groups: list[str], max_support: int,
                  seed: int) -> DataFrame:
    """Adaptation units of new categories ("<category>|*") and new user groups ("*|<group>"), role 'serve'.

    Each unit's support is its most recent ``max_support`` purchases (ties by a hash of the row keys): what the
    recommend stage adapts on before scoring. A purchase of a new category by a new group is in both units.
    """
    def unit(rows: DataFrame, task_id) -> DataFrame:
        latest = Window.partitionBy("task_id").orderBy(F.col("t_dat").desc(), "tie")
        return (
            rows.withColumn("task_id", task_id)
            .withColumn("tie", _hash("customer_id", "article_id", "t_dat", seed=seed))
            .withColumn("rn", F.row_number().over(latest))
            .where(F.col("rn") <= max_support)
        )

    by_category = unit(positives.where(F.col("category").isin(categories)), F.concat(F.col("category"), F.lit("|*")))
    by_group = unit(positives.where(F.col("user_group").isin(groups)), F.concat(F.lit("*|"), F.col("user_group")))
    return (
        by_category.unionByName(by_group)
        .withColumn("split", F.lit("support"))
        .withColumn("role", F.lit("serve"))
        .select("task_id", "category", "user_group", "split", "customer_id", "article_id", "t_dat", "role")
    )


def with_roles(tasks: DataFrame, holdout_categories: list[str], holdout_groups: list[str],
               validation_fraction: float, seed: int) -> DataFrame:
    """Adds role: holdout (held-out category or group), validation (hash share), else train."""
    held = is_held(holdout_categories, holdout_groups)
    bucket = F.pmod(_hash("task_id", seed=seed), F.lit(10_000))
    return tasks.withColumn(
        "role",
        F.when(held, F.lit("holdout"))
        .when(bucket < F.lit(int(round(validation_fraction * 10_000))), F.lit("validation"))
        .otherwise(F.lit("train")),
    )


def in_stock_by_day(article_daily: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """(category, t_dat, candidates: sorted array of article ids in stock at the start of t_dat, n)."""
    require_columns(article_daily, ("article_id", "category", "feature_date"), "article_daily")
    return (
        article_daily.where(F.col("feature_date").between(F.lit(start - dt.timedelta(days=1)), F.lit(end - dt.timedelta(days=1))))
        .select("category", F.date_add("feature_date", 1).alias("t_dat"), "article_id")
        .groupBy("category", "t_dat")
        .agg(F.array_sort(F.collect_set("article_id")).alias("candidates"))
        .select("category", "t_dat", "candidates", F.size("candidates").alias("n"))
    )


def sample_negatives(positives: DataFrame, candidates: DataFrame, all_purchases: DataFrame, ratio: int,
                     seed: int, draws_factor: int = 3) -> DataFrame:
    """Up to ``ratio`` negatives per positive: hash-drawn in-stock articles of its category not bought that day.

    ``all_purchases`` (customer_id, article_id, t_dat) are every purchase, so an article the customer bought that day
    under another task is never a negative. Draws are made ``draws_factor * ratio`` times so collisions with
    purchases or repeats rarely leave a positive short; a tiny category can still yield fewer.
    """
    if ratio <= 0:
        return positives.limit(0).select(*positives.columns)
    draws = ratio * draws_factor
    drawn = (
        positives.join(candidates, on=["category", "t_dat"], how="inner")
        .where(F.col("n") > 0)
        .select(
            *[c for c in positives.columns if c != "article_id"],
            F.col("article_id").alias("positive_article"),
            F.explode(F.sequence(F.lit(0), F.lit(draws - 1))).alias("draw"),
            "candidates", "n",
        )
        .withColumn(
            "article_id",
            F.element_at(
                "candidates",
                (F.pmod(_hash("customer_id", "t_dat", "positive_article", "draw", seed=seed), F.col("n")) + 1).cast("int"),
            ),
        )
        .drop("candidates", "n")
    )
    bought = all_purchases.select("customer_id", "article_id", "t_dat").dropDuplicates()
    fresh = drawn.join(bought, on=["customer_id", "article_id", "t_dat"], how="left_anti")
    # One negative row per (task, split, customer, day, article): the first positive/draw that reached it wins.
    first = Window.partitionBy("task_id", "split", "customer_id", "t_dat", "article_id").orderBy("positive_article", "draw")
    per_positive = Window.partitionBy("task_id", "split", "customer_id", "t_dat", "positive_article").orderBy("draw")
    return (
        fresh.withColumn("first", F.row_number().over(first))
        .where(F.col("first") == 1)
        .withColumn("k", F.row_number().over(per_positive))
        .where(F.col("k") <= ratio)
        .select(*positives.columns)
    )


def entity_rows(positives: DataFrame, negatives: DataFrame) -> DataFrame:
    """Positives (label 1) and negatives (label 0), stamped t_dat 00:00 UTC, in ENTITY_COLUMNS order."""
    both = positives.withColumn("label", F.lit(1).cast("byte")).unionByName(
        negatives.withColumn("label", F.lit(0).cast("byte"))
    )
    return both.withColumn("event_timestamp", F.col("t_dat").cast("timestamp")).select(*ENTITY_COLUMNS)


def pick_holdout(values: list[str], spec: str, seed: int, what: str) -> list[str]:
    """Names from ``spec``: '' -> none, an integer N -> N values drawn by hash of name and seed, else a list of names."""
    import hashlib

    spec = (spec or "").strip()
    if not spec:
        return []
    if spec.isdigit():
        n = int(spec)
        if n > len(values):
            raise ValueError(f"cannot hold out {n} {what}: only {len(values)} have purchases in the window")
        return sorted(sorted(values, key=lambda v: hashlib.sha256(f"{seed}:{v}".encode()).hexdigest())[:n])
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in values]
    if unknown:
        known = ", ".join(sorted(values)[:20])
        raise ValueError(f"unknown {what} to hold out: {', '.join(unknown)} (known: {known}{', ...' if len(values) > 20 else ''})")
    return sorted(names)
