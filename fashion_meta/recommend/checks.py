"""Output checks on a run date's recommendation lists, run before they are published.

Every check yields the offending rows as a small DataFrame (category, customer_id, detail, weight); the union is
computed once inside Spark and only its per-check counts and at most three examples per failed check reach the
driver. Inputs are cleaned the same way everywhere: null keys dropped, duplicate articles, customers and bought
pairs counted once, and an article without a product_code is its own product (as in ``job._product_codes``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta.errors import FashionMetaError
from fashion_meta.schemas import require_columns

log = logging.getLogger(__name__)

CHECKS = (
    "coverage",
    "duplicate_keys",
    "duplicate_items",
    "list_length",
    "category_membership",
    "exclusions",
    "product_cap",
    "ordering",
    "serving_mode",
    "model_version",
)
MAX_EXAMPLES = 3
REC_COLUMNS = ("category", "customer_id", "items", "serving_mode", "model_version")
_VIOLATION_COLUMNS = ("check", "category", "customer_id", "detail", "weight")
_ROW_ID = "_row_id"


class OutputCheckError(FashionMetaError):
    """The recommendation lists failed an output check: nothing is published."""


@dataclass
class CheckReport:
    """Result of :func:`check_recommendations`: failed checks with their counts and a few examples."""

    passed: bool
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: int = 0

    def message(self) -> str:
        """One line naming every failed check, its count and one example."""
        parts = [f"{name} ({_describe(name, failure)})" for name, failure in self.failures.items()]
        return "output checks failed: " + ", ".join(parts)

    def raise_if_failed(self) -> None:
        """Raise :class:`OutputCheckError` (one line) when any check failed."""
        if not self.passed:
            raise OutputCheckError(self.message())


def check_recommendations(
    recs: DataFrame,
    articles: DataFrame,
    customers: DataFrame,
    bought: DataFrame,
    *,
    top_n: int,
    repeat_categories: Sequence[str] = (),
    max_per_product: int | None = None,
) -> CheckReport:
    """Run every output check on one run date's ``recs`` against its in-stock articles, customers and purchases."""
    require_columns(recs, REC_COLUMNS, "recs")
    require_columns(articles, ("article_id", "category"), "articles")
    require_columns(customers, ("customer_id",), "customers")
    require_columns(bought, ("customer_id", "article_id"), "bought")
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    if max_per_product is not None and max_per_product < 1:
        raise ValueError(f"max_per_product must be None or at least 1, got {max_per_product}")

    tagged = recs.select(*REC_COLUMNS).withColumn(_ROW_ID, F.monotonically_increasing_id())
    tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)  # row ids must stay fixed across the checks' branches
    try:
        candidates = candidate_articles(articles)
        inputs = _Inputs(
            recs=tagged,
            candidates=candidates,
            customers=active_customers(customers),
            bought=excluded_pairs(bought, candidates, repeat_categories),
            repeat_categories=tuple(repeat_categories),
        )
        return _run(inputs, top_n, max_per_product)
    finally:
        tagged.unpersist()


# ------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class _Inputs:
    recs: DataFrame  # REC_COLUMNS + _row_id
    candidates: DataFrame  # category, article_id, product_key (one row per category x article)
    customers: DataFrame  # customer_id (distinct)
    bought: DataFrame  # customer_id, article_id, category, product_key: excluded purchases
    repeat_categories: tuple[str, ...]


def candidate_articles(articles: DataFrame) -> DataFrame:
    """(category, article_id, product_key) of the in-stock articles, one row each; null product -> own product."""
    code = (
        F.col("product_code").cast("string") if "product_code" in articles.columns else F.lit(None).cast("string")
    )
    return (
        articles.where(F.col("article_id").isNotNull() & F.col("category").isNotNull())
        .select("category", "article_id", F.coalesce(code, F.concat(F.lit("article:"), "article_id")).alias("pk"))
        .groupBy("category", "article_id")
        .agg(F.min("pk").alias("product_key"))
        .select("category", "article_id", "product_key")
    )


def active_customers(customers: DataFrame) -> DataFrame:
    """Distinct non-null customer ids."""
    return customers.where(F.col("customer_id").isNotNull()).select("customer_id").distinct()


def excluded_pairs(bought: DataFrame, candidates: DataFrame, repeat_categories: Sequence[str]) -> DataFrame:
    """(customer_id, article_id, category, product_key): distinct purchases of candidates of non-repeat categories."""
    pairs = bought.where(F.col("customer_id").isNotNull() & F.col("article_id").isNotNull())
    return (
        pairs.select("customer_id", "article_id").distinct()
        .join(candidates, on="article_id", how="inner")
        .where(~F.col("category").isin(list(repeat_categories)))
        .select("customer_id", "article_id", "category", "product_key")
    )


# --------------------------------------------------------------------------------------------- runner
def _run(inputs: _Inputs, top_n: int, max_per_product: int | None) -> CheckReport:
    """Union every check's violations, count them per check and fetch examples of the failed ones."""
    checks: list[tuple[str, DataFrame]] = [  # lazy plans: nothing runs until the counts are asked for
        ("coverage", _missing_pairs(inputs)),
        ("coverage", _extra_rows(inputs)),
        ("duplicate_keys", _duplicate_keys(inputs.recs)),
        ("duplicate_items", _duplicate_items(inputs.recs)),
        ("list_length", _too_long(inputs.recs, top_n)),
        ("list_length", _too_short(inputs, top_n, max_per_product)),
        ("category_membership", _not_in_category(inputs)),
        ("exclusions", _bought_items(inputs)),
        ("ordering", _bad_order(inputs.recs)),
        ("serving_mode", _bad_serving_mode(inputs.recs)),
        ("model_version", _bad_model_version(inputs.recs)),
    ]
    if max_per_product is not None:
        checks.append(("product_cap", _over_cap(inputs, max_per_product)))
    parts = [found.withColumn("check", F.lit(name)).select(*_VIOLATION_COLUMNS) for name, found in checks]
    violations = parts[0]
    for part in parts[1:]:
        violations = violations.unionByName(part)
    violations = violations.persist(StorageLevel.MEMORY_AND_DISK)  # small unless the lists are badly broken
    try:
        rows = inputs.recs.count()
        totals = violations.groupBy("check").agg(F.sum("weight").alias("n")).collect()
        counts = {r["check"]: int(r["n"]) for r in totals}
        failures = {name: {"count": counts[name], "examples": _examples(violations, name)}
                    for name in CHECKS if counts.get(name, 0) > 0}
    finally:
        violations.unpersist()
    report = CheckReport(passed=not failures, failures=failures, rows=rows)
    log.info("output checks on %d rows: %s", rows, "passed" if report.passed else report.message())
    return report


def _examples(violations: DataFrame, name: str) -> list[dict[str, Any]]:
    """At most MAX_EXAMPLES offending rows of one check, in a stable order."""
    rows = (
        violations.where(F.col("check") == name)
        .orderBy("category", "customer_id", "detail")
        .limit(MAX_EXAMPLES)
        .collect()
    )
    return [{"category": r["category"], "customer_id": r["customer_id"], "detail": r["detail"]} for r in rows]


# ------------------------------------------------------------------------------------- the checks
def _violations(df: DataFrame, detail: Column, weight: Column | None = None) -> DataFrame:
    """The violation columns of already filtered rows."""
    return df.select(
        "category", "customer_id", detail.alias("detail"),
        (weight if weight is not None else F.lit(1)).cast("long").alias("weight"),
    )


def _exploded(recs: DataFrame) -> DataFrame:
    """One row per list entry: _row_id, category, customer_id, pos (0-based), article_id."""
    return recs.select(
        _ROW_ID, "category", "customer_id",
        F.posexplode("items").alias("pos", "item"),
    ).select(_ROW_ID, "category", "customer_id", "pos", F.col("item.article_id").alias("article_id"))


def _size(items: str = "items") -> Column:
    """List length; a null list counts as empty."""
    return F.coalesce(F.size(items), F.lit(0))


def _missing_pairs(inputs: _Inputs) -> DataFrame:
    """Active customers lacking a row for some in-stock category (one violation per customer, weight = missing)."""
    all_categories = inputs.candidates.agg(F.array_sort(F.collect_set("category")).alias("all_categories"))
    present = (
        inputs.recs.select("customer_id", "category")
        .join(inputs.candidates.select("category").distinct(), on="category", how="left_semi")
        .groupBy("customer_id")
        .agg(F.collect_set("category").alias("present"))
    )
    missing = F.array_except("all_categories", F.coalesce("present", F.array().cast("array<string>")))
    rows = (
        inputs.customers.join(present, on="customer_id", how="left")
        .crossJoin(F.broadcast(all_categories))
        .select("customer_id", missing.alias("missing"))
        .where(F.size("missing") > 0)
        .withColumn("category", F.element_at("missing", 1))
    )
    return _violations(rows, F.format_string("missing row (%d categories missing)", F.size("missing")),
                       F.size("missing"))


def _extra_rows(inputs: _Inputs) -> DataFrame:
    """Rows of customers who are not active or of categories without in-stock articles."""
    categories = inputs.candidates.select("category").distinct().withColumn("known_category", F.lit(True))
    customers = inputs.customers.withColumn("known_customer", F.lit(True))
    rows = (
        inputs.recs.select("category", "customer_id")
        .join(F.broadcast(categories), on="category", how="left")
        .join(customers, on="customer_id", how="left")
        .where(F.col("known_category").isNull() | F.col("known_customer").isNull())
    )
    detail = (F.when(F.col("known_category").isNull(), F.lit("extra row: category has no in-stock articles"))
              .otherwise(F.lit("extra row: customer is not active")))
    return _violations(rows, detail)


def _duplicate_keys(recs: DataFrame) -> DataFrame:
    """(category, customer_id) keys with more than one row (one violation per key)."""
    rows = recs.groupBy("category", "customer_id").agg(F.count(F.lit(1)).alias("n")).where(F.col("n") > 1)
    return _violations(rows, F.format_string("%d rows for this key", F.col("n")))


def _duplicate_items(recs: DataFrame) -> DataFrame:
    """Rows whose list holds an article more than once."""
    ids = F.col("items.article_id")
    repeated = F.array_distinct(F.filter(ids, lambda x: F.size(F.filter(ids, lambda y: y == x)) > 1))
    rows = recs.where(F.size(F.array_distinct(ids)) < F.size(ids))
    return _violations(rows, F.concat(F.lit("repeated article(s) "), F.array_join(repeated, " ", "null")))


def _too_long(recs: DataFrame, top_n: int) -> DataFrame:
    """Rows with more than top_n entries."""
    rows = recs.where(_size() > top_n)
    return _violations(rows, F.format_string(f"%d items > top_n {top_n}", _size()))


def _too_short(inputs: _Inputs, top_n: int, max_per_product: int | None) -> DataFrame:
    """Rows shorter than top_n although more eligible articles remain.

    Eligible capacity = sum over products of min(cap, in-stock articles of the product not bought). Without a cap,
    a cap of top_n gives the same min(top_n, capacity) and keeps one formula. It is computed only for short rows
    and from purchases, never from customers x articles: capacity = category base - what purchases take away.
    """
    cap = min(max_per_product, top_n) if max_per_product is not None else top_n
    short = inputs.recs.where(_size() < top_n).select(_ROW_ID, "category", "customer_id", _size().alias("n"))
    products = inputs.candidates.groupBy("category", "product_key").agg(F.count(F.lit(1)).alias("n_p"))
    base = products.groupBy("category").agg(F.sum(F.least("n_p", F.lit(cap))).alias("base"))
    taken = (
        inputs.bought.join(short.select("customer_id", "category").distinct(), on=["customer_id", "category"],
                           how="left_semi")
        .groupBy("customer_id", "category", "product_key").agg(F.count(F.lit(1)).alias("b_p"))
        .join(products, on=["category", "product_key"], how="inner")
        .groupBy("customer_id", "category")
        .agg(F.sum(F.least(F.col("n_p") - F.col("b_p"), F.lit(cap)) - F.least("n_p", F.lit(cap))).alias("delta"))
    )
    capacity = F.coalesce("base", F.lit(0)) + F.coalesce("delta", F.lit(0))
    rows = (
        short.join(base, on="category", how="left")
        .join(taken, on=["customer_id", "category"], how="left")
        .withColumn("expected", F.least(capacity, F.lit(top_n)))
        .where(F.col("n") < F.col("expected"))
    )
    return _violations(rows, F.format_string("%d items, %d eligible", F.col("n"), F.col("expected")))


def _not_in_category(inputs: _Inputs) -> DataFrame:
    """Rows holding an article that is not an in-stock article of the row's category (null ids included)."""
    rows = (
        _exploded(inputs.recs)
        .join(inputs.candidates.select("category", "article_id"), on=["category", "article_id"], how="left_anti")
        .groupBy(_ROW_ID, "category", "customer_id")
        .agg(F.min(F.coalesce("article_id", F.lit("null"))).alias("article_id"))
    )
    return _violations(rows, F.format_string("article %s not in stock in this category", F.col("article_id")))


def _bought_items(inputs: _Inputs) -> DataFrame:
    """Rows of non-repeat categories holding an article the customer already bought."""
    # One row per buying customer with the sorted array of what they bought, joined to the lists by customer:
    # the lists are shuffled once as (ids array) rows instead of once per list entry.
    bought = (inputs.bought.groupBy("customer_id")
              .agg(F.array_sort(F.collect_set("article_id")).alias("bought_ids")))
    ids = F.col("items.article_id")
    rows = (
        inputs.recs.where(~F.col("category").isin(list(inputs.repeat_categories)))
        .select(_ROW_ID, "category", "customer_id", ids.alias("ids"))
        .join(bought, on="customer_id", how="inner")
        .where(F.arrays_overlap("ids", "bought_ids"))
        .withColumn("article_id", F.array_min(F.array_intersect("ids", "bought_ids")))
    )
    return _violations(rows, F.format_string("already bought article %s", F.col("article_id")))


def _over_cap(inputs: _Inputs, max_per_product: int) -> DataFrame:
    """Rows with more than max_per_product articles of one product_code."""
    items = _exploded(inputs.recs).join(
        inputs.candidates.select("category", "article_id", "product_key"), on=["category", "article_id"], how="left"
    )
    # An unknown article (category_membership fails it) is its own product here, so it is not counted twice.
    key = F.coalesce("product_key", F.concat(F.lit("article:"), F.coalesce("article_id", F.col("pos").cast("string"))))
    rows = (
        items.groupBy(_ROW_ID, "category", "customer_id", key.alias("product_key"))
        .agg(F.count(F.lit(1)).alias("n"))
        .where(F.col("n") > max_per_product)
        .groupBy(_ROW_ID, "category", "customer_id")
        .agg(F.max(F.struct("n", "product_key")).alias("worst"))
    )
    return _violations(rows, F.format_string(f"product %s %d times > {max_per_product}",
                                             F.col("worst.product_key"), F.col("worst.n")))


def _bad_order(recs: DataFrame) -> DataFrame:
    """Rows whose ranks are not 1..n in order, or whose scores are null, NaN or increasing."""

    def entry_ok(x: Column, i: Column) -> Column:
        previous = F.get(F.col("items"), i - 1)  # null for the first entry (get never raises out of range)
        ok = (
            x.isNotNull()
            & (x["rank"] == i + 1)
            & x["score"].isNotNull()
            & ~F.isnan(x["score"])
            & ((i == 0) | (x["score"] <= previous["score"]))
        )
        return F.coalesce(ok, F.lit(False))

    # A cheap screen first, without lambdas (Spark interprets higher-order functions row by row): a list passes
    # when its ranks are 1..n, its scores sorted descending equal its scores (a null sorts last, NaN first), its
    # last score is not null and its first is not NaN. Every list failing the exact per-entry rule fails the
    # screen too, so the exact rule only runs on the few screened-out lists to find the first bad entry.
    scores = F.col("items.score")
    screened_ok = (_size() == 0) | (
        (F.col("items.rank") == F.sequence(F.lit(1), F.greatest(_size(), F.lit(1))))
        & (F.sort_array(scores, asc=False) == scores)
        & F.element_at(scores, -1).isNotNull()
        & ~F.isnan(F.element_at(scores, 1))
    )
    first_bad = F.array_position(F.transform("items", entry_ok), False)
    rows = (recs.where(~F.coalesce(screened_ok, F.lit(False)))
            .where(F.coalesce(first_bad, F.lit(0)) > 0).withColumn("at", first_bad))
    entry = F.get(F.col("items"), F.col("at").cast("int") - 1)
    shown = [F.coalesce(entry[name].cast("string"), F.lit("null")) for name in ("rank", "score")]
    detail = F.format_string("entry %d: rank %s, score %s", F.col("at"), *shown)
    return _violations(rows, detail)


def _bad_serving_mode(recs: DataFrame) -> DataFrame:
    """Rows whose serving_mode is not one of SERVING_MODES."""
    rows = recs.where(~F.coalesce(F.col("serving_mode").isin(list(C.SERVING_MODES)), F.lit(False)))
    return _violations(rows, F.format_string("serving_mode %s", F.coalesce("serving_mode", F.lit("null"))))


def _bad_model_version(recs: DataFrame) -> DataFrame:
    """Rows with a null or blank model_version."""
    rows = recs.where(F.coalesce(F.trim("model_version"), F.lit("")) == "")
    return _violations(rows, F.lit("empty model_version"))


# ------------------------------------------------------------------------------------------ helpers
def _short_id(value: str | None) -> str:
    if value is None:
        return "null"
    return repr(value[:8] + "…" if len(value) > 12 else value)


def _describe(name: str, failure: dict[str, Any]) -> str:
    count = failure["count"]
    unit = "key" if name == "duplicate_keys" else "row"
    text = f"{count} {unit}{'' if count == 1 else 's'}"
    if failure["examples"]:
        ex = failure["examples"][0]
        text += f", e.g. category {ex['category']!r}, customer {_short_id(ex['customer_id'])}: {ex['detail']}"
    return text.replace("\n", " ").replace("\r", " ")
