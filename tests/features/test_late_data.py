"""Late and corrected data: `fashion-meta backfill-late` recomputes exactly the feature days a corrected day affects.

A 40-day tiny shop (2020-06-01..07-10) is ingested and its features computed for 06-05..07-10 with 28-day windows
(W = 28). A corrected 06-08 (every price x 1.5, same rows) is ingested with `backfill-late`: the affected days are
06-08..07-05 (06-08 + W - 1). Afterwards every feature day equals a from-scratch rebuild (full ingest of the
corrected files + features), and the days outside the range keep their rows and files untouched.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_meta import lake
from fashion_meta.cli import main
from fashion_meta.features import late_data
from fashion_meta.features.job import FeatureParams, run_features
from fashion_meta.ingest.job import run_ingest

START, END = dt.date(2020, 6, 5), dt.date(2020, 7, 10)
LATE = dt.date(2020, 6, 8)
AFFECTED_END = LATE + dt.timedelta(days=27)
PARAMS = FeatureParams(text_vectors=False, lookback_days=28, channel_days=28, in_stock_sales_days=28,
                       min_category_history=20)
CONFIG = ("[features]\ntext_vectors = false\n"
          "[vocabulary]\nactive_lookback_days = 28\nchannel_lookback_days = 28\nmin_category_history = 20\n")
KEYS = {
    late_data.C.FEATURES_CUSTOMER_DAILY: ["customer_id"],
    late_data.C.FEATURES_ARTICLE_DAILY: ["article_id"],
    late_data.C.FEATURES_CATEGORY_DAILY: ["category"],
    late_data.C.FEATURES_GROUP_CATEGORY_DAILY: ["user_group", "category"],
}


def test_affected_ranges_window_clipping_gaps_and_whole_history():
    d = lambda day: dt.date(2020, 6, day)  # noqa: E731
    present = [d(i) for i in range(1, 31) if i != 12]  # 06-12 never had features
    assert late_data.affected_ranges([d(10)], 5, present) == [(d(10), d(11)), (d(13), d(14))]
    assert late_data.affected_ranges([d(28)], 5, present) == [(d(28), d(30))]  # never past the latest feature day
    assert late_data.affected_ranges([d(3), d(5)], 3, present) == [(d(3), d(7))]
    assert late_data.affected_ranges([d(20)], 2, present, whole_history=True) == [(d(20), d(30))]
    assert late_data.affected_ranges([], 2, present, everything=True) == [(d(1), d(11)), (d(13), d(30))]
    assert late_data.affected_ranges([dt.date(2020, 7, 1)], 5, present) == []  # a new day after every feature day
    assert late_data.affected_ranges([d(10)], 5, []) == []
    assert late_data.longest_window_days(PARAMS) == 28
    assert late_data.longest_window_days(FeatureParams()) == 90


def _features(spark, root: str, table: str) -> pd.DataFrame:
    df = lake.read_table(spark, lake.table_path(root, table)).drop("created_timestamp").toPandas()
    for col in df.columns:
        if df[col].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            df[col] = df[col].map(lambda v: None if v is None else tuple(v))
    return df.sort_values(["feature_date", *KEYS[table]]).reset_index(drop=True)


def _stamps(spark, root: str, table: str) -> pd.DataFrame:
    df = lake.read_table(spark, lake.table_path(root, table)).groupBy("feature_date").agg({"created_timestamp": "max"})
    return df.toPandas().set_index("feature_date").iloc[:, 0]


def _write_transactions(rows: list[dict], header: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.spark
@pytest.mark.slow
def test_backfill_late_recomputes_only_the_affected_days(spark, tmp_path, capsys):
    shop = tmp_path / "shop"
    assert main(["generate", "--out", str(shop), "--customers", "150", "--articles", "90", "--categories", "5",
                 "--days", "40", "--seed", "11", "--start-date", "2020-06-01"]) == 0
    with (shop / "transactions_train.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames), list(reader)
    corrected = [dict(r, price=f"{float(r['price']) * 1.5:.6f}") if r["t_dat"] == LATE.isoformat() else r for r in rows]
    assert sum(r["t_dat"] == LATE.isoformat() for r in rows) > 0

    # the lake as it was before the correction
    root = str(tmp_path / "lake")
    run_ingest(spark, str(shop), root)
    run_features(spark, root, START, END, PARAMS)
    before = {t: _stamps(spark, root, t) for t in KEYS}
    old_articles = _features(spark, root, late_data.C.FEATURES_ARTICLE_DAILY)
    version = {t: late_data.table_version(spark, lake.table_path(root, t)) for t in KEYS}

    # the correction: a folder with only the corrected day's transactions
    late = tmp_path / "late"
    _write_transactions([r for r in corrected if r["t_dat"] == LATE.isoformat()], header, late / "transactions_train.csv")
    config = tmp_path / "late.toml"
    config.write_text(CONFIG)
    code = main(["backfill-late", "--input", str(late), "--lake", root, "--config", str(config)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"recompute 28 feature days {LATE}..{AFFECTED_END}" in out.err

    # the reference: everything from scratch on the corrected files
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("articles.csv", "customers.csv"):
        (fresh / name).write_bytes((shop / name).read_bytes())
    _write_transactions(corrected, header, fresh / "transactions_train.csv")
    ref = str(tmp_path / "reference")
    run_ingest(spark, str(fresh), ref)
    run_features(spark, ref, START, END, PARAMS)

    for table in KEYS:
        got, want = _features(spark, root, table), _features(spark, ref, table)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=table)
        after = _stamps(spark, root, table)
        for day, stamp in before[table].items():
            if LATE <= day <= AFFECTED_END:
                assert after[day] > stamp, f"{table} {day} was not recomputed"
            else:
                assert after[day] == stamp, f"{table} {day} was rewritten"
        # one replaceWhere commit per table: the recompute wrote once
        assert late_data.table_version(spark, lake.table_path(root, table)) == version[table] + 1
    # the correction did change the affected days' values (so the equality above means something)
    new_articles = _features(spark, root, late_data.C.FEATURES_ARTICLE_DAILY)
    differs = ~np.isclose(old_articles["price_28d"].astype(float), new_articles["price_28d"].astype(float), equal_nan=True)
    changed = pd.Series(differs).groupby(old_articles["feature_date"]).any()
    assert changed[LATE] and changed[AFFECTED_END] and not changed[AFFECTED_END + dt.timedelta(days=1)]

    # a late day with an extra purchase changes whole-history values (a category's total): every later day
    before_versions = late_data.lake_versions(spark, root)
    extra = [r for r in corrected if r["t_dat"] == "2020-06-20"]
    _write_transactions(extra + extra[:1], header, tmp_path / "late2" / "transactions_train.csv")
    run_ingest(spark, str(tmp_path / "late2"), root, as_of=END)
    plan = late_data.plan_recompute(spark, root, before_versions, PARAMS)
    assert plan.touched_dates == [dt.date(2020, 6, 20)]
    assert plan.whole_history_changed
    assert plan.recompute == [(dt.date(2020, 6, 20), END)]
