"""release_memory drops cached data and temporary views and reports the driver heap."""

from __future__ import annotations

import pytest

from fashion_meta.spark import release_memory

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
