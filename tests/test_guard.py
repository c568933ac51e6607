"""The lake writer lock, path confinement and the nightly's resume rule (no Spark needed)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fashion_meta.cli import main
from fashion_meta.errors import UsageError
from fashion_meta.guard import LakeBusyError, allowed_roots, confine, lake_lock
from fashion_meta.runlog import resume_index

HOLD = """
import sys, time
from fashion_meta.guard import lake_lock
with lake_lock(sys.argv[1], "nightly"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lake: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lake), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_fails_fast_naming_the_holder(tmp_path):
    holder = _holder(tmp_path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(LakeBusyError) as err, lake_lock(str(tmp_path), "recommend"):
            pass
        assert time.monotonic() - started < 2
        assert f"pid {holder.pid}" in str(err.value) and "nightly" in str(err.value) and "--lock-wait" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def test_waiting_writer_gets_the_lock_when_the_holder_ends(tmp_path):
    holder = _holder(tmp_path, 1.5)
    try:
        started = time.monotonic()
        with lake_lock(str(tmp_path), "recommend", wait_seconds=30):
            waited = time.monotonic() - started
        assert 0.5 < waited < 20
    finally:
        holder.wait()


def test_sigkilled_holder_leaves_no_stale_lock(tmp_path):
    holder = _holder(tmp_path, 60)
    holder.kill()  # SIGKILL: no clean-up code runs
    holder.wait()
    assert (tmp_path / "_locks" / "lake.lock").exists()
    with lake_lock(str(tmp_path), "nightly", dt.date(2020, 6, 14)):
        assert '"run_date": "2020-06-14"' in (tmp_path / "_locks" / "lake.lock").read_text()
    assert (tmp_path / "_locks" / "lake.lock").read_text() == ""  # the description is cleared on release


def test_busy_lake_is_one_line_exit_3_from_the_cli(tmp_path, capsys):
    holder = _holder(tmp_path / "lake", 30)
    try:
        code = main(["tasks", "--lake", str(tmp_path / "lake"), "--run-date", "2020-06-14"])
        err = capsys.readouterr().err
        assert code == 3 and "is being written by" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def test_confine_resolves_dotdot_and_symlinks(tmp_path):
    root = tmp_path / "allowed"
    (root / "lake").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "escape")
    roots = allowed_roots([str(root)])
    assert confine("--lake", str(root / "lake"), roots) == str(root / "lake")
    assert confine("--lake", str(root / "new" / "folder"), roots) == str(root / "new" / "folder")  # may not exist yet
    for bad in (str(root / ".." / "outside"), str(root / "escape" / "x"), "/etc", str(tmp_path / "allowed-not")):
        with pytest.raises(UsageError, match="outside the allowed roots"):
            confine("--lake", bad, roots)


def test_confine_uris_by_prefix():
    roots = allowed_roots(["s3a://shop/lake", "/data"])
    assert confine("--lake", "s3a://shop/lake/prod", roots) == "s3a://shop/lake/prod"
    for bad in ("s3a://shop/lakehouse", "s3a://other/lake", "hdfs:///data"):
        with pytest.raises(UsageError):
            confine("--lake", bad, roots)


def test_cli_refuses_a_path_outside_the_roots(tmp_path, capsys):
    config = tmp_path / "roots.toml"
    config.write_text(f'[paths]\nallowed_roots = ["{tmp_path / "ok"}"]\n')
    code = main(["ingest", "--input", str(tmp_path / "ok"), "--lake", "/etc/fashion-lake", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "--lake /etc/fashion-lake" in err and "allowed_roots" in err and "Traceback" not in err
    assert not Path("/etc/fashion-lake").exists()


def _t(minute: int) -> dt.datetime:
    return dt.datetime(2020, 6, 14, 3, minute)


ORDER = ["ingest", "features", "tasks", "train"]


def test_resume_index_starts_after_the_completed_prefix():
    assert resume_index({}, ORDER) == 0
    assert resume_index({"ingest": ("a", _t(1)), "features": ("a", _t(2))}, ORDER) == 2
    assert resume_index({s: ("a", _t(i)) for i, s in enumerate(ORDER)}, ORDER) == 4
    # a stage whose upstream was re-run after it completed runs again
    assert resume_index({"ingest": ("b", _t(9)), "features": ("a", _t(2)), "tasks": ("a", _t(3))}, ORDER) == 1
    # a gap: later completions do not count past it
    assert resume_index({"ingest": ("a", _t(1)), "tasks": ("a", _t(3))}, ORDER) == 1


def test_secrets_never_reach_the_log(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASHION_META_REDIS", "redis://shop:env-s3cret@redis:6379/0")
    config = tmp_path / "secret.toml"
    config.write_text('[feast]\nonline_path = "redis://shop:cfg-s3cret@redis:6379/0"\n')
    assert main(["generate", "--out", str(tmp_path / "shop"), "--customers", "50", "--articles", "40", "--categories",
                 "3", "--days", "7", "--config", str(config), "--log-level", "DEBUG"]) == 0
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    assert "redis://shop:***@redis:6379/0" in logged  # the config is logged, masked
    assert "s3cret" not in logged
