"""Shared fixtures: one Spark session per test process (local[2], 2 shuffle partitions, UI off), the tiny nightly.

The README test command runs two pytest-xdist workers, one test file at a time each (``--dist loadfile
--no-loadscope-reorder``), handing out files in the order set here: the longest first, so neither worker is left
with a long file at the end while the other idles.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Test files by measured serial time (clean clone of 697fd25, 2 cores), longest first; the rest keep pytest's order.
# test_cluster comes third so that its worker finds the tiny nightly built by test_resume's.
LONGEST_FIRST = [
    "tests/test_resume.py",              # ~400 s (+ the tiny nightly, ~190 s)
    "tests/evaluation/test_evaluate.py",  # ~280 s
    "tests/test_cluster.py",             # ~300 s
    "tests/features/test_features.py",
    "tests/fuzz/test_fuzz.py",
    "tests/features/test_late_data.py",
    "tests/tasks/test_tasks_job.py",
    "tests/ingest/test_bad_inputs.py",
    "tests/test_cli.py",
    "tests/test_notebooks.py",
]


def pytest_collection_modifyitems(config, items):
    """Put the longest test files first (a stable sort: tests keep their order inside a file)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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


    @classmethod
    def reopen(cls, root) -> "TinyNightly":
        """The nightly another test process finished in ``root`` (see ``tiny_nightly``)."""
        self = cls.__new__(cls)
        self.root = root
        self.shop, self.lake, self.config = root / "shop", root / "lake", root / "small.toml"
        self.run_date = TINY_RUN_DATE
        self.output = (root / "nightly.out").read_text()
        return self


@pytest.fixture(scope="session")
def tiny_nightly(tmp_path_factory) -> TinyNightly:
    """One complete nightly of the tiny shop (local[*], separate process), shared by the slow end-to-end tests.

    Under pytest-xdist it is built once for all workers: the first worker to need it builds it under a file lock in
    the run's shared temp folder; the others wait on the lock and reopen it.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return TinyNightly(tmp_path_factory.mktemp("tiny_nightly"))
    from filelock import FileLock

    shared = Path(tmp_path_factory.getbasetemp()).parent / "tiny_nightly"
    with FileLock(str(shared) + ".lock"):
        done = shared / "nightly.out"
        if done.exists():
            return TinyNightly.reopen(shared)
        if shared.exists():  # an earlier attempt failed part-way: start over
            import shutil

            shutil.rmtree(shared)
        shared.mkdir()
        nightly = TinyNightly(shared)
        done.write_text(nightly.output)  # written last: marks the nightly as finished
        return nightly
