"""Per-epoch training log, written as CSV and JSON after every epoch (so a crash still leaves a log)."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CSV_NAME = "metrics.csv"
JSON_NAME = "metrics.json"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON to a temporary file next to ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class EpochLog:
    """Collects one row of metrics per epoch and rewrites ``metrics.csv`` and ``metrics.json`` each time."""

    def __init__(self, log_dir: str | Path, header: Mapping[str, Any],
                 sink: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        """``sink`` (e.g. an experiment tracker's ``log_epoch``) also gets each row, after the files are written."""
        self.dir = Path(log_dir)
        self.sink = sink
        self.dir.mkdir(parents=True, exist_ok=True)
        self.header = dict(header)
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self._write()

    @property
    def paths(self) -> dict[str, Path]:
        return {"csv": self.dir / CSV_NAME, "json": self.dir / JSON_NAME}

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append({k: _clean(v) for k, v in row.items()})
        self._write()
        if self.sink is not None:
            self.sink(self.rows[-1])

    def finish(self, summary: Mapping[str, Any]) -> None:
        self.summary = {k: _clean(v) for k, v in summary.items()}
        self._write()

    def _write(self) -> None:
        fields: list[str] = []
        for row in self.rows:
            fields += [k for k in row if k not in fields]
        tmp = self.dir / f".{CSV_NAME}.tmp"
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields or ["epoch"])
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.dir / CSV_NAME)
        write_json_atomic(self.dir / JSON_NAME, {**self.header, "epochs": self.rows, "summary": self.summary})
