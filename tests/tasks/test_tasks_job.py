"""The tasks stage on a tiny generated shop: split properties, held-out slices, negatives, files, reruns."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import lake
from fashion_meta.errors import InputError
from fashion_meta.features.job import FeatureParams, run_features
from fashion_meta.ingest.job import run_ingest
from fashion_meta.synth.generator import ShopSpec, generate_shop
from fashion_meta.tasks.job import TaskParams, required_feature_dates, run_tasks

pytestmark = [pytest.mark.spark, pytest.mark.feast, pytest.mark.slow]
RUN = dt.date(2020, 6, 21)
PARAMS = TaskParams(window_days=10, support_size=6, query_size=6, min_support=2, min_query=2,
                    negatives_per_positive=3, validation_fraction=0.2, holdout_categories="1",
                    holdout_groups="", seed=11)


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("tasks")
    shop, root = base / "shop", str(base / "lake")
    generate_shop(ShopSpec(customers=400, articles=150, categories=5, days=21, seed=3), shop)
    run_ingest(spark, str(shop), root, as_of=RUN)
    # the feature days the stage reads: the day before each window day and D, none before the first sale (06-01)
    day = lambda d: dt.date(2020, 6, d)  # noqa: E731
    assert required_feature_dates(spark, root, RUN, PARAMS.window_days) == (day(11), RUN)
    assert required_feature_dates(spark, root, day(5), PARAMS.window_days) == (day(1), day(5))
    before_any_sale = dt.date(2020, 5, 20)
    assert required_feature_dates(spark, root, before_any_sale, PARAMS.window_days) == (before_any_sale,) * 2
    with pytest.raises(InputError, match="features missing for 11 day"):  # the 10 days before the window days, D
        run_tasks(spark, root, RUN, PARAMS)
    run_features(spark, root, RUN - dt.timedelta(days=PARAMS.window_days), RUN, FeatureParams(text_vectors=True))
    # a day later every task row has its features, but the scoring snapshot reads D's: a clear error naming the
    # backfill, raised before any Feast call (Feast itself fails with an AttributeError on the empty snapshot)
    after = RUN + dt.timedelta(days=1)
    with pytest.raises(InputError, match=f"features missing for 1 day.*{after}..{after}.*--backfill {after} {after}"):
        run_tasks(spark, root, after, PARAMS)
    groups = sorted(r[0] for r in lake.read_table(spark, lake.table_path(root, C.FEATURES_CUSTOMER_DAILY))
                    .select("user_group").distinct().collect())
    params = TaskParams(**{**PARAMS.__dict__, "holdout_groups": groups[0]})
    summary = run_tasks(spark, root, RUN, params)
    folder = Path(summary.files_path)
    first = _read(folder)
    return {"root": root, "summary": summary, "folder": folder, "rows": first, "params": params,
            "manifest": json.loads((folder / "manifest.json").read_text())}


def _read(folder: Path):
    manifest = json.loads((folder / "manifest.json").read_text())
    tables = [pq.read_table(folder / name) for name in manifest["files"]]
    import pyarrow as pa

    return pa.concat_tables(tables).to_pandas()


def test_support_strictly_before_query_in_every_task(built):
    rows = built["rows"]
    assert len(rows) > 0
    for task_id, task in rows[rows.role.isin(["train", "validation"])].groupby("task_id"):
        support, query = task[task.split == "support"], task[task.split == "query"]
        assert len(support) and len(query), task_id
        assert support.t_dat.max() < query.t_dat.min(), task_id
        assert support.label.sum() <= built["params"].support_size
        assert query.label.sum() <= built["params"].query_size


def test_held_out_slices_never_meta_trained(spark, built):
    everything, holdout, root = built["rows"], built["manifest"]["holdout"], built["root"]
    # serving units (role "serve": new categories / user groups for the recommend stage) repeat purchases of other
    # slices and are never read by training; they are checked in test_serving_units_match_the_manifest
    rows = everything[everything.role != "serve"]
    assert len(holdout["categories"]) == 1 and len(holdout["user_groups"]) == 1
    held = rows.category.isin(holdout["categories"]) | rows.user_group.isin(holdout["user_groups"])
    assert held.any()
    assert set(rows[held].role) == {"holdout"}
    assert set(rows[~held].role) <= {"train", "validation"}
    assert "train" in set(rows.role)
    # held-out slices are adaptation units: pooled, all support, every purchase day of the window (no minimum)
    category, group = holdout["categories"][0], holdout["user_groups"][0]
    assert set(rows[held].task_id) == {f"{category}|*", f"*|{group}"}
    assert set(rows[held].split) == {"support"}
    cats = {r.article_id: r.product_type_name for r in lake.read_table(spark, lake.table_path(root, C.BRONZE_ARTICLES)).collect()}
    window = lake.read_table(spark, lake.table_path(root, C.BRONZE_TRANSACTIONS)).where(
        F.col("t_dat").between(F.lit(RUN - dt.timedelta(days=PARAMS.window_days - 1)), F.lit(RUN))).collect()
    bought = {(r.customer_id, r.article_id, r.t_dat) for r in window if cats.get(r.article_id) == category}
    unit = rows[(rows.task_id == f"{category}|*") & (rows.label == 1)]
    assert set(zip(unit.customer_id, unit.article_id, unit.t_dat)) == bought
    units = {t["task_id"]: t for t in built["manifest"]["tasks"] if t["role"] == "holdout"}
    assert units[f"{category}|*"]["user_group"] == "*" and units[f"*|{group}"]["category"] == "*"


def test_negatives_are_unbought_in_stock_articles_of_the_category(spark, built):
    rows, root = built["rows"], built["root"]
    bought = {(r.customer_id, r.article_id, r.t_dat) for r in
              lake.read_table(spark, lake.table_path(root, C.BRONZE_TRANSACTIONS)).collect()}
    stock = {(r.article_id, r.category, r.feature_date + dt.timedelta(days=1)) for r in
             lake.read_table(spark, lake.table_path(root, C.FEATURES_ARTICLE_DAILY)).collect()}
    negatives = rows[rows.label == 0]
    positives = rows[rows.label == 1]
    assert len(negatives) > len(positives)  # 3 per purchase asked; a few short where a category is tiny
    for r in negatives.itertuples():
        assert (r.customer_id, r.article_id, r.t_dat) not in bought
        assert (r.article_id, r.category, r.t_dat) in stock
    for r in positives.itertuples():
        assert (r.customer_id, r.article_id, r.t_dat) in bought
    assert not rows[rows.role != "serve"].duplicated(["customer_id", "article_id", "t_dat"]).any()
    assert not rows.duplicated(["task_id", "customer_id", "article_id", "t_dat"]).any()


def test_serving_units_match_the_manifest(built):
    rows, manifest = built["rows"], built["manifest"]
    serving = manifest["serving"]
    serve = rows[rows.role == "serve"]
    expected = {f"{c}|*" for c in serving["categories"]} | {f"*|{g}" for g in serving["user_groups"]}
    assert set(serve.task_id) == expected
    assert set(serving["categories"]) <= set(serving["all_categories"])
    assert not set(serving["categories"]) & set(manifest["holdout"]["categories"])
    assert not set(serving["user_groups"]) & set(manifest["holdout"]["user_groups"])
    assert set(serve.split) <= {"support"}
    for task_id, unit in serve.groupby("task_id"):
        assert 0 < unit.label.sum() <= built["params"].serve_max_support, task_id


def test_features_are_point_in_time_and_manifest_matches_files(spark, built):
    rows, manifest, root = built["rows"], built["manifest"], built["root"]
    # a row stamped t gets the customer's day t-1 value
    daily = {(r.customer_id, r.feature_date): r.purchases_7d for r in
             lake.read_table(spark, lake.table_path(root, C.FEATURES_CUSTOMER_DAILY)).collect()}
    checked = 0
    for r in rows.head(300).itertuples():
        expected = daily.get((r.customer_id, r.t_dat - dt.timedelta(days=1)))
        got = r.customer_daily__purchases_7d
        if expected is not None:
            assert got == expected
            checked += 1
    assert checked > 0
    assert manifest["format"] == "fashion-meta-tasks/1"
    assert manifest["rows"]["total"] == len(rows)
    assert manifest["rows"]["support"] == int((rows.split == "support").sum())
    assert sum(t["support_positives"] + t["query_positives"] for t in manifest["tasks"]) == int(rows.label.sum())
    for column in manifest["features"]["customer"] + manifest["features"]["article"]:
        assert column in rows.columns
    assert manifest["features"]["vector_dim"] == 384
    assert len(rows.iloc[0][manifest["features"]["article_vector"]]) == 384
    assert manifest["window"] == {"start": "2020-06-12", "end": "2020-06-21"}


def test_rerun_gives_the_same_rows_and_no_duplicates(spark, built):
    views = {t.name for t in spark.catalog.listTables() if t.isTemporary}
    again = run_tasks(spark, built["root"], RUN, built["params"])
    # Feast's Spark offline store registers views that pin the entity frames; run_tasks drops the ones it made
    assert {t.name for t in spark.catalog.listTables() if t.isTemporary} == views
    rows = _read(Path(again.files_path))
    key = ["task_id", "split", "customer_id", "article_id", "t_dat"]
    first = built["rows"].sort_values(key).reset_index(drop=True)
    second = rows.sort_values(key).reset_index(drop=True)
    assert first.drop(columns=[c for c in first.columns if "vector" in c or "embedding" in c]).equals(
        second.drop(columns=[c for c in second.columns if "vector" in c or "embedding" in c]))
    table = lake.read_table(spark, lake.table_path(built["root"], C.TASKS))
    assert table.where(F.col("run_date") == F.lit(RUN)).count() == len(rows)
    leftovers = [p.name for p in Path(again.files_path).parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []


def test_scoring_snapshot_is_as_of_the_run_date(spark, built):
    folder, root = built["folder"], built["root"]
    manifest = json.loads((folder / "manifest.json").read_text())  # a later test may have rerun the stage
    read = lambda key: pq.read_table([folder / f for f in manifest["scoring"][key]][0]).to_pandas()  # noqa: E731
    customers, articles, groups = read("customers"), read("articles"), read("group_category")
    daily = lambda t: lake.read_table(spark, lake.table_path(root, t)).where(F.col("feature_date") == F.lit(RUN))  # noqa: E731
    expected = {r.customer_id: r.purchases_7d for r in daily(C.FEATURES_CUSTOMER_DAILY).collect()}
    assert dict(zip(customers.customer_id, customers.customer_daily__purchases_7d)) == expected
    in_stock = {r.article_id: r.sales_7d for r in daily(C.FEATURES_ARTICLE_DAILY).collect()}
    assert dict(zip(articles.article_id, articles.article_daily__sales_7d)) == in_stock
    assert articles.article_text_embedding__embedding.map(len).eq(384).all()
    assert articles.product_code.notna().all()
    assert len(groups) == daily(C.FEATURES_GROUP_CATEGORY_DAILY).count()
    assert set(manifest["features"]["customer"]) <= set(customers.columns) | set(groups.columns)


def test_a_computed_feature_day_without_rows_is_not_missing(spark, built, tmp_path):
    """features/computed_days, not rows, decides which days are computed (a stray 1900 purchase adds such days)."""
    import shutil

    from delta.tables import DeltaTable

    from fashion_meta.tasks.job import missing_feature_dates

    root = str(tmp_path / "lake")
    shutil.copytree(built["root"], root)
    start, end = RUN - dt.timedelta(days=PARAMS.window_days), RUN
    assert missing_feature_dates(spark, root, start, end) == []
    marked = lake.read_table(spark, lake.table_path(root, C.FEATURES_COMPUTED_DAYS)).collect()
    assert sorted(r.feature_date for r in marked) == [start + dt.timedelta(days=i) for i in range(PARAMS.window_days + 1)]
    day = start + dt.timedelta(days=2)
    # a computed day with no in-stock article: still computed
    DeltaTable.forPath(spark, lake.table_path(root, C.FEATURES_ARTICLE_DAILY)).delete(F.col("feature_date") == F.lit(day))
    assert missing_feature_dates(spark, root, start, end) == []
    # not recorded and not in every table: missing; days outside the computed range are missing too
    DeltaTable.forPath(spark, lake.table_path(root, C.FEATURES_COMPUTED_DAYS)).delete(F.col("feature_date") == F.lit(day))
    assert missing_feature_dates(spark, root, start, end) == [day]
    before = start - dt.timedelta(days=1)
    assert missing_feature_dates(spark, root, before, end) == [before, day]
    # a lake from before computed_days existed: a day with rows in all four tables counts as computed
    shutil.rmtree(lake.table_path(root, C.FEATURES_COMPUTED_DAYS))
    assert missing_feature_dates(spark, root, start, end) == [day]
