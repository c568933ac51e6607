"""Ingestion behaviour on a tiny generated shop: types, zero rejects, idempotency, incremental and corrected days."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality

from fashion_meta import schemas
from fashion_meta.errors import InputError
from fashion_meta.ingest.job import run_ingest
from fashion_meta.synth import ShopSpec, generate_shop

pytestmark = pytest.mark.spark
SPEC = ShopSpec(customers=300, articles=200, categories=8, days=14, seed=7)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    generate_shop(SPEC, out)
    return out


def _table(spark, lake_root, name):
    return spark.read.format("delta").load(f"{lake_root}/{name}")


def _copy_with_transactions(src: Path, dst: Path, tx: pd.DataFrame, with_master: bool = True) -> Path:
    dst.mkdir(parents=True)
    if with_master:
        shutil.copy(src / "articles.csv", dst)
        shutil.copy(src / "customers.csv", dst)
    tx.to_csv(dst / "transactions_train.csv", index=False, float_format="%.16f")
    return dst


def _read_tx(shop: Path) -> pd.DataFrame:
    return pd.read_csv(shop / "transactions_train.csv", dtype={"article_id": str, "customer_id": str, "t_dat": str})


def test_generated_shop_ingests_with_exact_types_and_zero_rejects(spark, shop, lake_root):
    summary = run_ingest(spark, str(shop), lake_root)
    tx_rows = len(_read_tx(shop))
    assert summary.files["transactions_train"].read == tx_rows
    assert summary.files["transactions_train"].written == tx_rows
    assert sum(f.rejected for f in summary.files.values()) == 0
    assert _table(spark, lake_root, "bronze/rejects").count() == 0
    for name, schema in [
        ("bronze/articles", schemas.BRONZE_ARTICLES),
        ("bronze/customers", schemas.BRONZE_CUSTOMERS),
        ("bronze/transactions", schemas.BRONZE_TRANSACTIONS),
    ]:
        df = _table(spark, lake_root, name)
        assert [(f.name, f.dataType) for f in df.schema.fields] == [(f.name, f.dataType) for f in schema.fields]
    articles = _table(spark, lake_root, "bronze/articles")
    assert articles.count() == SPEC.articles
    assert articles.where("length(article_id) != 10").count() == 0
    assert articles.where("article_id LIKE '0%'").count() > 0  # leading zeros survive
    # first_seen_date is the first sale, or the as-of date (the last day) for never-sold articles
    last = dt.date(2020, 6, 1) + dt.timedelta(days=SPEC.days - 1)
    tx = _read_tx(shop)
    first_sale = tx.groupby("article_id")["t_dat"].min()
    got = {r.article_id: r.first_seen_date for r in articles.select("article_id", "first_seen_date").collect()}
    for article_id, seen in got.items():
        expected = dt.date.fromisoformat(first_sale[article_id]) if article_id in first_sale else last
        assert seen == expected, article_id
    # duplicate rows are real repeat purchases: all kept
    dup_rows = int(tx.duplicated().sum())
    assert dup_rows > 0
    bronze_tx = _table(spark, lake_root, "bronze/transactions")
    assert bronze_tx.count() - bronze_tx.distinct().count() == dup_rows


def test_reingest_is_idempotent(spark, shop, lake_root):
    run_ingest(spark, str(shop), lake_root)
    before = {n: _table(spark, lake_root, f"bronze/{n}").drop("ingested_at").cache() for n in ("articles", "customers", "transactions")}
    counts = {n: df.count() for n, df in before.items()}
    run_ingest(spark, str(shop), lake_root)
    for name, df in before.items():
        after = _table(spark, lake_root, f"bronze/{name}").drop("ingested_at")
        assert after.count() == counts[name]
        key = df.columns
        assert_df_equality(after.orderBy(*key), df.orderBy(*key))
        df.unpersist()


def test_incremental_then_corrected_day(spark, shop, tmp_path, lake_root):
    tx = _read_tx(shop)
    days = sorted(tx["t_dat"].unique())
    last, prev = days[-1], days[-2]
    base = _copy_with_transactions(shop, tmp_path / "base", tx[tx["t_dat"] < last])
    run_ingest(spark, str(base), lake_root)
    assert _table(spark, lake_root, "bronze/transactions").count() == int((tx["t_dat"] < last).sum())

    # a new day arrives alone (no articles/customers files): it is added, nothing else changes
    new_day = _copy_with_transactions(shop, tmp_path / "day", tx[tx["t_dat"] == last], with_master=False)
    summary = run_ingest(spark, str(new_day), lake_root)
    assert set(summary.files) == {"transactions_train"}
    assert _table(spark, lake_root, "bronze/transactions").count() == len(tx)

    # a corrected copy of the previous day replaces that day only
    fixed = tx[tx["t_dat"] == prev].iloc[2:].copy()
    fixed["price"] = 0.0123
    corrected = _copy_with_transactions(shop, tmp_path / "fix", fixed, with_master=False)
    run_ingest(spark, str(corrected), lake_root)
    bronze = _table(spark, lake_root, "bronze/transactions")
    day = bronze.where(f"t_dat = '{prev}'")
    assert day.count() == len(fixed)
    assert {r.price for r in day.select("price").distinct().collect()} == {0.0123}
    assert bronze.where(f"t_dat != '{prev}'").count() == int((tx["t_dat"] != prev).sum())


def test_since_skips_earlier_days_and_counts_add_up(spark, shop, lake_root):
    tx = _read_tx(shop)
    since = sorted(tx["t_dat"].unique())[-3]
    summary = run_ingest(spark, str(shop), lake_root, since=dt.date.fromisoformat(since))
    counts = summary.files["transactions_train"]
    assert counts.skipped == int((tx["t_dat"] < since).sum())
    assert counts.written == int((tx["t_dat"] >= since).sum())
    assert counts.read == counts.written + counts.rejected + counts.skipped
    assert _table(spark, lake_root, "bronze/transactions").where(f"t_dat < '{since}'").count() == 0


def test_rejects_of_a_file_are_replaced_when_it_is_ingested_again(spark, shop, tmp_path, lake_root):
    tx = _read_tx(shop).head(20).copy()
    tx.loc[3, "price"] = -1.0
    tx.loc[5, "sales_channel_id"] = 7
    folder = _copy_with_transactions(shop, tmp_path / "in", tx)
    run_ingest(spark, str(folder), lake_root)
    rejects = _table(spark, lake_root, "bronze/rejects")
    assert sorted((r.row_number, r.reason.split(":")[0]) for r in rejects.collect()) == [
        (5, "negative price"),
        (7, "unknown sales channel"),
    ]
    tx.loc[3, "price"] = 0.02
    tx.to_csv(folder / "transactions_train.csv", index=False, float_format="%.16f")
    run_ingest(spark, str(folder), lake_root)
    rows = _table(spark, lake_root, "bronze/rejects").collect()
    assert [(r.row_number, r.reason.split(":")[0]) for r in rows] == [(7, "unknown sales channel")]


def test_unknown_customer_is_kept_and_counted(spark, shop, tmp_path, lake_root):
    tx = _read_tx(shop).head(10).copy()
    tx.loc[0, "customer_id"] = "f" * 64
    folder = _copy_with_transactions(shop, tmp_path / "in", tx)
    summary = run_ingest(spark, str(folder), lake_root)
    assert summary.transactions_unknown_customer == 1
    assert _table(spark, lake_root, "bronze/transactions").where(f"customer_id = '{'f' * 64}'").count() == 1


def test_first_run_without_articles_file_is_an_input_error(spark, shop, tmp_path, lake_root):
    folder = _copy_with_transactions(shop, tmp_path / "in", _read_tx(shop).head(5), with_master=False)
    with pytest.raises(InputError, match="articles"):
        run_ingest(spark, str(folder), lake_root)
    assert not Path(lake_root).exists()


def test_parquet_input_with_integer_ids_and_nanosecond_dates(spark, shop, tmp_path, lake_root):
    folder = tmp_path / "pq"
    folder.mkdir()
    shutil.copy(shop / "customers.csv", folder)
    articles = pd.read_csv(shop / "articles.csv", dtype={"article_id": str})
    articles["article_id"] = articles["article_id"].astype("int64")  # how many Kaggle Parquet copies store it
    articles.to_parquet(folder / "articles.parquet", index=False)
    tx = _read_tx(shop)
    tx["t_dat"] = pd.to_datetime(tx["t_dat"])  # pandas writes nanosecond timestamps by default
    tx["article_id"] = tx["article_id"].astype("int64")
    tx.to_parquet(folder / "transactions_train.parquet", index=False)
    summary = run_ingest(spark, str(folder), lake_root)
    assert summary.files["transactions_train"].written == len(tx)
    assert sum(f.rejected for f in summary.files.values()) == 0
    bronze = _table(spark, lake_root, "bronze/transactions")
    assert bronze.where("length(article_id) != 10").count() == 0
    assert str(bronze.agg({"t_dat": "min"}).first()[0]) == str(tx["t_dat"].min().date())
