"""Pieces every feature table shares: as-of dates, time stamps, age band, channel and user group labels.

Every feature transform takes an ``as_of`` DataFrame (one column ``as_of_date``) so the same code computes one
day (the nightly run) or a whole date range in one Spark job (``--backfill``): transactions are joined to the
dates whose look-back window contains them, never to later ones, so nothing after D reaches a row for D.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fashion_meta import constants as C

AS_OF = "as_of_date"


def as_of_dates(spark: SparkSession, start: dt.date, end: dt.date) -> DataFrame:
    """One row per day from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ValueError(f"backfill range ends ({end}) before it starts ({start})")
    return spark.sql(
        f"SELECT explode(sequence(DATE'{start.isoformat()}', DATE'{end.isoformat()}', INTERVAL 1 DAY)) AS {AS_OF}"
    )


def event_timestamp(as_of: Column | str = AS_OF) -> Column:
    """D+1 00:00:00 UTC: when the features of day D become known (the session time zone is UTC)."""
    return F.to_timestamp(F.date_add(F.col(as_of) if isinstance(as_of, str) else as_of, 1))


def with_stamps(df: DataFrame, created: dt.datetime) -> DataFrame:
    """Add event_timestamp (D+1 00:00 UTC), created_timestamp (the computation time) and feature_date (D)."""
    return (
        df.withColumn("event_timestamp", event_timestamp())
        .withColumn("created_timestamp", F.lit(created).cast("timestamp"))
        .withColumn("feature_date", F.col(AS_OF))
    )


def in_window(day: Column | str, days: int) -> Column:
    """True when ``day`` lies in the ``days``-day window ending at (and including) the as-of date."""
    d = F.col(day) if isinstance(day, str) else day
    return (d <= F.col(AS_OF)) & (d > F.date_sub(F.col(AS_OF), days))


def age_band(age: Column | str = "age") -> Column:
    """Age band label from DESIGN.md; missing or implausible ages (<14, >100) are 'unknown'."""
    a = F.col(age) if isinstance(age, str) else age
    plausible = a.isNotNull() & (a >= C.MIN_PLAUSIBLE_AGE) & (a <= C.MAX_PLAUSIBLE_AGE)
    expr = F.when(~plausible, F.lit(C.AGE_UNKNOWN))
    for low, high, label in C.AGE_BANDS:
        cond = F.lit(True)
        if low is not None:
            cond = cond & (a >= low)
        if high is not None:
            cond = cond & (a <= high)
        expr = expr.when(cond, F.lit(label))
    return expr.otherwise(F.lit(C.AGE_UNKNOWN))


def channel(online: Column | str, store: Column | str) -> Column:
    """Dominant channel: the larger share (ties online); no purchases in the window: unknown."""
    on = F.col(online) if isinstance(online, str) else online
    st = F.col(store) if isinstance(store, str) else store
    return (
        F.when((F.coalesce(on, F.lit(0)) + F.coalesce(st, F.lit(0))) == 0, F.lit(C.CHANNEL_UNKNOWN))
        .when(on >= st, F.lit(C.CHANNEL_ONLINE))
        .otherwise(F.lit(C.CHANNEL_STORE))
    )


def user_group(band: Column | str, chan: Column | str) -> Column:
    """'<age band>|<channel>', e.g. '25-34|online'."""
    return F.concat_ws("|", F.col(band) if isinstance(band, str) else band, F.col(chan) if isinstance(chan, str) else chan)


def band_column_suffix(label: str) -> str:
    """Column-name-safe form of an age band label ('<=24' -> 'le24', '55+' -> '55plus')."""
    return label.replace("<=", "le").replace("+", "plus").replace("-", "_")
