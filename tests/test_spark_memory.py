"""release_memory drops cached data and temporary views and reports the driver heap."""

from __future__ import annotations

import pytest

from fashion_meta.spark import dropping_new_temp_views, release_memory, temp_views

pytestmark = pytest.mark.spark


def test_release_memory_drops_cache_and_temp_views(spark):
    df = spark.range(1000).persist()
    df.count()
    df.createOrReplaceTempView("fm_test_view")
    assert df.storageLevel.useMemory and spark.catalog.tableExists("fm_test_view")
    heap = release_memory(spark)
    assert not spark.catalog.tableExists("fm_test_view")
    assert not df.storageLevel.useMemory and not df.storageLevel.useDisk
    before, after = heap
    assert 0 < after and 0 < before


def test_release_memory_collects_python_cycles_holding_jvm_frames(spark):
    """A DataFrame kept alive only by a Python reference cycle pins its JVM plan until Python's GC runs; with automatic
    GC off, only release_memory's own collection frees it (the cycle survives without it)."""
    import gc
    import weakref

    class Holder:
        pass

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        holder = Holder()
        holder.self = holder  # a cycle: reference counting alone never frees it
        holder.frame = spark.range(100).selectExpr("id * 2 AS x")
        holder.frame.count()
        alive = weakref.ref(holder)
        del holder
        assert alive() is not None
        release_memory(spark, keep_cache=True)
        assert alive() is None
    finally:
        if was_enabled:
            gc.enable()


def test_release_memory_keep_cache_leaves_cached_data_and_views(spark):
    df = spark.range(50).persist()
    df.count()
    df.createOrReplaceTempView("fm_test_kept_view")
    try:
        release_memory(spark, keep_cache=True)
        assert spark.catalog.tableExists("fm_test_kept_view")
        assert df.storageLevel.useMemory
    finally:
        df.unpersist()
        spark.catalog.dropTempView("fm_test_kept_view")


def test_dropping_new_temp_views_drops_only_views_made_inside_also_on_failure(spark):
    spark.range(3).createOrReplaceTempView("fm_test_before")
    try:
        with dropping_new_temp_views(spark):
            spark.range(3).createOrReplaceTempView("fm_test_inside")
            assert "fm_test_inside" in temp_views(spark)
        assert "fm_test_inside" not in temp_views(spark)
        assert "fm_test_before" in temp_views(spark)
        with pytest.raises(RuntimeError, match="boom"):
            with dropping_new_temp_views(spark):
                spark.range(3).createOrReplaceTempView("fm_test_failed")
                raise RuntimeError("boom")
        assert "fm_test_failed" not in temp_views(spark)
    finally:
        spark.catalog.dropTempView("fm_test_before")


def test_sql_status_store_keeps_at_most_the_configured_executions(spark):
    """Spark keeps the plan text and metrics of the last spark.sql.ui.retainedExecutions queries in the driver (also
    with the UI off); the session default lowers it from 1000 to 100."""
    import time

    assert spark.conf.get("spark.sql.ui.retainedExecutions") == "100"
    for i in range(130):
        spark.range(2).selectExpr(f"id + {i} AS x").collect()
    store = spark._jsparkSession.sharedState().statusStore()
    deadline = time.monotonic() + 30
    while store.executionsCount() > 100 and time.monotonic() < deadline:  # listener events arrive asynchronously
        time.sleep(0.5)
    assert 100 - 5 <= store.executionsCount() <= 100
