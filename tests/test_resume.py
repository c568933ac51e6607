"""Crash safety end to end: concurrent same-date nightlies, and SIGKILL inside three stages then resume.

Every nightly here is a real ``python -m fashion_meta.cli nightly`` process in its own process group (driver,
Spark JVM and Python workers), so a kill takes all of them at once, like an OOM killer or a lost node would.
The reference is the session's uninterrupted nightly of the same shop and config (``tiny_nightly``).

1. Two nightlies for the same date on one fresh lake, started together: exactly one runs, the other exits 3 at
   once naming the holder of the lake lock.
2. The one that runs is killed a few seconds into ``features``; the rerun resumes at ``features`` (ingest
   skipped) and is killed inside ``tasks`` (during the Feast point-in-time join); the next resumes at ``tasks``
   and is killed inside ``recommend``; the last one resumes at ``recommend`` and finishes. Its recommendations
   (every list, in order, with scores and serving modes), task rows and export row counts equal the reference's,
   with no duplicated rows; one more run finds nothing to do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.spark]

RUN_DATE = "2020-06-14"


class Nightly:
    """One nightly process; its log lines are read as they come."""

    def __init__(self, args: list[str], log_file: Path):
        self.lines: list[str] = []
        self.log_file = log_file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fashion_meta.cli", "nightly", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with self.log_file.open("w") as out:
            for line in self.proc.stdout:
                self.lines.append(line)
                out.write(line)
                out.flush()

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None or needle in self.text(), f"exited before {needle!r}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {needle!r} after {timeout}s:\n{self.text()[-3000:]}"
            time.sleep(0.2)

    def kill_inside(self, stage: str, after_seconds: float) -> None:
        """SIGKILL the whole process group ``after_seconds`` into ``stage``; assert the stage had not finished."""
        self.wait_for(f"stage {stage} started")
        time.sleep(after_seconds)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=10)
        assert f"stage {stage} done" not in self.text(), f"{stage} finished before the kill; kill earlier"

    def finish(self, timeout: float = 900) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def _outputs(spark, lake: Path) -> dict:
    recs = spark.read.format("delta").load(str(lake / "recommendations")).collect()
    lists = {(r.run_date, r.category, r.customer_id): ([i.article_id for i in r["items"]],
                                                        [round(i.score, 4) for i in r["items"]], r.serving_mode)
             for r in recs}
    manifest = json.loads((lake / "task_files" / f"run_date={RUN_DATE}" / "manifest.json").read_text())
    export = json.loads((lake / "exports" / f"run_date={RUN_DATE}" / "manifest.json").read_text())
    return {"rows": len(recs), "lists": lists, "task_rows": manifest["rows"], "export_rows": export["total_rows"],
            "transactions": spark.read.format("delta").load(str(lake / "bronze" / "transactions")).count()}


def test_concurrent_runs_and_resume_after_kills(spark, tmp_path, tiny_nightly):
    reference = _outputs(spark, tiny_nightly.lake)
    assert reference["rows"] == len(reference["lists"]) > 0
    lake = tmp_path / "lake"
    args = tiny_nightly.nightly_args(lake)

    # 1. two runs of one date at once on a fresh lake: one runs, the other is refused at once
    first, second = Nightly(args, tmp_path / "concurrent-1.log"), Nightly(args, tmp_path / "concurrent-2.log")
    deadline = time.monotonic() + 300
    while first.proc.poll() is None and second.proc.poll() is None:
        assert time.monotonic() < deadline, "neither run was refused"
        time.sleep(0.2)
    loser, winner = (first, second) if first.proc.poll() is not None else (second, first)
    assert loser.finish() == 3, loser.text()[-2000:]
    assert "is being written by" in loser.text() and "Traceback" not in loser.text()

    # 2. the winner is killed inside features, then reruns are killed inside tasks and recommend
    winner.kill_inside("features", 3)
    run = Nightly(args, tmp_path / "kill-2.log")
    run.wait_for("resuming at stage features")
    run.kill_inside("tasks", 8)
    run = Nightly(args, tmp_path / "kill-3.log")
    run.wait_for("resuming at stage tasks")
    run.kill_inside("recommend", 3)
    run = Nightly(args, tmp_path / "resume.log")
    assert run.finish() == 0, run.text()[-3000:]
    assert "resuming at stage recommend" in run.text() and "stage ingest started" not in run.text()
    assert "resumed at recommend" in run.text()

    resumed = _outputs(spark, lake)
    assert resumed["rows"] == reference["rows"]  # nothing duplicated
    assert resumed["lists"] == reference["lists"]
    assert resumed["task_rows"] == reference["task_rows"]
    assert resumed["export_rows"] == reference["export_rows"]
    assert resumed["transactions"] == reference["transactions"]

    stages = (spark.read.format("delta").load(str(lake / "ops" / "run_log"))
              .where("stage IS NOT NULL AND status = 'succeeded'").groupBy("stage").count().collect())
    assert {r.stage: r["count"] for r in stages} == {s: 1 for s in
                                                     ("ingest", "features", "tasks", "train", "recommend", "export")}

    again = Nightly(args, tmp_path / "again.log")
    assert again.finish() == 0 and "already complete" in again.text()
