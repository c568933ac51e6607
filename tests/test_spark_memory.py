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
