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


# The tiny shop of the end-to-end tests (tests/test_cli.py builds the same one in-process) and its small config.
TINY_RUN_DATE = "2020-06-14"
TINY_SHOP_ARGS = ["--customers", "200", "--articles", "120", "--categories", "6", "--days", "14", "--seed", "5"]
TINY_CONFIG = ("[tasks]\nwindow_days = 14\nmin_support = 2\nmin_query = 2\n"
               "[vocabulary]\nnew_category_days = 3\nmin_category_history = 5\nmin_group_history = 3\n"
               "[train]\nepochs = 3\n[spark]\ndriver_memory = \"1500m\"\nmaster = \"local[*]\"\n")


class TinyNightly:
    """A finished nightly on the tiny shop, run once per test session in its own process (read it, never write)."""

    def __init__(self, root):
        import subprocess
        import sys

        from fashion_meta.cli import main

        self.root = root
        self.shop, self.lake, self.config = root / "shop", root / "lake", root / "small.toml"
        self.run_date = TINY_RUN_DATE
        assert main(["generate", "--out", str(self.shop), *TINY_SHOP_ARGS]) == 0
        self.config.write_text(TINY_CONFIG)
        done = subprocess.run([sys.executable, "-m", "fashion_meta.cli", "nightly", *self.nightly_args(self.lake)],
                              capture_output=True, text=True, timeout=1800)
        self.output = done.stdout + done.stderr
        assert done.returncode == 0, self.output[-4000:]

    def nightly_args(self, lake) -> list[str]:
        """The nightly options of this shop for ``lake``."""
        return ["--input", str(self.shop), "--lake", str(lake), "--run-date", self.run_date,
                "--config", str(self.config), "--holdout-categories", "1"]


@pytest.fixture(scope="session")
def tiny_nightly(tmp_path_factory) -> TinyNightly:
    """One complete nightly of the tiny shop (local[*], separate process), shared by the slow end-to-end tests."""
    return TinyNightly(tmp_path_factory.mktemp("tiny_nightly"))
