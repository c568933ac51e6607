"""compute_article_embeddings on a tiny bronze/articles table: Spark vectors, time stamps, incremental reruns."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import lake, schemas
from fashion_meta.errors import InputError
from fashion_meta.features.embeddings import EmbeddingSummary, compute_article_embeddings, with_article_text
from fashion_meta.features.text_encoder import DEFAULT_MODEL, article_text, article_text_column, get_encoder

pytestmark = pytest.mark.spark

UTC = dt.timezone.utc
DAY1 = dt.date(2020, 9, 1)
DAY2 = dt.date(2020, 9, 2)
DAY3 = dt.date(2020, 9, 3)
INGESTED = dt.datetime(2020, 9, 1, 6, 0, tzinfo=UTC)
BASE = {
    "prod_name": "Strap top",
    "product_type_name": "Vest top",
    "product_group_name": "Garment Upper body",
    "colour_group_name": "Black",
    "graphical_appearance_name": "Solid",
    "perceived_colour_value_name": "Dark",
    "section_name": "Womens Everyday Basics",
    "garment_group_name": "Jersey Basic",
    "index_name": "Ladieswear",
    "detail_desc": "Jersey top with narrow shoulder straps.",
}
ARTICLES = {
    "0108775015": ({}, dt.date(2020, 8, 20)),
    "0108775044": ({"colour_group_name": "White", "perceived_colour_value_name": "Light"}, dt.date(2020, 8, 25)),
    "0110065001": (  # no description
        {"prod_name": "OP T-shirt (Idro)", "product_type_name": "Bra", "product_group_name": "Underwear",
         "detail_desc": None},
        dt.date(2020, 8, 31),
    ),
    "0111565001": (  # nulls in attributes
        {"prod_name": "20 den 1p Stockings", "product_type_name": "Underwear Tights", "colour_group_name": None,
         "graphical_appearance_name": None, "section_name": None, "index_name": None,
         "detail_desc": "Semi shiny nylon stockings with a wide, reinforced trim at the top."},
        dt.date(2020, 9, 1),
    ),
    "0176209023": (
        {"prod_name": "Ankle boot", "product_type_name": "Boots", "product_group_name": "Shoes",
         "detail_desc": "Leather ankle boots with a chunky heel."},
        dt.date(2020, 7, 1),
    ),
}
CHANGED_ID = "0176209023"
CHANGED_DESC = "Suede ankle boots with a block heel and a side zip."


def _bronze_rows(overrides: dict[str, dict] | None = None) -> list[tuple]:
    rows = []
    for article_id, (fields, first_seen) in ARTICLES.items():
        values = {**BASE, **fields, **(overrides or {}).get(article_id, {})}
        values.update(article_id=article_id, first_seen_date=first_seen, ingested_at=INGESTED,
                      source_file="articles.csv")
        rows.append(tuple(values.get(f.name) for f in schemas.BRONZE_ARTICLES.fields))
    return rows


def _write_bronze(spark, lake_root: str, overrides: dict[str, dict] | None = None) -> None:
    df = spark.createDataFrame(_bronze_rows(overrides), schemas.BRONZE_ARTICLES)
    df.write.format("delta").mode("overwrite").save(lake.table_path(lake_root, C.BRONZE_ARTICLES))


def _table(spark, lake_root: str) -> list:
    df = lake.read_table(spark, lake.table_path(lake_root, C.FEATURES_ARTICLE_TEXT))
    return (
        df.withColumn("event_seconds", F.col("event_timestamp").cast("long"))
        .withColumn("created_seconds", F.col("created_timestamp").cast("long"))
        .orderBy("article_id", "event_timestamp")
        .collect()
    )


def _midnight_utc(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory) -> dict:
    """Three runs over one lake: first (all new), next day (nothing new), then one description changed."""
    lake_root = str(tmp_path_factory.mktemp("embeddings") / "lake")
    _write_bronze(spark, lake_root)
    before = int(dt.datetime.now(UTC).timestamp())
    first = compute_article_embeddings(spark, lake_root, DAY1, batch_size=8)
    after_first = _table(spark, lake_root)
    second = compute_article_embeddings(spark, lake_root, DAY2, batch_size=8)
    after_second = _table(spark, lake_root)
    _write_bronze(spark, lake_root, {CHANGED_ID: {"detail_desc": CHANGED_DESC}})
    third = compute_article_embeddings(spark, lake_root, DAY3, batch_size=8)
    after_third = _table(spark, lake_root)
    return {
        "lake_root": lake_root, "before": before, "summaries": (first, second, third),
        "tables": (after_first, after_second, after_third),
    }


def test_first_run_encodes_every_article(runs):
    first = runs["summaries"][0]
    assert isinstance(first, EmbeddingSummary)
    assert (first.articles, first.encoded, first.reused) == (5, 5, 0)
    assert first.texts_per_second > 0
    rows = runs["tables"][0]
    assert sorted(r.article_id for r in rows) == sorted(ARTICLES)
    assert {r.model for r in rows} == {DEFAULT_MODEL}


def test_spark_vectors_equal_direct_encoding_and_have_unit_norm(runs):
    rows = runs["tables"][0]
    texts = {a: article_text({**BASE, **fields}) for a, (fields, _) in ARTICLES.items()}
    direct = get_encoder(DEFAULT_MODEL).encode([texts[r.article_id] for r in rows])
    vectors = np.array([r.embedding for r in rows], dtype=np.float32)
    assert vectors.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, direct, atol=1e-5)
    for r in rows:
        assert r.text_hash == hashlib.sha256(texts[r.article_id].encode("utf-8")).hexdigest()
    no_desc = next(r for r in rows if r.article_id == "0110065001")
    assert texts["0110065001"] == (
        "OP T-shirt (Idro). Bra, Underwear, Black, Solid, Dark, Womens Everyday Basics, Jersey Basic, Ladieswear"
    )
    assert len(no_desc.embedding) == 384


def test_first_vectors_are_stamped_first_seen_date_midnight_utc(runs):
    for r in runs["tables"][0]:
        assert r.event_seconds == _midnight_utc(ARTICLES[r.article_id][1]), r.article_id
        assert runs["before"] - 1 <= r.created_seconds <= int(dt.datetime.now(UTC).timestamp())
    assert len({r.created_seconds for r in runs["tables"][0]}) == 1


def test_rerun_next_day_encodes_nothing(runs):
    second = runs["summaries"][1]
    assert (second.articles, second.encoded, second.reused) == (5, 0, 5)
    assert runs["tables"][1] == runs["tables"][0]


def test_changed_description_adds_one_row_stamped_after_the_run(runs):
    third = runs["summaries"][2]
    assert (third.articles, third.encoded, third.reused) == (5, 1, 4)
    before, after = runs["tables"][1], runs["tables"][2]
    assert len(after) == len(before) + 1
    assert all(r in after for r in before), "old rows must stay untouched"
    (added,) = [r for r in after if r not in before]
    assert added.article_id == CHANGED_ID
    assert added.event_seconds == _midnight_utc(DAY3 + dt.timedelta(days=1))
    new_text = article_text({**BASE, **ARTICLES[CHANGED_ID][0], "detail_desc": CHANGED_DESC})
    assert added.text_hash == hashlib.sha256(new_text.encode("utf-8")).hexdigest()
    np.testing.assert_allclose(added.embedding, get_encoder(DEFAULT_MODEL).encode([new_text])[0], atol=1e-5)


def test_spark_text_column_equals_article_text(spark):
    tricky = {
        "0000000001": {"prod_name": "  Spaced\tname ", "detail_desc": "Line one\r\nline two\n"},
        "0000000002": {"prod_name": "", "product_type_name": " ", "detail_desc": "\u00a0non-breaking\u00a0"},
        "0000000003": {c: None for c in BASE} | {"prod_name": "Only a name"},
        "0000000004": {c: None for c in BASE},
        "0000000005": {"detail_desc": "Ünïcode \u2028 and\x0bvertical\x0ctab, émoji 👢"},
    }
    rows = []
    for article_id, fields in tricky.items():
        values = {**BASE, **fields, "article_id": article_id, "first_seen_date": DAY1, "ingested_at": INGESTED,
                  "source_file": "articles.csv"}
        rows.append(tuple(values.get(f.name) for f in schemas.BRONZE_ARTICLES.fields))
    rows.extend(_bronze_rows())
    df = spark.createDataFrame(rows, schemas.BRONZE_ARTICLES)
    got = df.select("*", article_text_column().alias("text")).collect()
    assert len(got) == 10
    for row in got:
        assert row.text == article_text(row.asDict()), row.article_id
    assert next(r.text for r in got if r.article_id == "0000000004") == ""
    hashed = {r.article_id: r.text_hash for r in with_article_text(df).collect()}
    for row in got:
        assert hashed[row.article_id] == hashlib.sha256(row.text.encode("utf-8")).hexdigest()


def test_missing_bronze_articles_raises(spark, tmp_path):
    with pytest.raises(InputError, match="bronze/articles"):
        compute_article_embeddings(spark, str(tmp_path / "lake"), DAY1)
