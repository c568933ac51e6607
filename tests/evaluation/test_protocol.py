"""The evaluation protocol's truncation and query truth on tiny inline DataFrames (duplicates and nulls included)."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from fashion_meta.evaluation.protocol import query_truth, truncate_for_holdout

pytestmark = pytest.mark.spark
CUT = dt.date(2020, 3, 10)
SCHEMA = "t_dat date, customer_id string, article_id string, price double, sales_channel_id int"


def _d(day: int) -> dt.date:
    return dt.date(2020, 3, day)


def _tx(spark, rows):
    return spark.createDataFrame([(d, c, a, 0.01, 2) for d, c, a in rows], SCHEMA)


def _cats(spark):
    return spark.createDataFrame([("n1", "New"), ("n2", "New"), ("w1", "Warm"), ("x1", None)],
                                 "article_id string, category string")


def test_truncation_keeps_first_k_of_held_out_categories_and_everything_else(spark):
    tx = _tx(spark, [
        (_d(1), "c1", "n1"), (_d(1), "c1", "n1"),  # a same-day repeat: two interactions
        (_d(2), "c2", "n2"), (_d(3), "c3", "n1"),
        (_d(2), "c1", "w1"), (_d(9), "c2", "w1"), (_d(4), "c9", "x1"),  # warm and null-category rows stay
        (_d(11), "c1", "w1"), (_d(12), "c2", "n1"),  # after the cutoff: removed
    ])
    out = truncate_for_holdout(tx, _cats(spark), CUT, k=3, seed=1, holdout_categories=["New"])
    expected = _tx(spark, [(_d(1), "c1", "n1"), (_d(1), "c1", "n1"), (_d(2), "c2", "n2"),
                           (_d(2), "c1", "w1"), (_d(9), "c2", "w1"), (_d(4), "c9", "x1")])
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
    k0 = truncate_for_holdout(tx, _cats(spark), CUT, k=0, seed=1, holdout_categories=["New"])
    assert {r.article_id for r in k0.collect()} == {"w1", "x1"}
    with pytest.raises(ValueError, match="K must be >= 0"):
        truncate_for_holdout(tx, _cats(spark), CUT, k=-1, seed=1, holdout_categories=["New"])


def test_truncation_of_held_out_groups_pools_categories_and_is_partition_independent(spark):
    tx = _tx(spark, [(_d(day), "g1", "w1") for day in (2, 3, 4)] + [(_d(4), "g2", "n1"), (_d(5), "g1", "n1"),
                                                                    (_d(6), "c5", "w1")]
             + [(_d(1), "c5", "w1"), (_d(1), "c6", "x1")])  # others' earlier purchases do not use up the group's K
    held = spark.createDataFrame([("g1", "A"), ("g2", "A")], "customer_id string, user_group string")
    out = truncate_for_holdout(tx, _cats(spark), CUT, k=2, seed=1, holdout_categories=[], holdout_customers=held)
    expected = _tx(spark, [(_d(2), "g1", "w1"), (_d(3), "g1", "w1"), (_d(6), "c5", "w1"), (_d(1), "c5", "w1"),
                           (_d(1), "c6", "x1")])
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
    again = truncate_for_holdout(tx.repartition(4), _cats(spark), CUT, k=2, seed=1, holdout_categories=[],
                                 holdout_customers=held)
    assert_df_equality(out, again, ignore_row_order=True, ignore_nullable=True)
    # with their groups, each held-out group keeps its own first K (B pools g2 and g3 over categories)
    named = spark.createDataFrame([("g1", "A"), ("g2", "B"), ("g3", "B")], "customer_id string, user_group string")
    tx2 = tx.unionByName(_tx(spark, [(_d(1), "g3", "w1"), (_d(7), "g3", "w1"), (_d(8), "g3", "x1")]))
    per_group = truncate_for_holdout(tx2, _cats(spark), CUT, k=2, seed=1, holdout_categories=[],
                                     holdout_customers=named)
    expected = _tx(spark, [(_d(2), "g1", "w1"), (_d(3), "g1", "w1"), (_d(1), "g3", "w1"), (_d(4), "g2", "n1"),
                           (_d(6), "c5", "w1"), (_d(1), "c5", "w1"), (_d(1), "c6", "x1")])
    assert_df_equality(per_group, expected, ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(ValueError, match="user_group"):
        truncate_for_holdout(tx, _cats(spark), CUT, k=2, seed=1, holdout_categories=[],
                             holdout_customers=held.select("customer_id"))


def test_query_truth_is_the_purchase_set_after_the_cutoff(spark):
    tx = _tx(spark, [(_d(10), "c1", "n1"), (_d(11), "c1", "n2"), (_d(11), "c1", "n2"), (_d(12), "c1", "n1"),
                     (_d(17), "c2", "w1"), (_d(18), "c2", "w1"), (_d(11), "c3", "zz")])
    out = query_truth(tx, _cats(spark), CUT, query_days=7)
    expected = spark.createDataFrame([("c1", "New", ["n1", "n2"]), ("c2", "Warm", ["w1"])],
                                     "customer_id string, category string, truth array<string>")
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
