"""Shared fixtures: one Spark session for the whole test run (local[2], 2 shuffle partitions, UI off)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from fashion_meta.spark import get_spark

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = get_spark(
        "fashion-meta-tests",
        master="local[2]",
        shuffle_partitions=2,
        driver_memory="4g",
        ui=False,
        extra={"spark.sql.warehouse.dir": str(warehouse), "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture
def lake_root(tmp_path) -> str:
    return str(tmp_path / "lake")
