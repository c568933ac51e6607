"""features/article_daily: in-stock articles with category, price level, recent sales and buyers by group."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta.features.common import AS_OF, band_column_suffix, in_window

BANDS = [label for _, _, label in C.AGE_BANDS] + [C.AGE_UNKNOWN]


def known_articles(articles: DataFrame, as_of: DataFrame) -> DataFrame:
    """Articles first seen on or before each as-of date (article_id, category, product_code, first_seen_date)."""
    return articles.join(F.broadcast(as_of), on=F.col("first_seen_date") <= F.col(AS_OF), how="inner").select(
        "article_id", AS_OF, "category", "product_code", "first_seen_date"
    )


def article_sales(tx: DataFrame, as_of: DataFrame, window_days: int) -> DataFrame:
    """Per (article, as-of date) with a sale in the window: sales over 7 and ``window_days`` days, mean price."""
    return (
        tx.join(F.broadcast(as_of), on=in_window("t_dat", window_days), how="inner")
        .groupBy("article_id", AS_OF)
        .agg(
            F.sum(F.when(in_window("t_dat", 7), 1).otherwise(0)).cast("long").alias("sales_7d"),
            F.count(F.lit(1)).cast("long").alias("sales_28d"),
            F.avg("price").alias("price_28d"),
        )
    )


def article_buyers_by_group(tx: DataFrame, groups: DataFrame, as_of: DataFrame, window_days: int) -> DataFrame:
    """Per (article, as-of date): distinct buyers in the window by age band and by dominant channel."""
    buyers = (
        tx.join(F.broadcast(as_of), on=in_window("t_dat", window_days), how="inner")
        .select("article_id", "customer_id", AS_OF)
        .distinct()
        .join(groups.select("customer_id", AS_OF, "age_band", "channel"), on=["customer_id", AS_OF], how="left")
    )
    counts = [
        F.sum(F.when(F.coalesce(F.col("age_band"), F.lit(C.AGE_UNKNOWN)) == band, 1).otherwise(0))
        .cast("long")
        .alias(f"buyers_28d_{band_column_suffix(band)}")
        for band in BANDS
    ] + [
        F.sum(F.when(F.col("channel") == ch, 1).otherwise(0)).cast("long").alias(f"buyers_28d_{ch}")
        for ch in (C.CHANNEL_ONLINE, C.CHANNEL_STORE)
    ]
    return buyers.groupBy("article_id", AS_OF).agg(*counts)


def first_sales(tx_history: DataFrame) -> DataFrame:
    """(article_id, first_sale): the first sale in the whole history given (pass every transaction up to the end)."""
    return tx_history.groupBy("article_id").agg(F.min("t_dat").alias("_first_sale"))


def article_daily(
    tx: DataFrame,
    articles: DataFrame,
    groups: DataFrame,
    as_of: DataFrame,
    first_sale: DataFrame,
    *,
    in_stock_sales_days: int = 28,
    new_article_days: int = 14,
) -> DataFrame:
    """Features of every in-stock article for every as-of date (stamps added by the job).

    In stock (DESIGN.md): sold within ``in_stock_sales_days``, or first seen within ``new_article_days``.
    ``tx`` needs only the window before each as-of date; ``first_sale`` comes from ``first_sales`` over the whole
    history. ``price_level`` is the article's mean price over the window divided by the median over the in-stock
    articles of its category that day (null when the article has not sold in the window).
    """
    sales = article_sales(tx, as_of, in_stock_sales_days)
    buyers = article_buyers_by_group(tx, groups, as_of, in_stock_sales_days)
    zero_cols = ["sales_7d", "sales_28d"] + [c for c in buyers.columns if c.startswith("buyers_")]
    rows = (
        known_articles(articles, as_of)
        .join(sales, on=["article_id", AS_OF], how="left")
        .join(buyers, on=["article_id", AS_OF], how="left")
        .join(first_sale, on="article_id", how="left")
        .fillna(0, subset=zero_cols)
        .where(
            (F.col("sales_28d") > 0)
            | (F.datediff(F.col(AS_OF), F.col("first_seen_date")) < new_article_days)
        )
    )
    category_day = Window.partitionBy("category", AS_OF)
    return rows.select(
        "article_id",
        AS_OF,
        "category",
        "product_code",
        "price_28d",
        F.try_divide(F.col("price_28d"), F.percentile_approx("price_28d", 0.5).over(category_day)).alias("price_level"),
        "sales_7d",
        "sales_28d",
        F.when(F.col("_first_sale") <= F.col(AS_OF), F.datediff(F.col(AS_OF), F.col("_first_sale")))
        .cast("int")
        .alias("days_since_first_sale"),
        F.datediff(F.col(AS_OF), F.col("first_seen_date")).cast("int").alias("days_since_first_seen"),
        *[F.col(c).cast("long") for c in zero_cols[2:]],
    )
