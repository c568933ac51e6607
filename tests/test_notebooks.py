"""The notebooks execute headless (nbclient, this venv's kernel) on a tiny lake and show their key outputs."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
RUN_DATE = "2020-06-14"

pytestmark = pytest.mark.slow


def _runner():
    spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(nb) -> str:
    """Every text output of the executed notebook (streams, plain text, Markdown), in order."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts += [out["data"].get("text/plain", ""), out["data"].get("text/markdown", "")]
    return "\n".join(parts)


def _images(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.fixture(scope="module")
def tiny_lake(tiny_nightly) -> Path:
    """The session's tiny nightly lake (tests/conftest.py): a generated shop and one real nightly; read only."""
    assert tiny_nightly.run_date == RUN_DATE
    return tiny_nightly.lake


@pytest.mark.spark
def test_query_recommendations_runs_duckdb_pandas_and_spark_sql(tiny_lake, tmp_path):
    nb = _runner().execute(NOTEBOOKS / "query_recommendations.ipynb",
                           {"LAKE": str(tiny_lake), "SPARK_MASTER": "local[1]", "SPARK_DRIVER_MEMORY": "1g"},
                           cwd=tmp_path)
    text = _text(nb)
    assert f"run date {RUN_DATE}" in text
    assert "equal to DuckDB's" in text  # pandas explode == DuckDB unnest
    assert "identical to DuckDB's" in text  # Spark SQL LATERAL VIEW explode == DuckDB unnest
    rows = int(text.split("Spark SQL: ")[1].split(" item rows")[0].replace(",", ""))
    assert rows > 0


@pytest.mark.spark
def test_run_health_shows_runs_stages_and_a_plot(tiny_lake, tmp_path):
    nb = _runner().execute(NOTEBOOKS / "run_health.ipynb", {"LAKE": str(tiny_lake)}, cwd=tmp_path)
    text = _text(nb)
    stage_rows = re.search(r"ops/run_log: Delta version \d+, \d+ rows \((\d+) command rows, (\d+) stage rows\)", text)
    assert stage_rows and int(stage_rows[1]) >= 1 and int(stage_rows[2]) == 6  # nightly: 6 stages
    assert "nightly" in text and "succeeded" in text
    # the tiny lake's nightly wrote one row per stage: the per-stage table is shown
    assert "no stage rows" not in text and "recommend" in text
    assert "0 of " in text  # no failures in a clean run
    assert _images(nb) == 1


def test_run_health_without_stage_column(tmp_path):
    """A run log written before the `stage` column existed (and with a failure) still renders."""
    import pandas as pd
    import pyarrow as pa
    from deltalake import write_deltalake

    t0 = pd.Timestamp("2020-06-14 02:00", tz="UTC")
    schema = pa.schema([("run_id", pa.string()), ("command", pa.string()), ("run_date", pa.date32()),
                        ("status", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
                        ("ended_at", pa.timestamp("us", tz="UTC")), ("counts", pa.map_(pa.string(), pa.int64())),
                        ("message", pa.string()), ("code_version", pa.string()), ("config_json", pa.string())])
    rows = [("r1", "nightly", "succeeded", 0, 300, [("transactions_train.written", 614)], "nightly done"),
            ("r2", "ingest", "failed", 3600, 3630, None, "bad input: transactions_train.csv missing")]
    table = pa.Table.from_pylist([
        {"run_id": run_id, "command": command, "run_date": t0.date(), "status": status,
         "started_at": t0 + pd.Timedelta(seconds=start), "ended_at": t0 + pd.Timedelta(seconds=end),
         "counts": counts, "message": message, "code_version": "0.1.0", "config_json": "{}"}
        for run_id, command, status, start, end, counts, message in rows], schema=schema)
    lake = tmp_path / "lake"
    write_deltalake(str(lake / "ops" / "run_log"), table)
    nb = _runner().execute(NOTEBOOKS / "run_health.ipynb", {"LAKE": str(lake)}, cwd=tmp_path)
    text = _text(nb)
    assert "2 rows (2 command rows, 0 stage rows)" in text
    assert "no stage rows" in text
    assert "1 of 2 rows did not succeed" in text and "transactions_train.csv missing" in text
    assert _images(nb) == 1


def test_evaluation_report_shows_tables_quality_bar_and_plots(tmp_path):
    """The notebook over a folder written by write_report (records built as in tests/evaluation/test_report.py).

    A real `fashion-meta evaluate` takes minutes even on a tiny shop; the folder's format is what matters here,
    and write_report is the code that writes it.
    """
    from fashion_meta.evaluation.report import write_report

    def record(set_name, method, k, seed, ndcg):
        metrics = {"ndcg@12": ndcg, "recall@12": ndcg + 0.1, "map@12": ndcg - 0.1, "hit_rate@12": ndcg + 0.2}
        return {"set": set_name, "method": method, "k": k, "seed": seed, "customers": 10, "units": 2,
                "metrics": metrics, "ci": {m: [v - 0.05, v + 0.05] for m, v in metrics.items()},
                "per_category": {"Top": ndcg, "Dress": ndcg / 2}}

    records = [record(s, m, k, seed, base + 0.1 * (k > 0) + 0.01 * seed)
               for seed in (1, 2) for k in (0, 10)
               for s in ("new_categories", "warm_categories")
               for m, base in (("popularity", 0.2), ("content", 0.25), ("warm", 0.3), ("maml", 0.35))]
    eval_dir = tmp_path / "eval"
    write_report(records, eval_dir, {"cutoff": "2020-06-07", "seeds": [1, 2], "ks": [0, 10], "methods": ["maml"],
                                     "new_categories": "2", "new_groups": "0", "query_days": 7})
    nb = _runner().execute(NOTEBOOKS / "evaluation_report.ipynb", {"EVAL_DIR": str(eval_dir)}, cwd=tmp_path)
    text = _text(nb)
    assert f"{len(records)} records" in text
    assert "report.md states the same lines" in text
    assert "New categories, K=10: best meta maml" in text
    assert "0.4650 [0.415, 0.515]" in text  # maml at K=10: mean of 0.46 and 0.47 over the two seeds
    assert "hit_rate@12" in text and "Dress" in text
    assert _images(nb) == len(list(eval_dir.glob("*.png"))) == 4
    assert json.loads((eval_dir / "metrics.json").read_text())["meta"]["seeds"] == [1, 2]
