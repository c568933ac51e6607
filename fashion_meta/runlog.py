"""Run records: every command's effective config, counts and outcome, appended to the ops/run_log table."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from fashion_meta import __version__

_SECRET_KEY = re.compile(r"(password|secret|token|credential|api_key)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact(value: Any, key: str = "") -> Any:
    """A copy of a config value with secrets (password-like keys, passwords in URLs) masked."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, str):
        if key and _SECRET_KEY.search(key) and value:
            return "***"
        return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", value)
    return value


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def record_run(
    spark,
    lake_root: str,
    *,
    run_id: str,
    command: str,
    run_date: dt.date | None,
    status: str,
    started_at: dt.datetime,
    counts: dict[str, int],
    message: str,
    config: dict[str, Any],
    stage: str | None = None,
    fingerprint: str | None = None,
) -> None:
    """Append one row to ops/run_log (created on first use; a table from before the stage columns gains them)."""
    from fashion_meta import constants as C
    from fashion_meta import lake, schemas

    path = lake.table_path(lake_root, C.RUN_LOG)
    lake.ensure_table(spark, path, schemas.RUN_LOG)
    row = (
        run_id,
        command,
        run_date,
        status,
        started_at,
        dt.datetime.now(dt.timezone.utc),
        {k: int(v) for k, v in counts.items()},
        message[:2000],
        code_version(),
        json.dumps(redact(config), sort_keys=True),
        stage,
        fingerprint,
    )
    (spark.createDataFrame([row], schemas.RUN_LOG).write.format("delta").mode("append")
     .option("mergeSchema", "true").save(path))


def completed_stages(spark, lake_root: str, command: str, run_date: dt.date, fingerprint: str) -> dict[str, tuple[str, dt.datetime]]:
    """Stage -> (run id, end time) of its latest successful completion for this run date and fingerprint."""
    from fashion_meta import constants as C
    from fashion_meta import lake

    path = lake.table_path(lake_root, C.RUN_LOG)
    if not lake.table_exists(spark, path):
        return {}
    log_df = spark.read.format("delta").load(path)
    if "stage" not in log_df.columns:
        return {}
    rows = (log_df.where((log_df.command == command) & (log_df.run_date == run_date) & log_df.stage.isNotNull()
                         & (log_df.status == "succeeded") & (log_df.fingerprint == fingerprint))
            .select("stage", "run_id", "ended_at").collect())
    done: dict[str, tuple[str, dt.datetime]] = {}
    for r in rows:
        if r.stage not in done or r.ended_at > done[r.stage][1]:
            done[r.stage] = (r.run_id, r.ended_at)
    return done


def resume_index(done: dict[str, tuple[str, dt.datetime]], order: list[str]) -> int:
    """Index of the first stage to run: the first one not completed, or completed before the stage it follows
    was (re)completed (its inputs changed since)."""
    previous_end: dt.datetime | None = None
    for i, stage in enumerate(order):
        if stage not in done or (previous_end is not None and done[stage][1] < previous_end):
            return i
        previous_end = done[stage][1]
    return len(order)
