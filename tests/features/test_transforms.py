"""Single transforms on tiny inline DataFrames (nulls and duplicates included), compared with chispa."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from fashion_meta.features import common
from fashion_meta.features.category import daily_category_purchases
from fashion_meta.features.customer import customer_windows, daily_customer_activity, with_user_group

pytestmark = pytest.mark.spark
D = dt.date(2020, 3, 10)


def _d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def test_daily_customer_activity_counts_duplicates_and_keeps_unknown_articles(spark):
    tx = spark.createDataFrame(
        [(_d("2020-03-10"), "c1", "a1", 0.02, 2), (_d("2020-03-10"), "c1", "a1", 0.02, 2),
         (_d("2020-03-10"), "c1", "zz", 0.01, 1)],
        "t_dat date, customer_id string, article_id string, price double, sales_channel_id int",
    )
    cats = spark.createDataFrame([("a1", "Top"), ("a2", None)], "article_id string, category string")
    out = daily_customer_activity(tx, cats).orderBy("category")
    expected = spark.createDataFrame(
        [("c1", _d("2020-03-10"), None, 1, 0, 0.01), ("c1", _d("2020-03-10"), "Top", 2, 2, 0.04)],
        "customer_id string, t_dat date, category string, n long, n_online long, price_sum double",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_customer_windows_and_user_group(spark):
    activity = spark.createDataFrame(
        [
            ("c1", _d("2020-03-10"), "Top", 2, 2, 0.04),  # in 7, 28, 90 days
            ("c1", _d("2020-02-20"), "Dress", 1, 0, 0.03),  # in 28 and 90 days
            ("c2", _d("2020-01-15"), None, 1, 0, 0.05),  # in 90 days only; unknown category
            ("c3", _d("2019-11-01"), "Top", 1, 1, 0.01),  # outside 90 days: not active
            ("c4", _d("2020-03-11"), "Top", 1, 1, 0.01),  # after D: ignored
        ],
        "customer_id string, t_dat date, category string, n long, n_online long, price_sum double",
    )
    customers = spark.createDataFrame([("c1", 30), ("c2", None), ("c2x", 40)], "customer_id string, age int")
    as_of = common.as_of_dates(spark, D, D)
    out = with_user_group(customer_windows(activity, as_of, 90, 90), customers).orderBy("customer_id")
    expected = spark.createDataFrame(
        [
            ("c1", D, "25-34|online", "25-34", "online", 30, 2, 3, 3, 2 / 3, 0, 2, 0.07 / 3),
            ("c2", D, "unknown|store", "unknown", "store", None, 0, 0, 1, 0.0, 55, 0, 0.05),
        ],
        "customer_id string, as_of_date date, user_group string, age_band string, channel string, age int, "
        "purchases_7d long, purchases_28d long, purchases_90d long, online_share_90d double, "
        "days_since_last_purchase int, distinct_categories_90d long, avg_price_90d double",
    )
    assert_approx_df_equality(out, expected, 1e-9, ignore_nullable=True)


def test_daily_category_purchases_drops_unknown_articles(spark):
    tx = spark.createDataFrame(
        [(_d("2020-03-10"), "c1", "a1", 0.02, 2), (_d("2020-03-10"), "c1", "a1", 0.02, 2),
         (_d("2020-03-09"), "c2", "a2", 0.02, 1), (_d("2020-03-09"), "c2", "nope", 0.02, 1)],
        "t_dat date, customer_id string, article_id string, price double, sales_channel_id int",
    )
    cats = spark.createDataFrame([("a1", "Top"), ("a2", "Dress")], "article_id string, category string")
    out = daily_category_purchases(tx, cats).orderBy("category")
    expected = spark.createDataFrame(
        [("Dress", _d("2020-03-09"), 1), ("Top", _d("2020-03-10"), 2)], "category string, t_dat date, n long"
    )
    assert_df_equality(out, expected, ignore_nullable=True)
