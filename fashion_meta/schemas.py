"""Schemas of every lake table, declared once; writers check DataFrames against them."""

from __future__ import annotations

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
    ]
)

# Rows in BRONZE_ARTICLES' integer-typed columns come from these names (everything *_no/_id/_code but index_code).
ARTICLE_INT_COLUMNS = tuple(f.name for f in BRONZE_ARTICLES.fields if isinstance(f.dataType, T.IntegerType))


def check_schema(df: DataFrame, expected: T.StructType, table: str) -> DataFrame:
    """Return ``df`` with columns in contract order; raise naming the first missing or mistyped column."""
    actual = {f.name: f.dataType for f in df.schema.fields}
    for field in expected.fields:
        if field.name not in actual:
            raise ValueError(f"{table}: column '{field.name}' is missing")
        if actual[field.name] != field.dataType:
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
