"""Schemas of every lake table, declared once; writers check DataFrames against them."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from fashion_meta import constants as C

BRONZE_ARTICLES = T.StructType(
    [T.StructField("article_id", T.StringType(), False), T.StructField("product_code", T.IntegerType(), True)]
    + [T.StructField("prod_name", T.StringType(), True)]
    + [
        T.StructField(name, T.IntegerType() if name.endswith(("_no", "_id", "_code")) and name != "index_code" else T.StringType(), True)
        for name in C.ARTICLE_COLUMNS[3:]
    ]
    + [
        T.StructField("first_seen_date", T.DateType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
        T.StructField("source_file", T.StringType(), False),
    ]
)

BRONZE_CUSTOMERS = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("FN", T.DoubleType(), True),
        T.StructField("Active", T.DoubleType(), True),
        T.StructField("club_member_status", T.StringType(), True),
        T.StructField("fashion_news_frequency", T.StringType(), True),
        T.StructField("age", T.IntegerType(), True),
        T.StructField("postal_code", T.StringType(), True),
        T.StructField("ingested_at", T.TimestampType(), False),
        T.StructField("source_file", T.StringType(), False),
    ]
)

BRONZE_TRANSACTIONS = T.StructType(
    [
        T.StructField("t_dat", T.DateType(), False),
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("article_id", T.StringType(), False),
        T.StructField("price", T.DoubleType(), False),
        T.StructField("sales_channel_id", T.IntegerType(), False),
    ]
)

BRONZE_REJECTS = T.StructType(
    [
        T.StructField("source_path", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("row_number", T.LongType(), True),
        T.StructField("raw", T.StringType(), True),
        T.StructField("reason", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
    ]
)

RUN_LOG = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("command", T.StringType(), False),
        T.StructField("run_date", T.DateType(), True),
        T.StructField("status", T.StringType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("ended_at", T.TimestampType(), False),
        T.StructField("counts", T.MapType(T.StringType(), T.LongType()), True),
        T.StructField("message", T.StringType(), True),
        T.StructField("code_version", T.StringType(), False),
        T.StructField("config_json", T.StringType(), False),
        # nightly stage rows: the stage name and the fingerprint of (inputs, config, code) they completed with
        T.StructField("stage", T.StringType(), True),
        T.StructField("fingerprint", T.StringType(), True),
    ]
)

# Rows in BRONZE_ARTICLES' integer-typed columns come from these names (everything *_no/_id/_code but index_code).
ARTICLE_INT_COLUMNS = tuple(f.name for f in BRONZE_ARTICLES.fields if isinstance(f.dataType, T.IntegerType))


def require_columns(df: DataFrame, columns: Sequence[str], name: str) -> None:
    """ValueError naming ``name`` and the columns of ``columns`` that ``df`` lacks (in their given order)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")


def check_schema(df: DataFrame, expected: T.StructType, table: str) -> DataFrame:
    """Return ``df`` with columns in contract order; raise naming the first missing or mistyped column."""
    actual = {f.name: f.dataType for f in df.schema.fields}
    for field in expected.fields:
        if field.name not in actual:
            raise ValueError(f"{table}: column '{field.name}' is missing")
        # simpleString ignores nullability inside arrays/maps, which Spark does not track reliably
        if actual[field.name].simpleString() != field.dataType.simpleString():
            raise ValueError(
                f"{table}: column '{field.name}' is {actual[field.name].simpleString()}, "
                f"expected {field.dataType.simpleString()}"
            )
    return df.select(*[f.name for f in expected.fields])

# features/article_text_embedding: one row per (article, model, text) ever encoded; a changed text adds a row
# with a later event_timestamp, so point-in-time reads see the text as it was.
ARTICLE_TEXT_EMBEDDING = T.StructType(
    [
        T.StructField("article_id", T.StringType(), False),
        T.StructField("model", T.StringType(), False),
        T.StructField("text_hash", T.StringType(), False),
        T.StructField("embedding", T.ArrayType(T.FloatType(), False), False),
        T.StructField("event_timestamp", T.TimestampType(), False),
        T.StructField("created_timestamp", T.TimestampType(), False),
    ]
)


def _fields(*spec: tuple[str, T.DataType, bool]) -> list[T.StructField]:
    return [T.StructField(name, dtype, nullable) for name, dtype, nullable in spec]


_STAMPS = _fields(
    ("event_timestamp", T.TimestampType(), False),
    ("created_timestamp", T.TimestampType(), False),
    ("feature_date", T.DateType(), False),
)
AGE_BAND_COLUMNS = ("le24", "25_34", "35_44", "45_54", "55plus", "unknown")

# features/customer_daily: one row per active customer and day D, stamped D+1 00:00 UTC. TTL 2 days.
CUSTOMER_DAILY = T.StructType(
    _fields(
        ("customer_id", T.StringType(), False),
        ("user_group", T.StringType(), False),
        ("age_band", T.StringType(), False),
        ("channel", T.StringType(), False),
        ("age", T.IntegerType(), True),
        ("purchases_7d", T.LongType(), False),
        ("purchases_28d", T.LongType(), False),
        ("purchases_90d", T.LongType(), False),
        ("online_share_90d", T.DoubleType(), False),
        ("days_since_last_purchase", T.IntegerType(), False),
        ("distinct_categories_90d", T.LongType(), False),
        ("avg_price_90d", T.DoubleType(), True),
        ("history_vector", T.ArrayType(T.FloatType(), True), True),
    )
    + _STAMPS
)

# features/article_daily: one row per in-stock article and day D, stamped D+1 00:00 UTC. TTL 2 days.
ARTICLE_DAILY = T.StructType(
    _fields(
        ("article_id", T.StringType(), False),
        ("category", T.StringType(), False),
        ("product_code", T.IntegerType(), True),
        ("price_28d", T.DoubleType(), True),
        ("price_level", T.DoubleType(), True),
        ("sales_7d", T.LongType(), False),
        ("sales_28d", T.LongType(), False),
        ("days_since_first_sale", T.IntegerType(), True),
        ("days_since_first_seen", T.IntegerType(), False),
    )
    + _fields(*[(f"buyers_28d_{band}", T.LongType(), False) for band in AGE_BAND_COLUMNS])
    + _fields(("buyers_28d_online", T.LongType(), False), ("buyers_28d_store", T.LongType(), False))
    + _STAMPS
)

# features/category_daily: one row per known category and day D, stamped D+1 00:00 UTC. TTL 2 days.
CATEGORY_DAILY = T.StructType(
    _fields(
        ("category", T.StringType(), False),
        ("articles_known", T.LongType(), False),
        ("articles_in_stock", T.LongType(), False),
        ("purchases_7d", T.LongType(), False),
        ("purchases_28d", T.LongType(), False),
        ("purchases_total", T.LongType(), False),
        ("first_sale_date", T.DateType(), True),
        ("age_days", T.IntegerType(), True),
        ("is_new", T.BooleanType(), False),
    )
    + _STAMPS
)

# features/group_category_daily: one row per (user group, category) and day D, stamped D+1 00:00 UTC. TTL 2 days.
GROUP_CATEGORY_DAILY = T.StructType(
    _fields(
        ("user_group", T.StringType(), False),
        ("category", T.StringType(), False),
        ("purchases_7d", T.LongType(), False),
        ("purchases_28d", T.LongType(), False),
        ("buyers_7d", T.LongType(), False),
        ("buyers_28d", T.LongType(), False),
        ("group_share_of_category_28d", T.DoubleType(), True),
        ("category_share_of_group_28d", T.DoubleType(), True),
        ("trend_7d_vs_28d", T.DoubleType(), True),
        ("affinity", T.DoubleType(), False),
    )
    + _STAMPS
)

# features/computed_days: one row per feature day whose four daily tables were all written by one features run.
# A day can legitimately have no rows in a table (e.g. no in-stock article the day before the first sale of a
# recent shop when an old stray purchase exists), so "computed" is recorded here instead of inferred from rows.
FEATURES_COMPUTED_DAYS = T.StructType(
    [
        T.StructField("feature_date", T.DateType(), False),
        T.StructField("computed_at", T.TimestampType(), False),
    ]
)

# recommendations: one row per (run date, category, active customer), partitioned by run_date. ``items`` holds the
# top-N in-stock articles of the category, best first (rank 1..n, scores non-increasing, ties by article_id).
# Nested fields are declared nullable (Parquet round trips drop nested NOT NULL); the output checks forbid nulls.
RECOMMENDATION_ITEM = T.StructType(
    [
        T.StructField("rank", T.IntegerType(), True),
        T.StructField("article_id", T.StringType(), True),
        T.StructField("score", T.FloatType(), True),
    ]
)
SERVING_MODES = ("warm", "meta_adapted", "transferred", "fallback")
RECOMMENDATIONS = T.StructType(
    [
        T.StructField("run_date", T.DateType(), False),
        T.StructField("category", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("user_group", T.StringType(), False),
        T.StructField("items", T.ArrayType(RECOMMENDATION_ITEM, containsNull=True), False),
        T.StructField("serving_mode", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
    ]
)
