"""Typed, validated bronze rows from numbered string rows: each transform adds typed columns and reasons.

Every transform takes the output of ``sources.read_rows`` (row_number, raw, _reasons, one string column per
expected input column) and returns the same rows with typed columns and ``_reasons`` extended; a row is
valid when ``_reasons`` is empty. Nothing is dropped here: the job splits valid rows from rejects.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta.schemas import ARTICLE_INT_COLUMNS

ARTICLE_ID_PATTERN = r"^[0-9]{10}$"
CUSTOMER_ID_PATTERN = r"^[0-9a-f]{64}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _quote(col: str) -> Column:
    """The offending value for a reason text, shortened."""
    value = F.col(col)
    return F.concat(
        F.lit(f"{col}='"),
        F.when(F.length(value) > 40, F.concat(F.substring(value, 1, 40), F.lit("..."))).otherwise(value),
        F.lit("'"),
    )


def _add_reasons(df: DataFrame, *reasons: Column) -> DataFrame:
    return df.withColumn("_reasons", F.array_compact(F.concat(F.col("_reasons"), F.array(*reasons))))


def with_field_length_checks(df: DataFrame, columns: tuple[str, ...], max_chars: int) -> DataFrame:
    """Reject rows with any field longer than ``max_chars``."""
    return _add_reasons(
        df,
        *[
            F.when(
                F.length(F.col(c)) > max_chars,
                F.concat(F.lit(f"field too long: {c} has "), F.length(F.col(c)).cast("string"), F.lit(" chars")),
            )
            for c in columns
        ],
    )


def _int_check(df: DataFrame, col: str) -> tuple[Column, Column]:
    typed = F.col(col).try_cast("int")
    reason = F.when(F.col(col).isNotNull() & typed.isNull(), F.concat(F.lit("not an integer: "), _quote(col)))
    return typed, reason


def with_typed_transactions(df: DataFrame) -> DataFrame:
    """Typed transaction columns (t_dat date, ids, price double, channel int) and their reject reasons."""
    t_dat = F.when(F.col("t_dat").rlike(DATE_PATTERN), F.try_to_date(F.col("t_dat"), "yyyy-MM-dd"))
    customer_id = F.lower(F.col("customer_id"))
    price = F.col("price").try_cast("double")
    channel = F.col("sales_channel_id").try_cast("int")
    checked = _add_reasons(
        df,
        F.when(t_dat.isNull(), F.concat(F.lit("unparseable date: "), F.coalesce(_quote("t_dat"), F.lit("t_dat missing")))),
        F.when(
            ~F.coalesce(customer_id.rlike(CUSTOMER_ID_PATTERN), F.lit(False)),
            F.concat(F.lit("malformed customer_id: "), F.coalesce(_quote("customer_id"), F.lit("missing"))),
        ),
        F.when(
            ~F.coalesce(F.col("article_id").rlike(ARTICLE_ID_PATTERN), F.lit(False)),
            F.concat(F.lit("malformed article_id: "), F.coalesce(_quote("article_id"), F.lit("missing"))),
        ),
        F.when(F.col("price").isNull(), F.lit("missing price")),
        F.when(F.col("price").isNotNull() & price.isNull(), F.concat(F.lit("price is not a number: "), _quote("price"))),
        F.when(F.isnan(price) | (F.abs(price) == float("inf")), F.lit("price is not a finite number")),
        F.when(price < 0, F.concat(F.lit("negative price: "), _quote("price"))),
        F.when(
            ~F.coalesce(channel.isin(C.SALES_CHANNEL_STORE, C.SALES_CHANNEL_ONLINE), F.lit(False)),
            F.concat(F.lit("unknown sales channel: "), F.coalesce(_quote("sales_channel_id"), F.lit("missing"))),
        ),
    )
    return checked.select(
        "row_number",
        "raw",
        "_reasons",
        t_dat.alias("t_dat"),
        customer_id.alias("customer_id"),
        F.col("article_id"),
        price.alias("price"),
        channel.alias("sales_channel_id"),
    )


def with_known_articles(transactions: DataFrame, article_ids: DataFrame) -> DataFrame:
    """Reject transactions whose article_id is in neither the articles file nor bronze/articles."""
    known = article_ids.select(F.col("article_id").alias("_known")).distinct()
    # The article list is small (H&M: 105k ids): broadcast it so the transactions, raw lines included, never shuffle.
    joined = transactions.join(F.broadcast(known), transactions["article_id"] == known["_known"], how="left")
    return _add_reasons(
        joined,
        F.when(
            F.col("article_id").rlike(ARTICLE_ID_PATTERN) & F.col("_known").isNull(),
            F.concat(F.lit("unknown article_id: "), _quote("article_id")),
        ),
    ).drop("_known")


def _first_occurrence(df: DataFrame, key: str) -> DataFrame:
    """Keep one row per ``key``: the first valid one (else the first); reject the others as duplicates."""
    w = Window.partitionBy(key).orderBy(F.size("_reasons") > 0, "row_number")
    kept = F.first("row_number").over(w.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
    return _add_reasons(
        df.withColumn("_kept_row", kept),
        F.when(
            F.col(key).isNotNull() & (F.col("_kept_row") != F.col("row_number")),
            F.concat(F.lit(f"duplicate {key} (kept row "), F.col("_kept_row").cast("string"), F.lit(")")),
        ),
    ).drop("_kept_row")


def with_typed_articles(df: DataFrame) -> DataFrame:
    """Typed article columns (ids as strings, *_no/_code integers) with reasons; repeats of an id rejected."""
    typed_cols, reasons = {}, []
    for col in ARTICLE_INT_COLUMNS:
        typed, reason = _int_check(df, col)
        typed_cols[col] = typed
        reasons.append(reason)
    reasons.append(
        F.when(
            ~F.coalesce(F.col("article_id").rlike(ARTICLE_ID_PATTERN), F.lit(False)),
            F.concat(F.lit("malformed article_id: "), F.coalesce(_quote("article_id"), F.lit("missing"))),
        )
    )
    checked = _add_reasons(df, *reasons)
    out = checked.select(
        "row_number",
        "raw",
        "_reasons",
        *[typed_cols[c].alias(c) if c in typed_cols else F.col(c) for c in C.ARTICLE_COLUMNS],
    )
    # H&M uses "Unknown" for missing names; keep that convention so every article has a category.
    names = ("prod_name", "product_type_name", "product_group_name")
    out = out.select(*[F.coalesce(F.col(c), F.lit("Unknown")).alias(c) if c in names else F.col(c) for c in out.columns])
    return _first_occurrence(out, "article_id")


def with_typed_customers(df: DataFrame) -> DataFrame:
    """Typed customer columns (FN/Active double, age int) with reasons; repeats of an id rejected."""
    customer_id = F.lower(F.col("customer_id"))
    age, age_reason = _int_check(df, "age")
    fn = F.col("FN").try_cast("double")
    active = F.col("Active").try_cast("double")
    checked = _add_reasons(
        df,
        F.when(
            ~F.coalesce(customer_id.rlike(CUSTOMER_ID_PATTERN), F.lit(False)),
            F.concat(F.lit("malformed customer_id: "), F.coalesce(_quote("customer_id"), F.lit("missing"))),
        ),
        age_reason,
        F.when(F.col("FN").isNotNull() & fn.isNull(), F.concat(F.lit("FN is not a number: "), _quote("FN"))),
        F.when(F.col("Active").isNotNull() & active.isNull(), F.concat(F.lit("Active is not a number: "), _quote("Active"))),
    )
    out = checked.select(
        "row_number",
        "raw",
        "_reasons",
        customer_id.alias("customer_id"),
        fn.alias("FN"),
        active.alias("Active"),
        F.col("club_member_status"),
        F.col("fashion_news_frequency"),
        age.alias("age"),
        F.col("postal_code"),
    )
    return _first_occurrence(out, "customer_id")
