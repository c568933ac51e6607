"""The bad-input set under tests/data/bad/: each case lands in rejects with a reason or stops with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fashion_meta.cli import main

pytestmark = pytest.mark.spark
BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
QUICK = {"wrong_column_names", "mixed_row_errors", "quoted_commas"}  # the rest runs with the slow tests
CASES = [
    pytest.param(p.name, marks=() if p.name in QUICK else pytest.mark.slow)
    for p in sorted(BAD.iterdir())
    if (p / "expected.json").exists()
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_case(case, spark, lake_root, capsys):
    expected = json.loads((BAD / case / "expected.json").read_text())
    code = main(["ingest", "--input", str(BAD / case), "--lake", lake_root, "--log-level", "WARNING"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == expected["exit"], err
    if code != 0:
        error_lines = [line for line in err.splitlines() if "error:" in line]
        assert len(error_lines) == 1, err
        for word in expected["error"]:
            assert word in error_lines[0]
        assert not (Path(lake_root) / "bronze").exists(), "a failed ingest must write nothing"
        return

    bronze = f"{lake_root}/bronze"
    for name, rows in expected.get("written", {}).items():
        assert spark.read.format("delta").load(f"{bronze}/{name}").count() == rows, name
    rejects = spark.read.format("delta").load(f"{bronze}/rejects").collect()
    got = sorted((r.source_file, r.row_number, r.reason) for r in rejects)
    assert len(got) == len(expected["rejects"]), got
    for (file_name, row, reason), (want_file, want_row, want_reason) in zip(
        got, sorted(tuple(x) for x in expected["rejects"])
    ):
        assert (file_name, row) == (want_file, want_row)
        assert want_reason in reason, reason
    if "article_desc" in expected:
        article_id, desc = expected["article_desc"]
        row = spark.read.format("delta").load(f"{bronze}/articles").where(f"article_id = '{article_id}'").first()
        assert row.detail_desc == desc
        assert row.prod_name == "Tights, 20 den"
