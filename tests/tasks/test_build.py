"""Task-building transforms on tiny inline DataFrames (duplicates and nulls included)."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fashion_meta.tasks import build

pytestmark = pytest.mark.spark
D = dt.date(2020, 3, 10)


def _d(day: int) -> dt.date:
    return dt.date(2020, 3, day)


def test_purchases_with_group_dedupes_days_and_uses_yesterdays_group(spark):
    tx = spark.createDataFrame(
        [(_d(9), "c1", "a1"), (_d(9), "c1", "a1"),  # a same-day repeat is one interaction
         (_d(10), "c1", "a2"), (_d(10), "c2", "a1"), (_d(10), "c3", "a1"),
         (_d(10), "c1", "zz"),  # unknown article: no category, no task row
         (_d(1), "c1", "a1")],  # before the window
        "t_dat date, customer_id string, article_id string",
    )
    cats = spark.createDataFrame([("a1", "Top"), ("a2", "Shoe")], "article_id string, category string")
    day_groups = spark.createDataFrame(
        [("c1", _d(8), "25-34|online"), ("c1", _d(9), "25-34|store"), ("c2", _d(10), "<=24|online")],
        "customer_id string, feature_date date, user_group string",
    )
    ages = spark.createDataFrame([("c1", "25-34"), ("c2", "<=24"), ("c3", None)], "customer_id string, age_band string")
    out = build.purchases_with_group(tx, cats, day_groups, ages, _d(5), _d(10)).orderBy("t_dat", "customer_id", "article_id")
    expected = spark.createDataFrame(
        [
            ("c1", "a1", _d(9), "Top", "25-34|online"),   # group as of day 8
            ("c1", "a2", _d(10), "Shoe", "25-34|store"),  # group as of day 9
            ("c2", "a1", _d(10), "Top", "<=24|unknown"),  # c2's day-10 row is the future: not used
            ("c3", "a1", _d(10), "Top", "unknown|unknown"),  # null age band, no feature row
        ],
        "customer_id string, article_id string, t_dat date, category string, user_group string",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def _positives(spark, rows):
    return spark.createDataFrame(rows, "customer_id string, article_id string, t_dat date, category string, user_group string")


def test_split_positives_support_strictly_before_query_and_minimums(spark):
    g = "25-34|online"
    rows = [(f"c{i}", "a1", _d(1 + i // 2), "Top", g) for i in range(10)]  # 2 purchases/day on days 1..5
    rows += [("c1", "a1", _d(1), "Shoe", g), ("c2", "a1", _d(2), "Shoe", g)]  # too small a task
    rows += [(f"c{i}", "a1", _d(i), "Hat", g) for i in range(1, 5)]  # 4 purchases: support takes only half
    out = build.split_positives(_positives(spark, rows), support_size=3, query_size=4, min_support=2, min_query=2, seed=1)
    hats = sorted((r.split, r.t_dat) for r in out.where("category = 'Hat'").collect())
    assert hats == [("query", _d(3)), ("query", _d(4)), ("support", _d(1)), ("support", _d(2))]
    got = out.where("category = 'Top'").collect()
    assert {r.task_id for r in out.collect()} == {"Top|25-34|online", "Hat|25-34|online"}
    support = [r for r in got if r.split == "support"]
    query = [r for r in got if r.split == "query"]
    # support: the 3 earliest (days 1, 1, 2); query: strictly after day 2 -> days 3, 3, 4, 4 (4 = query_size)
    assert len(support) == 3 and len(query) == 4
    assert max(r.t_dat for r in support) < min(r.t_dat for r in query)
    assert sorted(r.t_dat for r in query) == [_d(3), _d(3), _d(4), _d(4)]


def test_roles_and_holdout_names(spark):
    tasks = spark.createDataFrame(
        [(f"{c}|{g}", c, g) for c in ("Top", "Shoe", "Hat") for g in ("a|online", "b|store")],
        "task_id string, category string, user_group string",
    )
    out = build.with_roles(tasks, ["Hat"], ["b|store"], validation_fraction=0.0, seed=3).collect()
    roles = {r.task_id: r.role for r in out}
    assert roles == {
        "Top|a|online": "train", "Shoe|a|online": "train", "Hat|a|online": "holdout",
        "Top|b|store": "holdout", "Shoe|b|store": "holdout", "Hat|b|store": "holdout",
    }
    assert build.pick_holdout(["Top", "Shoe", "Hat"], "", 1, "categories") == []
    assert build.pick_holdout(["Top", "Shoe", "Hat"], "Hat, Top", 1, "categories") == ["Hat", "Top"]
    two = build.pick_holdout(["Top", "Shoe", "Hat"], "2", 1, "categories")
    assert len(two) == 2 and two == build.pick_holdout(["Hat", "Shoe", "Top"], "2", 1, "categories")
    with pytest.raises(ValueError, match="unknown categories to hold out: Cap"):
        build.pick_holdout(["Top"], "Cap", 1, "categories")
    with pytest.raises(ValueError, match="only 1 have purchases"):
        build.pick_holdout(["Top"], "2", 1, "categories")


def _stock(spark):
    # in stock at the start of day 10 = article_daily rows of day 9; Top has 6 articles, Shoe 1
    rows = [(f"t{i}", "Top", _d(9)) for i in range(6)] + [("s0", "Shoe", _d(9)), ("t9", "Top", _d(10))]
    return spark.createDataFrame(rows, "article_id string, category string, feature_date date")


def test_in_stock_by_day_uses_previous_days_rows(spark):
    out = build.in_stock_by_day(_stock(spark), _d(10), _d(10)).orderBy("category")
    expected = spark.createDataFrame(
        [("Shoe", _d(10), ["s0"], 1), ("Top", _d(10), [f"t{i}" for i in range(6)], 6)],
        "category string, t_dat date, candidates array<string>, n int",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_negatives_never_bought_that_day_same_category_and_partition_independent(spark):
    cols = "task_id string, category string, user_group string, split string, customer_id string, article_id string, t_dat date, role string"
    positives = spark.createDataFrame(
        [("Top|g", "Top", "g", "support", "c1", "t0", _d(10), "train"),
         ("Top|g", "Top", "g", "support", "c1", "t1", _d(10), "train"),
         ("Shoe|g", "Shoe", "g", "query", "c2", "s0", _d(10), "train")],
        cols,
    )
    purchases = spark.createDataFrame(
        [(_d(10), "c1", "t0"), (_d(10), "c1", "t1"), (_d(10), "c1", "t2"), (_d(10), "c2", "s0")],
        "t_dat date, customer_id string, article_id string",
    )
    candidates = build.in_stock_by_day(_stock(spark), _d(10), _d(10))
    out = build.sample_negatives(positives, candidates, purchases, ratio=2, seed=7)
    got = out.collect()
    # c1 bought t0, t1, t2 on day 10: negatives come from t3..t5 only; Shoe's only article was bought -> none
    assert got and all(r.article_id in {"t3", "t4", "t5"} for r in got)
    assert all(r.customer_id == "c1" and r.category == "Top" for r in got)
    assert len({(r.customer_id, r.article_id) for r in got}) == len(got)  # no duplicate negative rows
    assert len(got) <= 4
    again = build.sample_negatives(positives.repartition(5), candidates.repartition(3), purchases.repartition(4), 2, 7)
    assert_df_equality(out.orderBy("article_id"), again.orderBy("article_id"))
    other_seed = {r.article_id for r in build.sample_negatives(positives, candidates, purchases, 1, 8).collect()}
    assert other_seed <= {"t3", "t4", "t5"}


def test_entity_rows_are_labelled_and_stamped_at_midnight(spark):
    cols = "task_id string, category string, user_group string, role string, split string, customer_id string, article_id string, t_dat date"
    pos = spark.createDataFrame([("T|g", "T", "g", "train", "support", "c1", "a1", _d(10))], cols)
    neg = spark.createDataFrame([("T|g", "T", "g", "train", "support", "c1", "a2", _d(10))], cols)
    out = build.entity_rows(pos, neg).orderBy("label")
    assert out.columns == list(build.ENTITY_COLUMNS)
    rows = out.select("article_id", "label", F.date_format("event_timestamp", "yyyy-MM-dd HH:mm:ss").alias("ts")).collect()
    assert [tuple(r) for r in rows] == [("a2", 0, "2020-03-10 00:00:00"), ("a1", 1, "2020-03-10 00:00:00")]


def test_holdout_units_pool_held_slices_without_minimum(spark):
    g1, g2 = "25-34|online", "55+|store"
    rows = [("c1", "a1", _d(1), "New", g1), ("c2", "a2", _d(2), "New", g2),  # held category: one unit
            ("c3", "a3", _d(3), "Top", g2), ("c4", "a3", _d(4), "Shoe", g2),  # held group: one unit
            ("c5", "a3", _d(5), "Top", g1)]  # warm: not a holdout row
    out = build.holdout_units(_positives(spark, rows), ["New"], [g2]).orderBy("t_dat").collect()
    assert [(r.task_id, r.category, r.user_group, r.split, r.role) for r in out] == [
        ("New|*", "New", g1, "support", "holdout"), ("New|*", "New", g2, "support", "holdout"),
        (f"*|{g2}", "Top", g2, "support", "holdout"), (f"*|{g2}", "Shoe", g2, "support", "holdout"),
    ]


def test_relabel_members_gives_members_their_held_group_and_sets_strays_aside(spark):
    held, other = "25-34|online", "55+|store"
    rows = [("m1", "a1", _d(1), "Top", "25-34|unknown"),  # member, truncated history: wrong day-before group
            ("m1", "a1", _d(1), "Top", "25-34|unknown"),  # duplicate row: stays a duplicate (no loss, no merge)
            ("m2", "a2", _d(2), "Shoe", held),  # member already labelled right
            ("c3", "a3", _d(3), "Top", held),  # non-member whose day-before group is the held one: set aside
            ("c4", "a4", _d(4), "New", held),  # ... unless in a held-out category (its unit pools every group)
            ("c5", "a5", _d(5), "Top", other),  # warm: unchanged
            ("c6", "a6", _d(6), "Top", None)]  # a null group stays null (not a member)
    members = spark.createDataFrame([("m1", held), ("m2", held), ("m9", held)], "customer_id string, user_group string")
    out, excluded, groups = build.relabel_members(_positives(spark, rows), members, ["New"])
    assert groups == [held]
    expected = _positives(spark, [("m1", "a1", _d(1), "Top", held), ("m1", "a1", _d(1), "Top", held),
                                  ("m2", "a2", _d(2), "Shoe", held), ("c4", "a4", _d(4), "New", held),
                                  ("c5", "a5", _d(5), "Top", other), ("c6", "a6", _d(6), "Top", None)])
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
    assert excluded == 1
    units = build.holdout_units(out, ["New"], [held]).collect()
    assert sorted((r.task_id, r.customer_id) for r in units) == [
        ("*|" + held, "m1"), ("*|" + held, "m1"), ("*|" + held, "m2"), ("New|*", "c4")]
    with pytest.raises(ValueError, match="user_group"):
        build.relabel_members(_positives(spark, rows), members.select("customer_id"))


def test_new_groups_by_history_and_recent_first_purchase(spark):
    rows = [(f"c{i}", "a1", _d(1 + i % 5), "Top", "25-34|online") for i in range(10)]  # old and large: warm
    rows += [("c1", "a1", _d(2), "Top", "55+|store")]  # old but tiny: new by history
    rows += [(f"c{i}", "a2", _d(9), "Shoe", "<=24|store") for i in range(6)]  # large but first seen 1 day ago: new
    rows += [("c1", "a2", _d(9), "Shoe", "<=24|store")]  # a duplicate row counts like any purchase day
    out = build.new_groups(_positives(spark, rows), D, _d(1), new_days=3, min_history=5)
    got = {r.user_group: (r.purchases, r.first_day) for r in out.collect()}
    assert got == {"55+|store": (1, _d(2)), "<=24|store": (7, _d(9))}
    # a window shorter than new_days cannot tell "recent": only the history rule applies
    short = build.new_groups(_positives(spark, rows), D, _d(9), new_days=3, min_history=5)
    assert {r.user_group for r in short.collect()} == {"55+|store"}


def test_serving_units_take_the_latest_purchases_of_new_slices(spark):
    g, h = "25-34|online", "55+|store"
    rows = [(f"c{i}", "a1", _d(i), "Top", g) for i in range(1, 8)]  # new category, 7 purchases
    rows += [("c1", "a2", _d(5), "Shoe", h), ("c2", "a2", _d(6), "Shoe", h), ("c9", "a2", _d(6), "Top", h)]
    rows += [("c3", "a3", _d(6), "Hat", g)]  # neither new
    out = build.serving_units(_positives(spark, rows), ["Top"], [h], max_support=3, seed=1)
    got = sorted((r.task_id, r.customer_id, r.t_dat, r.category, r.user_group) for r in out.collect())
    assert got == sorted([
        ("*|55+|store", "c1", _d(5), "Shoe", h), ("*|55+|store", "c2", _d(6), "Shoe", h),
        ("*|55+|store", "c9", _d(6), "Top", h),  # a new category bought by a new group is in both units
        ("Top|*", "c7", _d(7), "Top", g), ("Top|*", "c6", _d(6), "Top", g), ("Top|*", "c9", _d(6), "Top", h),
    ])  # Top: the latest 3 of its 8 purchases
    assert {(r.role, r.split) for r in out.collect()} == {("serve", "support")}
    # with max_support 2 the tie on day 6 (c6, c9) is broken by a hash of the row keys: the same on any partitioning
    two = build.serving_units(_positives(spark, rows), ["Top"], [], max_support=2, seed=1)
    again = build.serving_units(_positives(spark, rows).repartition(3), ["Top"], [], max_support=2, seed=1)
    assert two.count() == 2 and sorted(two.collect()) == sorted(again.collect())
