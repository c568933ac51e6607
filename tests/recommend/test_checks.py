"""Output checks on tiny hand-built recommendation sets: the valid set passes, each planted defect is named."""

from __future__ import annotations

import datetime as dt

import pytest

from fashion_meta import schemas
from fashion_meta.recommend.checks import CHECKS, OutputCheckError, check_recommendations

pytestmark = pytest.mark.spark
D = dt.date(2020, 3, 10)
TOP_N = 3
LONG_ID = "ab12cd34" + "0" * 56  # a real-looking 64-character customer id

# Dress: 4 articles, products P1 (d1, d2), P2 (d3), P3 (d4); Shoe: 3 articles; Socks (repeat): 2 articles.
ARTICLES = [
    ("0100000001", "Dress", 1), ("0100000002", "Dress", 1), ("0100000003", "Dress", 2), ("0100000004", "Dress", 3),
    ("0100000001", "Dress", 1),  # duplicate snapshot row: counted once
    ("0200000001", "Shoe", 4), ("0200000002", "Shoe", 5), ("0200000003", "Shoe", None),  # null product: own product
    ("0200000003", "Shoe", None),  # duplicate again
    ("0300000001", "Socks", 6), ("0300000002", "Socks", 7),
    (None, "Shoe", 9), ("0900000009", None, 9),  # null keys: ignored
]
CUSTOMERS = ["c1", "c2", LONG_ID, "c1", None]  # duplicate and null ids
BOUGHT = [("c1", "0200000001"), ("c1", "0200000001"),  # duplicate pair must not count twice
          ("c2", "0300000001"),  # repeat category: not excluded
          (None, "0200000002"), ("c2", None)]
DRESS = ["0100000001", "0100000003", "0100000004"]  # one per product: passes any cap
SHOE = ["0200000001", "0200000002", "0200000003"]
SOCKS = ["0300000001", "0300000002"]  # only 2 articles exist: a short list is correct


def _row(category, customer, article_ids, scores=None, mode="warm", version="m-1", ranks=None):
    scores = scores if scores is not None else [1.0 - 0.1 * i for i in range(len(article_ids))]
    ranks = ranks if ranks is not None else list(range(1, len(article_ids) + 1))
    items = [(r, a, s) for r, a, s in zip(ranks, article_ids, scores)]
    return (D, category, customer, "25-34|online", items, mode, version)


def _valid_rows():
    rows = {}
    for customer in ("c1", "c2", LONG_ID):
        rows[("Dress", customer)] = _row("Dress", customer, DRESS)
        rows[("Shoe", customer)] = _row("Shoe", customer, SHOE)
        rows[("Socks", customer)] = _row("Socks", customer, SOCKS)
    rows[("Shoe", "c1")] = _row("Shoe", "c1", SHOE[1:])  # bought 0200000001: 2 eligible left, 2 items is right
    return rows


@pytest.fixture(scope="module")
def frames(spark):
    articles = spark.createDataFrame(ARTICLES, "article_id string, category string, product_code int")
    customers = spark.createDataFrame([(c,) for c in CUSTOMERS], "customer_id string")
    bought = spark.createDataFrame(BOUGHT, "customer_id string, article_id string")
    return articles, customers, bought


def _check(spark, frames, rows, *, bought=None, top_n=TOP_N, repeat=("Socks",), cap=None):
    articles, customers, default_bought = frames
    recs = spark.createDataFrame(list(rows), schemas.RECOMMENDATIONS)
    return check_recommendations(recs, articles, customers, default_bought if bought is None else bought,
                                 top_n=top_n, repeat_categories=repeat, max_per_product=cap)


def _replace(category, customer, row):
    rows = _valid_rows()
    rows[(category, customer)] = row
    return rows.values()


def test_valid_set_passes(spark, frames):
    report = _check(spark, frames, _valid_rows().values(), cap=1)
    assert report.passed and report.failures == {}
    assert report.rows == 9
    report.raise_if_failed()  # no error


def test_planted_duplicate_article_is_caught(spark, frames):
    planted = _row("Dress", "c2", ["0100000001", "0100000001", "0100000003"])
    report = _check(spark, frames, _replace("Dress", "c2", planted))
    assert set(report.failures) == {"duplicate_items"}
    failure = report.failures["duplicate_items"]
    assert failure["count"] == 1
    assert failure["examples"] == [
        {"category": "Dress", "customer_id": "c2", "detail": "repeated article(s) 0100000001"}
    ]


def test_missing_customer_row_fails_coverage(spark, frames):
    rows = _valid_rows()
    del rows[("Shoe", "c2")]
    report = _check(spark, frames, rows.values())
    assert set(report.failures) == {"coverage"}
    assert report.failures["coverage"]["count"] == 1
    assert report.failures["coverage"]["examples"][0]["category"] == "Shoe"
    assert report.failures["coverage"]["examples"][0]["customer_id"] == "c2"


def test_extra_customer_and_category_fail_coverage(spark, frames):
    rows = list(_valid_rows().values()) + [_row("Dress", "c9", DRESS), _row("Hat", "c1", ["0100000001"])]
    report = _check(spark, frames, rows)
    assert "coverage" in report.failures
    assert report.failures["coverage"]["count"] == 2
    details = {e["detail"] for e in report.failures["coverage"]["examples"]}
    assert details == {"extra row: customer is not active", "extra row: category has no in-stock articles"}


def test_duplicate_key_row_fails_only_duplicate_keys(spark, frames):
    rows = list(_valid_rows().values()) + [_row("Dress", "c1", DRESS)]
    report = _check(spark, frames, rows, cap=1)  # the copy must not double count the product cap either
    assert set(report.failures) == {"duplicate_keys"}
    assert report.failures["duplicate_keys"]["count"] == 1
    assert report.failures["duplicate_keys"]["examples"][0]["detail"] == "2 rows for this key"


def test_too_short_list_fails_when_more_eligible(spark, frames):
    report = _check(spark, frames, _replace("Shoe", "c2", _row("Shoe", "c2", SHOE[:2])))
    assert set(report.failures) == {"list_length"}
    assert report.failures["list_length"]["examples"][0]["detail"] == "2 items, 3 eligible"


def test_duplicate_bought_pair_does_not_shrink_eligible(spark, frames):
    # c1 bought 0200000001 (listed twice): 2 Shoe articles stay eligible, so a 1-item list is too short.
    report = _check(spark, frames, _replace("Shoe", "c1", _row("Shoe", "c1", SHOE[1:2])))
    assert set(report.failures) == {"list_length"}
    assert report.failures["list_length"]["examples"][0]["detail"] == "1 items, 2 eligible"


def test_legitimately_short_list_passes_and_depends_on_purchases(spark, frames):
    rows = _valid_rows()  # Shoe has 3 articles, c1 bought 1 -> 2 items
    assert _check(spark, frames, rows.values()).passed
    no_purchases = spark.createDataFrame([], "customer_id string, article_id string")
    report = _check(spark, frames, rows.values(), bought=no_purchases)
    assert set(report.failures) == {"list_length"}
    assert report.failures["list_length"]["count"] == 1


def test_short_list_limited_by_product_cap_passes(spark, frames):
    # Dress under cap 1 has 3 products; c2 bought 0100000003 (the only P2 article) -> capacity 2 (P1, P3).
    bought = spark.createDataFrame([("c2", "0100000003"), ("c1", "0200000001")],
                                   "customer_id string, article_id string")
    rows = _replace("Dress", "c2", _row("Dress", "c2", ["0100000001", "0100000004"]))
    assert _check(spark, frames, rows, bought=bought, cap=1).passed
    report = _check(spark, frames, rows, bought=bought, cap=2)  # under cap 2, P1 gives 2 -> 3 eligible
    assert set(report.failures) == {"list_length"}


def test_too_long_list_fails(spark, frames):
    rows = _replace("Dress", "c1", _row("Dress", "c1", DRESS + ["0100000002"]))
    report = _check(spark, frames, rows)
    assert set(report.failures) == {"list_length"}
    assert report.failures["list_length"]["examples"][0]["detail"] == "4 items > top_n 3"


def test_article_from_another_category_fails_membership(spark, frames):
    rows = _replace("Dress", LONG_ID, _row("Dress", LONG_ID, ["0100000001", "0200000002", "0100000003"]))
    report = _check(spark, frames, rows)
    assert set(report.failures) == {"category_membership"}
    assert "0200000002" in report.failures["category_membership"]["examples"][0]["detail"]


def test_bought_article_fails_exclusions_unless_repeat_category(spark, frames):
    rows = _valid_rows().values()  # c2's Socks list holds 0300000001, which c2 bought
    assert _check(spark, frames, rows, repeat=("Socks",)).passed
    report = _check(spark, frames, rows, repeat=())
    assert set(report.failures) == {"exclusions"}
    assert report.failures["exclusions"]["examples"] == [
        {"category": "Socks", "customer_id": "c2", "detail": "already bought article 0300000001"}
    ]


def test_unsorted_scores_fail_ordering(spark, frames):
    rows = _replace("Dress", "c1", _row("Dress", "c1", DRESS, scores=[0.5, 0.9, 0.1]))
    report = _check(spark, frames, rows)
    assert set(report.failures) == {"ordering"}
    assert report.failures["ordering"]["examples"][0]["detail"] == "entry 2: rank 2, score 0.9"


@pytest.mark.parametrize("scores, ranks", [
    ([0.9, float("nan"), 0.1], None),
    ([0.9, None, 0.1], None),
    ([0.9, 0.5, None], None),  # a trailing null sorts last: the screen's last-score test catches it
    ([float("nan"), 0.5, 0.1], None),  # a leading NaN sorts first: caught by the first-score test
    ([float("nan"), float("nan"), float("nan")], None),
    ([0.9, 0.5, 0.1], [1, 3, 2]),
    ([0.9, 0.5, 0.1], [1, 2, None]),
    ([0.9, 0.9, 0.9], [0, 1, 2]),
])
def test_bad_scores_or_ranks_fail_ordering(spark, frames, scores, ranks):
    rows = _replace("Dress", "c1", _row("Dress", "c1", DRESS, scores=scores, ranks=ranks))
    report = _check(spark, frames, rows)
    assert set(report.failures) == {"ordering"}


def test_equal_scores_are_ordered(spark, frames):
    rows = _replace("Dress", "c1", _row("Dress", "c1", DRESS, scores=[0.5, 0.5, 0.5]))
    assert _check(spark, frames, rows).passed


def test_product_cap_violation(spark, frames):
    rows = _replace("Dress", "c1", _row("Dress", "c1", ["0100000001", "0100000002", "0100000003"]))
    assert _check(spark, frames, rows).passed  # no cap: fine
    report = _check(spark, frames, rows, cap=1)
    assert set(report.failures) == {"product_cap"}
    assert report.failures["product_cap"]["examples"][0]["detail"] == "product 1 2 times > 1"


def test_bad_serving_mode_and_model_version(spark, frames):
    rows = _valid_rows()
    rows[("Dress", "c1")] = _row("Dress", "c1", DRESS, mode="cold")
    rows[("Shoe", "c2")] = _row("Shoe", "c2", SHOE, version=" ")
    report = _check(spark, frames, rows.values())
    assert set(report.failures) == {"serving_mode", "model_version"}
    assert report.failures["serving_mode"]["examples"][0]["detail"] == "serving_mode cold"


def test_raise_if_failed_names_every_check_on_one_line(spark, frames):
    rows = _valid_rows()
    rows[("Dress", LONG_ID)] = _row("Dress", LONG_ID, ["0100000001", "0100000001", "0100000003"])
    rows[("Shoe", "c2")] = _row("Shoe", "c2", SHOE, scores=[0.1, 0.2, 0.3])
    report = _check(spark, frames, rows.values())
    assert not report.passed
    assert list(report.failures) == [c for c in CHECKS if c in report.failures]
    with pytest.raises(OutputCheckError) as info:
        report.raise_if_failed()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("output checks failed: duplicate_items (1 row, e.g. category 'Dress', customer "
                              "'ab12cd34…': repeated article(s) 0100000001)")
    assert "ordering (1 row, e.g. category 'Shoe', customer 'c2'" in message


def test_missing_input_column_is_named(spark, frames):
    articles, customers, bought = frames
    recs = spark.createDataFrame(list(_valid_rows().values()), schemas.RECOMMENDATIONS).drop("serving_mode")
    with pytest.raises(ValueError, match="serving_mode"):
        check_recommendations(recs, articles, customers, bought, top_n=TOP_N)
