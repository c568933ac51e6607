"""features/customer_daily: activity, channel mix, user group and a pooled text vector of recent purchases."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fashion_meta.features.common import AS_OF, age_band, channel, in_window, user_group

ONLINE = 2


def daily_customer_activity(tx: DataFrame, article_categories: DataFrame) -> DataFrame:
    """Purchases per (customer, day, category): items, online items, price sum."""
    return (
        tx.join(article_categories, on="article_id", how="left")
        .groupBy("customer_id", "t_dat", "category")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.when(F.col("sales_channel_id") == ONLINE, 1).otherwise(0)).alias("n_online"),
            F.sum("price").alias("price_sum"),
        )
        .select("customer_id", "t_dat", "category", "n", "n_online", "price_sum")
    )


def customer_windows(activity: DataFrame, as_of: DataFrame, lookback_days: int, channel_days: int) -> DataFrame:
    """Per (customer, as-of date) counts over 7/28/lookback days for customers active in the look-back window."""
    span = max(lookback_days, channel_days, 28)
    joined = activity.join(F.broadcast(as_of), on=in_window("t_dat", span), how="inner")

    def n_in(days: int, col: str = "n"):
        return F.sum(F.when(in_window("t_dat", days), F.col(col)).otherwise(0))

    return (
        joined.groupBy("customer_id", AS_OF)
        .agg(
            n_in(7).alias("purchases_7d"),
            n_in(28).alias("purchases_28d"),
            n_in(lookback_days).alias("purchases_90d"),
            n_in(channel_days, "n_online").alias("_online"),
            n_in(channel_days).alias("_channel_n"),
            F.max(F.when(in_window("t_dat", lookback_days), F.col("t_dat"))).alias("_last"),
            F.countDistinct(F.when(in_window("t_dat", lookback_days), F.col("category"))).alias("distinct_categories_90d"),
            F.sum(F.when(in_window("t_dat", lookback_days), F.col("price_sum"))).alias("_price_sum"),
        )
        .where(F.col("purchases_90d") > 0)
        .select(
            "customer_id",
            AS_OF,
            F.col("purchases_7d").cast("long"),
            F.col("purchases_28d").cast("long"),
            F.col("purchases_90d").cast("long"),
            F.col("_online").cast("long").alias("online_n"),
            (F.col("_channel_n") - F.col("_online")).cast("long").alias("store_n"),
            F.coalesce(F.try_divide(F.col("_online"), F.col("_channel_n")), F.lit(0.0)).cast("double").alias("online_share_90d"),
            F.datediff(F.col(AS_OF), F.col("_last")).cast("int").alias("days_since_last_purchase"),
            F.col("distinct_categories_90d").cast("long"),
            F.try_divide(F.col("_price_sum"), F.col("purchases_90d")).cast("double").alias("avg_price_90d"),
        )
    )


def with_user_group(windows: DataFrame, customers: DataFrame) -> DataFrame:
    """Add age, age band, dominant channel and the user group label (customers absent from customers.csv: unknown age)."""
    return (
        windows.join(customers.select("customer_id", "age"), on="customer_id", how="left")
        .withColumn("age_band", age_band("age"))
        .withColumn("channel", channel("online_n", "store_n"))
        .withColumn("user_group", user_group("age_band", "channel"))
        .select(
            "customer_id", AS_OF, "user_group", "age_band", "channel", "age", "purchases_7d", "purchases_28d",
            "purchases_90d", "online_share_90d", "days_since_last_purchase", "distinct_categories_90d", "avg_price_90d",
        )
    )


def _pool(matrix_bc, batches):
    for batch in batches:
        vids = batch.column("vids")
        counts = batch.column("counts")
        offsets = vids.offsets.to_numpy()
        flat_ids = vids.values.to_numpy(zero_copy_only=False)
        flat_counts = counts.values.to_numpy(zero_copy_only=False).astype(np.float32)
        matrix = matrix_bc.value
        if len(flat_ids):
            weighted = matrix[flat_ids] * flat_counts[:, None]
            sums = np.add.reduceat(weighted, offsets[:-1], axis=0)
        else:
            sums = np.zeros((0, matrix.shape[1]), dtype=np.float32)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        pooled = (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        dim = matrix.shape[1]
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(pooled.reshape(-1)), dim).cast(pa.list_(pa.float32()))
        yield pa.RecordBatch.from_arrays(
            [batch.column("customer_id"), batch.column(AS_OF), vectors], names=["customer_id", AS_OF, "history_vector"]
        )


def pooled_history_vectors(
    spark: SparkSession, tx: DataFrame, as_of: DataFrame, vectors: DataFrame, lookback_days: int
) -> DataFrame:
    """Per (customer, as-of date): the L2-normalised mean text vector of the articles bought in the look-back window.

    Each article's vector is the latest one stamped at or before the as-of date's event time, so a text that
    changed later never leaks into an earlier row. The vector table is broadcast as one numpy matrix.
    """
    # text_hash breaks ties (two texts of one article stamped the same day), so the numbering is total and the
    # collected matrix and the join below agree row for row.
    versions = vectors.select(
        "article_id", "text_hash", F.col("event_timestamp").alias("_vts"), "embedding"
    ).withColumn("_vid", F.row_number().over(Window.orderBy("article_id", "_vts", "text_hash")) - 1)
    rows = versions.select("_vid", "embedding").orderBy("_vid").collect()
    if not rows:
        return spark.createDataFrame([], f"customer_id string, {AS_OF} date, history_vector array<float>")
    matrix = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
    matrix_bc = spark.sparkContext.broadcast(matrix)
    pairs = (
        tx.join(F.broadcast(as_of), on=in_window("t_dat", lookback_days), how="inner")
        .groupBy("customer_id", AS_OF, "article_id")
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    latest = Window.partitionBy("customer_id", AS_OF, "article_id").orderBy(F.col("_vts").desc(), F.col("_vid").desc())
    chosen = (
        pairs.join(versions.select("article_id", "_vts", "_vid"), on="article_id", how="inner")
        .where(F.col("_vts") <= F.to_timestamp(F.date_add(F.col(AS_OF), 1)))
        .withColumn("_rank", F.row_number().over(latest))
        .where(F.col("_rank") == 1)
    )
    grouped = chosen.groupBy("customer_id", AS_OF).agg(
        F.sort_array(F.collect_list(F.struct("_vid", "_n"))).alias("_items")
    ).select(
        "customer_id", AS_OF, F.col("_items._vid").alias("vids"), F.col("_items._n").alias("counts")
    )
    return grouped.mapInArrow(
        lambda it: _pool(matrix_bc, it), f"customer_id string, {AS_OF} date, history_vector array<float>"
    )


def customer_daily(
    spark: SparkSession,
    tx: DataFrame,
    article_categories: DataFrame,
    customers: DataFrame,
    as_of: DataFrame,
    vectors: DataFrame | None,
    *,
    lookback_days: int = 90,
    channel_days: int = 90,
) -> DataFrame:
    """Customer features for every active customer and as-of date (stamps added by the job)."""
    activity = daily_customer_activity(tx, article_categories)
    base = with_user_group(customer_windows(activity, as_of, lookback_days, channel_days), customers)
    if vectors is None:
        return base.withColumn("history_vector", F.lit(None).cast("array<float>"))
    pooled = pooled_history_vectors(spark, tx, as_of, vectors, lookback_days)
    return base.join(pooled, on=["customer_id", AS_OF], how="left")
