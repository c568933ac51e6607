"""features/article_text_embedding: one vector per (article, model, text), computed in Spark, incrementally.

Each article's text (name, attributes, description; see ``text_encoder.article_text_column``) is hashed
(``text_hash = sha2(text, 256)``); only articles whose (article_id, model, text_hash) has no row yet are encoded:
new articles, changed texts, or a model not used before. Encoding runs in Spark's Python workers
(``mapInPandas``), each worker loading the model once through ``text_encoder.get_encoder``; the texts never
travel to the driver. New rows are MERGEd on (article_id, model, text_hash), insert-only, so rerunning a date adds
nothing.

Time stamps (UTC): ``event_timestamp`` is the article's ``first_seen_date`` 00:00 for its first vector under a
model (the text was known from the day the article was first seen), and run_date + 1 day 00:00 for a changed text
(it becomes known when the run that saw it finishes, DESIGN.md Conventions). ``created_timestamp`` is the
wall-clock time of the computation.

TTL: text vectors do not expire (Feast ttl 0 = unlimited). An article's text changes only by a new row with a
later event_timestamp, so a point-in-time read always finds the text as it was, however old the row.
A text that changes back to an earlier one keeps its earlier row (same key) and adds none, so point-in-time reads
then still see the in-between text; this is the price of the (article_id, model, text_hash) key.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fashion_meta import constants as C
from fashion_meta import lake, schemas
from fashion_meta.errors import InputError
from fashion_meta.features.text_encoder import DEFAULT_MODEL, article_text_column, get_encoder

log = logging.getLogger(__name__)

KEYS = ("article_id", "model", "text_hash")
_SECONDS_PER_DAY = 86_400
# What the Python workers return; event seconds travel as a plain long so no time zone conversion touches them.
_ENCODED = T.StructType(
    [
        T.StructField("article_id", T.StringType(), False),
        T.StructField("text_hash", T.StringType(), False),
        T.StructField("event_seconds", T.LongType(), False),
        T.StructField("embedding", T.ArrayType(T.FloatType(), False), False),
    ]
)


@dataclass
class EmbeddingSummary:
    """What one embedding run did: articles in bronze, texts encoded, vectors reused, time and throughput."""

    articles: int
    encoded: int
    reused: int
    seconds: float
    # Texts encoded / wall time of the encoding stage, model loading in the workers included; 0.0 if none.
    texts_per_second: float


def with_article_text(articles: DataFrame) -> DataFrame:
    """article_id, first_seen_date, text and text_hash (sha2-256 hex of the text) of each article."""
    missing = [c for c in ("article_id", "first_seen_date") if c not in articles.columns]
    if missing:
        raise ValueError(f"articles: column '{missing[0]}' is missing")
    return (
        articles.withColumn("text", article_text_column())
        .withColumn("text_hash", F.sha2(F.col("text"), 256))
        .select("article_id", "first_seen_date", "text", "text_hash")
    )


def with_encoding_status(texts: DataFrame, existing: DataFrame, run_date: dt.date) -> DataFrame:
    """Each article with ``needs_vector`` (its text has no row in ``existing``, one model) and event_seconds."""
    known = existing.groupBy("article_id").agg(F.collect_set("text_hash").alias("_known_hashes"))
    changed_at = (run_date + dt.timedelta(days=1) - dt.date(1970, 1, 1)).days * _SECONDS_PER_DAY
    has_vector = F.col("_known_hashes").isNotNull()
    return (
        texts.join(known, on="article_id", how="left")
        .withColumn("needs_vector", ~has_vector | ~F.array_contains("_known_hashes", F.col("text_hash")))
        .withColumn(
            "event_seconds",
            F.when(has_vector, F.lit(changed_at).cast("long")).otherwise(
                F.unix_date(F.col("first_seen_date")).cast("long") * _SECONDS_PER_DAY
            ),
        )
        .select("article_id", "text_hash", "event_seconds", "text", "needs_vector")
    )


def _encode_batches(
    model: str, max_length: int, batch_size: int, threads: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function: text -> embedding, with the worker's cached encoder."""

    def encode(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        encoder = get_encoder(model, max_length, batch_size, threads)
        for frame in frames:
            vectors = encoder.encode(frame["text"].tolist())
            yield pd.DataFrame(
                {
                    "article_id": frame["article_id"],
                    "text_hash": frame["text_hash"],
                    "event_seconds": frame["event_seconds"],
                    "embedding": list(vectors),
                }
            )

    return encode


def compute_article_embeddings(
    spark: SparkSession,
    lake_root: str,
    run_date: dt.date,
    *,
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    max_length: int = 128,
    threads: int = 1,
) -> EmbeddingSummary:
    """Encode new or changed article texts of bronze/articles into features/article_text_embedding."""
    if batch_size < 1 or max_length < 1 or threads < 1:
        raise ValueError(
            f"batch_size, max_length and threads must be >= 1, got {batch_size}, {max_length}, {threads}"
        )
    started = time.monotonic()
    created = dt.datetime.now(dt.timezone.utc)
    articles_path = lake.table_path(lake_root, C.BRONZE_ARTICLES)
    target_path = lake.table_path(lake_root, C.FEATURES_ARTICLE_TEXT)
    if not lake.table_exists(spark, articles_path):
        raise InputError(f"{articles_path}: {C.BRONZE_ARTICLES} does not exist; run ingest first")
    lake.ensure_table(spark, target_path, schemas.ARTICLE_TEXT_EMBEDDING)

    texts = with_article_text(lake.read_table(spark, articles_path))
    existing = lake.read_table(spark, target_path).where(F.col("model") == F.lit(model))
    status = with_encoding_status(texts, existing, run_date).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = status.agg(
            F.count(F.lit(1)).alias("total"), F.sum(F.col("needs_vector").cast("long")).alias("to_encode")
        ).collect()[0]
        total, to_encode = counts["total"], counts["to_encode"] or 0
        partitions = max(1, min(spark.sparkContext.defaultParallelism, math.ceil(to_encode / batch_size)))
        log.info(
            "article texts: %d articles, %d to encode with %s (%d partitions), %d reused",
            total, to_encode, model, partitions, total - to_encode,
        )
        if to_encode == 0:
            return EmbeddingSummary(total, 0, total, round(time.monotonic() - started, 2), 0.0)

        encoded = (
            status.where(F.col("needs_vector"))
            .repartition(partitions)
            .mapInPandas(_encode_batches(model, max_length, batch_size, threads), schema=_ENCODED)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        try:
            encode_started = time.monotonic()
            encoded.count()  # encode exactly once, before the MERGE reads the rows
            encode_seconds = time.monotonic() - encode_started
            rate = to_encode / encode_seconds if encode_seconds > 0 else 0.0
            log.info("encoded %d texts in %.1f s (%.1f texts/s)", to_encode, encode_seconds, rate)
            rows = encoded.select(
                "article_id",
                F.lit(model).alias("model"),
                "text_hash",
                "embedding",
                F.timestamp_seconds(F.col("event_seconds")).alias("event_timestamp"),
                F.lit(created).cast("timestamp").alias("created_timestamp"),
            )
            inserted = lake.merge_upsert(
                spark,
                schemas.check_schema(rows, schemas.ARTICLE_TEXT_EMBEDDING, C.FEATURES_ARTICLE_TEXT),
                target_path,
                KEYS,
                update=False,  # insert-only: an existing (article, model, text) vector is never rewritten
            )["inserted"]
        finally:
            encoded.unpersist()
    finally:
        status.unpersist()
    if inserted != to_encode:
        log.warning("%d texts encoded but %d rows inserted (a concurrent run wrote some)", to_encode, inserted)
    seconds = round(time.monotonic() - started, 2)
    log.info("%s: %d rows added in %.1f s", C.FEATURES_ARTICLE_TEXT, inserted, seconds)
    return EmbeddingSummary(total, to_encode, total - to_encode, seconds, round(rate, 1))
