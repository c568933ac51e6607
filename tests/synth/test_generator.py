"""Tests for the synthetic H&M-format shop generator."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_meta import constants
from fashion_meta.synth import GenerateSummary, ShopSpec, generate_shop, launch_calendar
from fashion_meta.synth.catalog import late_launch_window

TINY = ShopSpec(customers=300, articles=200, categories=8, days=30, seed=7)
# Big enough for per-age-band statistics, still about a second.
MEDIUM = ShopSpec(customers=3000, articles=800, categories=20, days=35, seed=11)
FILES = tuple(f"{name}.csv" for name in constants.INPUT_FILES)


def _read(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    articles = pd.read_csv(out / "articles.csv", dtype={"article_id": str})
    customers = pd.read_csv(out / "customers.csv", dtype={"customer_id": str, "postal_code": str})
    transactions = pd.read_csv(out / "transactions_train.csv", dtype={"article_id": str, "customer_id": str})
    return articles, customers, transactions


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, GenerateSummary, list[str]]:
    out = tmp_path_factory.mktemp("tiny")
    lines: list[str] = []
    summary = generate_shop(TINY, out, progress=lines.append)
    return out, summary, lines


@pytest.fixture(scope="module")
def tiny_frames(tiny) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return _read(tiny[0])


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("medium")
    return out, generate_shop(MEDIUM, out)


@pytest.fixture(scope="module")
def medium_frames(medium) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return _read(medium[0])


def test_same_seed_gives_identical_files_and_another_seed_differs(tiny, tmp_path):
    out, _, _ = tiny
    again = generate_shop(TINY, tmp_path / "again")
    other = generate_shop(dataclasses.replace(TINY, seed=8), tmp_path / "other")
    for name in FILES:
        assert _sha256(out / name) == _sha256(Path(again.out_dir) / name), name
        assert _sha256(out / name) != _sha256(Path(other.out_dir) / name), name


def test_transaction_target_does_not_change_articles_or_customers(tiny, tmp_path):
    out, _, _ = tiny
    busier = generate_shop(dataclasses.replace(TINY, transactions=5000), tmp_path / "busier")
    for name in ("articles.csv", "customers.csv"):
        assert _sha256(out / name) == _sha256(Path(busier.out_dir) / name)
    assert 4500 <= busier.transactions_rows <= 5500


def test_headers_are_exactly_the_kaggle_columns(tiny):
    out = tiny[0]
    expected = {"articles.csv": constants.ARTICLE_COLUMNS, "customers.csv": constants.CUSTOMER_COLUMNS,
                "transactions_train.csv": constants.TRANSACTION_COLUMNS}
    for name, columns in expected.items():
        with open(out / name, encoding="utf-8") as f:
            assert f.readline().rstrip("\n").split(",") == list(columns)


def test_value_formats_match_the_kaggle_files(tiny, tiny_frames):
    articles, customers, transactions = tiny_frames
    assert articles["article_id"].str.fullmatch(r"0\d{9}").all()
    assert articles["article_id"].is_unique
    assert (articles["article_id"].str[:7] == articles["product_code"].astype(str).str.zfill(7)).all()
    for column in ("product_code", "product_type_no", "graphical_appearance_no", "colour_group_code",
                   "perceived_colour_value_id", "perceived_colour_master_id", "department_no",
                   "index_group_no", "section_no", "garment_group_no"):
        assert pd.api.types.is_integer_dtype(articles[column]), column
    assert articles["index_code"].str.fullmatch(r"[A-J]").all()
    assert customers["customer_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert customers["customer_id"].is_unique
    assert customers["postal_code"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert set(customers["FN"].dropna()) == {1.0} and set(customers["Active"].dropna()) <= {1.0}
    assert set(customers["club_member_status"].dropna()) <= {"ACTIVE", "PRE-CREATE", "LEFT CLUB"}
    assert set(customers["fashion_news_frequency"].dropna()) <= {"NONE", "Regularly", "Monthly"}
    assert transactions["customer_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert transactions["article_id"].str.fullmatch(r"\d{10}").all()
    dates = pd.to_datetime(transactions["t_dat"], format="%Y-%m-%d")
    assert dates.is_monotonic_increasing
    assert (transactions["price"] > 0).all() and (transactions["price"] < 1).all()
    assert set(transactions["sales_channel_id"]) == {constants.SALES_CHANNEL_STORE, constants.SALES_CHANNEL_ONLINE}
    raw = (tiny[0] / "transactions_train.csv").read_text()
    assert '"' not in raw
    assert re.fullmatch(r"\d{4}-\d\d-\d\d,[0-9a-f]{64},\d{10},0\.\d+,[12]", raw.splitlines()[1])


def test_descriptions_with_commas_are_quoted(medium):
    text = (medium[0] / "articles.csv").read_text(encoding="utf-8")
    quoted = [line for line in text.splitlines() if line.endswith('"')]
    assert quoted and all(line.count('"') % 2 == 0 for line in quoted)
    articles = pd.read_csv(medium[0] / "articles.csv", dtype={"article_id": str})
    assert articles["detail_desc"].str.contains(",", na=False).any()
    assert len(articles) == MEDIUM.articles


def test_every_transaction_references_known_articles_and_customers(tiny_frames):
    articles, customers, transactions = tiny_frames
    assert transactions["article_id"].isin(articles["article_id"]).all()
    assert transactions["customer_id"].isin(customers["customer_id"]).all()


def test_no_article_is_sold_before_its_launch(tiny_frames):
    _, _, transactions = tiny_frames
    calendar = launch_calendar(TINY)
    sold = transactions.merge(calendar, on="article_id", how="left", validate="many_to_one")
    assert sold["launch_date"].notna().all()
    assert (pd.to_datetime(sold["t_dat"]) >= sold["launch_date"]).all()
    assert (calendar["launch_date"] > pd.Timestamp(TINY.start_date)).any()  # some launch during the period


def test_late_categories_launch_late_and_sell_only_afterwards(tiny, tiny_frames):
    _, summary, _ = tiny
    articles, _, transactions = tiny_frames
    assert len(summary.late_categories) >= 2
    lo, hi = late_launch_window(TINY.days)
    sold = transactions.merge(articles[["article_id", "product_type_name"]], on="article_id")
    for late in summary.late_categories:
        launch = datetime.date.fromisoformat(late.launch_date)
        assert lo <= (launch - TINY.start_date).days <= hi
        assert (articles["product_type_name"] == late.category).sum() == late.articles > 0
        dates = pd.to_datetime(sold.loc[sold["product_type_name"] == late.category, "t_dat"])
        assert len(dates) > 0, late.category
        assert dates.min() >= pd.Timestamp(launch)


def test_colour_variants_share_product_attributes(medium_frames):
    articles = medium_frames[0]
    per_product = articles.groupby("product_code")
    assert per_product.size().max() <= 5 and (per_product.size() > 1).any()
    for column in ("prod_name", "product_type_name", "index_code", "section_name", "graphical_appearance_name"):
        assert (per_product[column].nunique() == 1).all(), column
    multi = per_product.filter(lambda g: len(g) > 1)
    assert (multi.groupby("product_code")["colour_group_name"].nunique() > 1).all()


def test_missing_ages_and_descriptions_occur(medium_frames):
    articles, customers, _ = medium_frames
    assert 0 < articles["detail_desc"].isna().sum() < 0.02 * len(articles)
    assert 0 < customers["age"].isna().sum() < 0.03 * len(customers)
    assert customers["age"].dropna().between(16, 95).mean() > 0.99


def test_duplicate_rows_and_repeat_purchases_occur(tiny_frames, medium_frames):
    for _, _, transactions in (tiny_frames, medium_frames):
        assert 0.005 < transactions.duplicated().mean() < 0.15
    transactions = medium_frames[2].drop_duplicates()
    first = transactions.groupby(["customer_id", "article_id"])["t_dat"].transform("min")
    assert 0.005 < (transactions["t_dat"] > first).mean() < 0.25


def test_age_bands_and_channels_have_different_tastes(medium_frames):
    articles, customers, transactions = medium_frames
    rows = (transactions.merge(articles[["article_id", "product_type_name", "index_code"]], on="article_id")
            .merge(customers[["customer_id", "age"]], on="customer_id"))
    young, old = rows[rows["age"] <= 24], rows[rows["age"] >= 55]
    young_mix = young["product_type_name"].value_counts(normalize=True)
    old_mix = old["product_type_name"].value_counts(normalize=True)
    assert set(young_mix.index[:3]) != set(old_mix.index[:3])
    assert 0.5 * young_mix.sub(old_mix, fill_value=0).abs().sum() > 0.2  # total variation distance
    online = lambda frame: (frame["sales_channel_id"] == constants.SALES_CHANNEL_ONLINE).mean()  # noqa: E731
    assert online(young) > online(old) + 0.2
    assert (young["index_code"] == "D").mean() > (old["index_code"] == "D").mean()  # Divided is young


def test_popularity_is_skewed(medium_frames):
    articles, _, transactions = medium_frames
    counts = transactions["article_id"].value_counts()
    top_decile = counts.iloc[: len(articles) // 10].sum() / len(transactions)
    assert top_decile > 0.35


def test_weekends_are_busier(medium_frames):
    days = pd.to_datetime(medium_frames[2]["t_dat"])
    per_weekday = days.dt.dayofweek.value_counts() / days.dt.normalize().drop_duplicates().dt.dayofweek.value_counts()
    assert per_weekday.loc[[5, 6]].mean() > per_weekday.loc[[0, 1, 2]].mean()


def test_summary_matches_files_and_is_json_serialisable(tiny, tiny_frames):
    out, summary, lines = tiny
    articles, customers, transactions = tiny_frames
    payload = json.loads(json.dumps(dataclasses.asdict(summary)))
    assert payload["articles_rows"] == len(articles) == TINY.articles
    assert payload["customers_rows"] == len(customers) == TINY.customers
    assert payload["transactions_rows"] == len(transactions)
    assert 0.8 * summary.target_transactions <= len(transactions) <= 1.2 * summary.target_transactions
    assert payload["first_transaction_date"] == transactions["t_dat"].min()
    assert payload["last_transaction_date"] == transactions["t_dat"].max()
    assert payload["late_categories"][0].keys() == {"category", "launch_date", "articles"}
    assert summary.elapsed_seconds > 0
    assert len(lines) >= 10 and any("day 30/30" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temp files left behind


def test_many_categories_use_real_names_then_numbered_extras(tmp_path):
    spec = ShopSpec(customers=200, articles=400, categories=130, days=14, seed=3)
    summary = generate_shop(spec, tmp_path)
    articles = pd.read_csv(tmp_path / "articles.csv", dtype={"article_id": str})
    names = set(articles["product_type_name"])
    assert len(names) == 130
    assert {"Trousers", "Dress", "Sweater", "Earring", "Top 2"} <= names
    assert articles.groupby("product_type_name")["product_type_no"].nunique().eq(1).all()
    assert articles["product_type_no"].nunique() == 130
    assert len(summary.late_categories) == round(0.15 * 130)


@pytest.mark.parametrize("changes, message", [
    ({"customers": 0}, "customers"),
    ({"articles": -5}, "articles"),
    ({"categories": 0}, "categories"),
    ({"days": 0}, "days"),
    ({"days": 3}, "days"),
    ({"categories": 50, "articles": 40}, "categories"),
    ({"seed": -1}, "seed"),
    ({"transactions": 0}, "transactions"),
    ({"transactions": 10**9}, "transactions"),
    ({"customers": 2.5}, "customers"),
    ({"start_date": "2020-06-01"}, "start_date"),
])
def test_invalid_specs_raise_value_error(changes, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        generate_shop(dataclasses.replace(TINY, **changes), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_age_bands_of_constants_are_what_the_generator_uses():
    from fashion_meta.synth.population import age_band_index

    ages = np.array([16, 24, 25, 34, 35, 44, 45, 54, 55, 95])
    labels = [constants.AGE_BANDS[i][2] for i in age_band_index(ages)]
    assert labels == ["<=24", "<=24", "25-34", "25-34", "35-44", "35-44", "45-54", "45-54", "55+", "55+"]
