"""Feature transforms on a hand-made shop; every expected value below is computed by hand in the comments.

Run date D = 2020-03-10. Windows: 7 days = 03-04..03-10, 28 days = 02-12..03-10, 90 days = 12-12..03-10.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import lake, schemas
from fashion_meta.features import common
from fashion_meta.features.customer import pooled_history_vectors
from fashion_meta.features.job import FeatureParams, chunk_days, run_features

pytestmark = pytest.mark.spark
D = dt.date(2020, 3, 10)
OLD = dt.date(2019, 10, 1)
PARAMS = FeatureParams(text_vectors=False, min_category_history=3, prior_strength=2.0)
C1, C2, C3, C4, C5 = (c * 64 for c in "12345")
A = {i: f"000000000{i}" for i in range(1, 6)}


def _article(article_id, category, first_seen, code):
    row = {f.name: None for f in schemas.BRONZE_ARTICLES.fields}
    row.update(article_id=article_id, product_code=code, prod_name=f"p{code}", product_type_name=category,
               product_group_name="g", first_seen_date=first_seen, ingested_at=dt.datetime(2020, 3, 10, tzinfo=dt.timezone.utc),
               source_file="articles.csv")
    return row


def _tx(day, customer, article, price, channel):
    return (dt.date.fromisoformat(day), customer, article, price, channel)


TRANSACTIONS = [
    _tx("2020-03-10", C1, A[1], 0.02, 2),
    _tx("2020-03-10", C1, A[1], 0.02, 2),  # an exact duplicate: a real repeat purchase, counted twice
    _tx("2020-03-05", C1, A[2], 0.04, 1),
    _tx("2020-02-20", C1, A[1], 0.02, 1),
    _tx("2020-02-01", C2, A[4], 0.03, 1),  # 38 days before D: only in the 90-day window
    _tx("2020-03-09", C3, A[5], 0.05, 2),  # Hoodie's first sale: one day before D
    _tx("2020-03-10", C4, A[2], 0.04, 2),  # C4 is absent from customers.csv
    _tx("2019-11-01", C5, A[1], 0.02, 1),  # outside 90 days: C5 is not active
    _tx("2020-03-11", C1, A[2], 0.04, 1),  # after D: must not count for D
]


def _write_shop(spark, root, transactions=TRANSACTIONS):
    articles = [
        _article(A[1], "Top", OLD, 1),
        _article(A[2], "Top", OLD, 2),
        _article(A[3], "Dress", dt.date(2020, 3, 8), 3),  # launched 2 days before D, no sale yet: in stock
        _article(A[4], "Dress", OLD, 4),  # last sold 02-01: out of stock
        _article(A[5], "Hoodie", dt.date(2020, 3, 8), 5),
    ]
    now = dt.datetime(2020, 3, 10, tzinfo=dt.timezone.utc)
    customers = [(C1, None, None, None, None, 22, None, now, "c"), (C2, None, None, None, None, None, None, now, "c"),
                 (C3, None, None, None, None, 120, None, now, "c"), (C5, None, None, None, None, 40, None, now, "c")]
    frames = {
        "bronze/articles": (spark.createDataFrame(articles, schemas.BRONZE_ARTICLES), ()),
        "bronze/customers": (spark.createDataFrame(customers, schemas.BRONZE_CUSTOMERS), ()),
        "bronze/transactions": (spark.createDataFrame(transactions, schemas.BRONZE_TRANSACTIONS), ("t_dat",)),
    }
    for table, (df, parts) in frames.items():
        path = lake.table_path(root, table)
        lake.ensure_table(spark, path, df.schema, partition_by=parts)
        df.write.format("delta").mode("overwrite").save(path)


@pytest.fixture(scope="module")
def shop_lake(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("features") / "lake")
    _write_shop(spark, root)
    run_features(spark, root, D, D, PARAMS)
    return root


def _rows(spark, root, table, key):
    df = spark.read.format("delta").load(f"{root}/features/{table}").where(F.col("feature_date") == D)
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r.asDict() for r in df.collect()}


def test_age_band_channel_and_user_group_labels(spark):
    df = spark.createDataFrame(
        [(22, 2, 2), (None, 0, 1), (120, 3, 0), (13, 0, 0), (34, 1, 4), (55, 5, 1), (100, None, None)],
        "age int, online int, store int",
    )
    out = df.select(common.user_group(common.age_band("age"), common.channel("online", "store")).alias("g"))
    expected = spark.createDataFrame(
        [("<=24|online",), ("unknown|store",), ("unknown|online",), ("unknown|unknown",), ("25-34|store",),
         ("55+|online",), ("55+|unknown",)],
        "g string",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_customer_daily_by_hand(spark, shop_lake):
    rows = _rows(spark, shop_lake, "customer_daily", ["customer_id"])
    assert set(rows) == {C1, C2, C3, C4}  # C5 last bought 131 days ago: not active
    c1 = rows[C1]
    assert (c1["user_group"], c1["purchases_7d"], c1["purchases_28d"], c1["purchases_90d"]) == ("<=24|online", 3, 4, 4)
    assert c1["online_share_90d"] == pytest.approx(0.5)  # 2 online of 4: a tie goes to online
    assert (c1["days_since_last_purchase"], c1["distinct_categories_90d"]) == (0, 1)
    assert c1["avg_price_90d"] == pytest.approx(0.025)
    assert (rows[C2]["user_group"], rows[C2]["purchases_28d"], rows[C2]["purchases_90d"]) == ("unknown|store", 0, 1)
    assert rows[C2]["days_since_last_purchase"] == 38
    assert rows[C3]["user_group"] == "unknown|online"  # age 120 is implausible
    assert rows[C4]["user_group"] == "unknown|online"  # not in customers.csv
    assert c1["event_timestamp"] == dt.datetime(2020, 3, 11) and c1["feature_date"] == D


def test_article_daily_by_hand(spark, shop_lake):
    rows = _rows(spark, shop_lake, "article_daily", ["article_id"])
    assert set(rows) == {A[1], A[2], A[3], A[5]}  # A4 last sold 38 days ago and is not new: out of stock
    a1, a2, a3 = rows[A[1]], rows[A[2]], rows[A[3]]
    assert (a1["sales_7d"], a1["sales_28d"], a1["days_since_first_sale"], a1["days_since_first_seen"]) == (2, 3, 130, 161)
    assert (a2["sales_7d"], a2["sales_28d"], a2["days_since_first_sale"]) == (2, 2, 5)  # the 03-11 sale is ignored
    # median price of Top's in-stock articles is 0.02 (percentile_approx returns a member)
    assert a1["price_level"] == pytest.approx(1.0) and a2["price_level"] == pytest.approx(2.0)
    assert (a2["buyers_28d_le24"], a2["buyers_28d_unknown"], a2["buyers_28d_online"], a2["buyers_28d_store"]) == (1, 1, 2, 0)
    assert (a3["sales_28d"], a3["price_28d"], a3["price_level"], a3["days_since_first_sale"]) == (0, None, None, None)
    assert a3["days_since_first_seen"] == 2


def test_category_daily_by_hand(spark, shop_lake):
    rows = _rows(spark, shop_lake, "category_daily", ["category"])
    top, dress, hoodie = rows["Top"], rows["Dress"], rows["Hoodie"]
    assert (top["articles_known"], top["articles_in_stock"], top["purchases_7d"], top["purchases_28d"], top["purchases_total"]) == (2, 2, 4, 5, 6)
    assert (top["first_sale_date"], top["age_days"], top["is_new"]) == (dt.date(2019, 11, 1), 130, False)
    assert (dress["articles_in_stock"], dress["purchases_total"], dress["is_new"]) == (1, 1, True)  # 1 < min history 3
    assert (hoodie["age_days"], hoodie["is_new"]) == (1, True)  # first sale within 14 days


def test_group_category_daily_by_hand(spark, shop_lake):
    rows = _rows(spark, shop_lake, "group_category_daily", ["user_group", "category"])
    assert len(rows) == 9  # 3 groups seen on D x 3 known categories, zeros included
    top = rows[("<=24|online", "Top")]
    assert (top["purchases_7d"], top["purchases_28d"], top["buyers_7d"], top["buyers_28d"]) == (3, 4, 1, 1)
    assert top["group_share_of_category_28d"] == pytest.approx(4 / 5)
    assert top["category_share_of_group_28d"] == pytest.approx(1.0)
    assert top["trend_7d_vs_28d"] == pytest.approx((3 / 7) / (4 / 28))
    assert top["affinity"] == pytest.approx(((4 + 2 * 5 / 6) / (4 + 2)) / (5 / 6))
    assert rows[("unknown|online", "Hoodie")]["affinity"] == pytest.approx(((1 + 2 / 6) / 4) / (1 / 6))
    idle = rows[("unknown|store", "Top")]
    assert (idle["purchases_28d"], idle["category_share_of_group_28d"], idle["affinity"]) == (0, None, pytest.approx(1.0))
    assert rows[("<=24|online", "Dress")]["affinity"] == pytest.approx(1.0)  # no purchases of Dress at all: neutral


def _snapshot(spark, root):
    out = {}
    for table in ("customer_daily", "article_daily", "category_daily", "group_category_daily"):
        df = spark.read.format("delta").load(f"{root}/features/{table}").drop("created_timestamp")
        out[table] = df.orderBy(*df.columns[:3]).collect()
    return out


def test_purchase_after_d_changes_nothing_and_rerun_replaces(spark, tmp_path):
    root = str(tmp_path / "lake")
    _write_shop(spark, root, [t for t in TRANSACTIONS if t[0] <= D])
    run_features(spark, root, D, D, PARAMS)
    before = _snapshot(spark, root)
    _write_shop(spark, root, TRANSACTIONS + [_tx("2020-03-11", C2, A[3], 0.09, 2)] * 3)
    run_features(spark, root, D, D, PARAMS)  # a rerun of D: replaces D, never duplicates
    assert _snapshot(spark, root) == before


@pytest.mark.slow
def test_backfill_equals_day_by_day(spark, tmp_path):
    """One job for three days equals three one-day jobs (a budget of one customer-day per job: one call computes
    and commits the range day by day, the chunking of long backfills)."""
    start = D - dt.timedelta(days=2)
    one, many = str(tmp_path / "one"), str(tmp_path / "many")
    _write_shop(spark, one)
    _write_shop(spark, many)
    run_features(spark, one, start, D, PARAMS)
    by_day = replace(PARAMS, max_customer_days=1)
    assert chunk_days(spark, lake.table_path(many, C.BRONZE_TRANSACTIONS), start, D, by_day) == 1
    summary = run_features(spark, many, start, D, by_day)
    a, b = _snapshot(spark, one), _snapshot(spark, many)
    assert a == b
    assert {r["feature_date"] for r in a["category_daily"]} == {start, start + dt.timedelta(days=1), D}
    assert summary.rows["customer_daily"] == len(a["customer_daily"])
    for root in (one, many):
        days = lake.read_table(spark, lake.table_path(root, C.FEATURES_COMPUTED_DAYS)).collect()
        assert sorted(r.feature_date for r in days) == [start, start + dt.timedelta(days=1), D]


def test_pooled_history_vector_is_the_normalised_mean(spark):
    tx = spark.createDataFrame(
        [_tx("2020-03-10", C1, A[1], 0.1, 1), _tx("2020-03-09", C1, A[1], 0.1, 1), _tx("2020-03-08", C1, A[2], 0.1, 1),
         _tx("2020-03-11", C1, A[3], 0.1, 1)],
        schemas.BRONZE_TRANSACTIONS,
    )
    stamp = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    later = dt.datetime(2020, 3, 12, tzinfo=dt.timezone.utc)  # a text changed after D: must not be used for D
    vectors = spark.createDataFrame(
        [(A[1], "h1", [1.0, 0.0], stamp), (A[2], "h2", [0.0, 1.0], stamp), (A[3], "h3", [1.0, 1.0], stamp),
         (A[2], "h2b", [-1.0, 0.0], later)],
        "article_id string, text_hash string, embedding array<float>, event_timestamp timestamp",
    )
    as_of = common.as_of_dates(spark, D, D)
    row = pooled_history_vectors(spark, tx, as_of, vectors, lookback_days=90).first()
    # 2 x [1, 0] + 1 x [0, 1] = [2, 1], normalised
    assert row["history_vector"] == pytest.approx([2 / 5**0.5, 1 / 5**0.5], abs=1e-6)
