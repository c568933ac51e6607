"""features/category_daily and features/group_category_daily: category size, age, newness; group affinities."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fashion_meta.features.common import AS_OF, in_window


def daily_category_purchases(tx: DataFrame, article_categories: DataFrame) -> DataFrame:
    """Purchases per (category, day): the small table every category window is summed from."""
    return (
        tx.join(article_categories, on="article_id", how="inner")
        .groupBy("category", "t_dat")
        .agg(F.count(F.lit(1)).cast("long").alias("n"))
    )


def category_daily(
    daily: DataFrame,
    known: DataFrame,
    in_stock: DataFrame,
    as_of: DataFrame,
    *,
    new_category_days: int = 14,
    min_category_history: int = 200,
) -> DataFrame:
    """Per known category and as-of date: size, purchases, first sale, age, ``is_new`` (stamps added by the job).

    ``known``: (article_id, as_of_date, category) for articles first seen by that date; ``in_stock``: the
    article_daily rows. New (DESIGN.md): first sale within ``new_category_days`` of D, none yet, or fewer than
    ``min_category_history`` purchases up to D.
    """
    sizes = known.groupBy("category", AS_OF).agg(F.count(F.lit(1)).cast("long").alias("articles_known"))
    stock = in_stock.groupBy("category", AS_OF).agg(F.count(F.lit(1)).cast("long").alias("articles_in_stock"))
    history = (
        daily.join(F.broadcast(as_of), on=F.col("t_dat") <= F.col(AS_OF), how="inner")
        .groupBy("category", AS_OF)
        .agg(
            F.sum(F.when(in_window("t_dat", 7), F.col("n")).otherwise(0)).cast("long").alias("purchases_7d"),
            F.sum(F.when(in_window("t_dat", 28), F.col("n")).otherwise(0)).cast("long").alias("purchases_28d"),
            F.sum("n").cast("long").alias("purchases_total"),
            F.min("t_dat").alias("first_sale_date"),
        )
    )
    rows = (
        sizes.join(stock, on=["category", AS_OF], how="left")
        .join(history, on=["category", AS_OF], how="left")
        .fillna(0, subset=["articles_in_stock", "purchases_7d", "purchases_28d", "purchases_total"])
    )
    age = F.datediff(F.col(AS_OF), F.col("first_sale_date"))
    return rows.select(
        "category",
        AS_OF,
        "articles_known",
        F.col("articles_in_stock").cast("long"),
        F.col("purchases_7d").cast("long"),
        F.col("purchases_28d").cast("long"),
        F.col("purchases_total").cast("long"),
        "first_sale_date",
        age.cast("int").alias("age_days"),
        (
            F.col("first_sale_date").isNull()
            | (age < new_category_days)
            | (F.col("purchases_total") < min_category_history)
        ).alias("is_new"),
    )


def group_category_daily(
    tx: DataFrame,
    article_categories: DataFrame,
    groups: DataFrame,
    categories: DataFrame,
    as_of: DataFrame,
    *,
    prior_strength: float = 50.0,
) -> DataFrame:
    """Per (user group, category, as-of date): purchases/buyers over 7/28 days, shares, trend, smoothed affinity.

    Every group seen that day is crossed with every known category, so a pair without purchases gets zeros.
    ``affinity`` is the group's smoothed lift for the category over 28 days:
    ((n_gc + a * s_c) / (n_g + a)) / s_c with s_c the category's share of all purchases and a = ``prior_strength``;
    1.0 means "as the average shopper", and it shrinks to 1.0 for groups with few purchases.
    """
    purchases = (
        tx.join(F.broadcast(as_of), on=in_window("t_dat", 28), how="inner")
        .join(article_categories, on="article_id", how="inner")
        .join(groups.select("customer_id", AS_OF, "user_group"), on=["customer_id", AS_OF], how="inner")
        .groupBy("user_group", "category", AS_OF)
        .agg(
            F.sum(F.when(in_window("t_dat", 7), 1).otherwise(0)).cast("long").alias("purchases_7d"),
            F.count(F.lit(1)).cast("long").alias("purchases_28d"),
            F.countDistinct(F.when(in_window("t_dat", 7), F.col("customer_id"))).cast("long").alias("buyers_7d"),
            F.countDistinct("customer_id").cast("long").alias("buyers_28d"),
        )
    )
    pairs = (
        groups.select("user_group", AS_OF).distinct()
        .join(categories.select("category", AS_OF).distinct(), on=AS_OF, how="inner")
        .join(purchases, on=["user_group", "category", AS_OF], how="left")
        .fillna(0, subset=["purchases_7d", "purchases_28d", "buyers_7d", "buyers_28d"])
    )
    n_c = F.sum("purchases_28d").over(_window("category"))
    n_g = F.sum("purchases_28d").over(_window("user_group"))
    n_all = F.sum("purchases_28d").over(_window())
    with_totals = pairs.withColumn("_n_c", n_c).withColumn("_n_g", n_g).withColumn("_n_all", n_all)
    share_c = F.try_divide(F.col("_n_c"), F.col("_n_all"))
    smoothed = F.try_divide(F.col("purchases_28d") + F.lit(prior_strength) * share_c, F.col("_n_g") + F.lit(prior_strength))
    return with_totals.select(
        "user_group",
        "category",
        AS_OF,
        "purchases_7d",
        "purchases_28d",
        "buyers_7d",
        "buyers_28d",
        F.try_divide(F.col("purchases_28d"), F.col("_n_c")).cast("double").alias("group_share_of_category_28d"),
        F.try_divide(F.col("purchases_28d"), F.col("_n_g")).cast("double").alias("category_share_of_group_28d"),
        F.try_divide(F.col("purchases_7d") / F.lit(7.0), F.col("purchases_28d") / F.lit(28.0)).cast("double").alias("trend_7d_vs_28d"),
        F.coalesce(F.try_divide(smoothed, share_c), F.lit(1.0)).cast("double").alias("affinity"),
    )


def _window(*keys: str):
    from pyspark.sql import Window

    return Window.partitionBy(*keys, AS_OF)
