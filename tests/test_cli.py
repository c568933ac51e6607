"""The CLI: help lists the stages, errors are one line with the right exit code, nightly runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import subprocess
import sys

import pytest

from fashion_meta.cli import build_parser, main


def test_help_lists_every_stage():
    text = build_parser().format_help()
    for stage in ("generate", "ingest", "features", "tasks", "train", "materialize", "nightly"):
        assert stage in text


@pytest.mark.parametrize("command", ["generate", "ingest", "features", "tasks", "train", "materialize", "nightly"])
def test_every_subcommand_has_help(command):
    result = subprocess.run(
        [sys.executable, "-m", "fashion_meta.cli", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "usage: fashion-meta " + command in result.stdout


def test_bad_date_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nightly", "--input", "x", "--run-date", "2020-13-45"])
    assert exc.value.code == 2
    assert "not a date" in capsys.readouterr().err


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[lake]\nrot = 1\n")
    assert main(["generate", "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "error: unknown config key 'lake.rot'" in err
    assert "Traceback" not in err


def test_generate_then_invalid_spec(tmp_path, capsys):
    out = tmp_path / "shop"
    code = main(["generate", "--out", str(out), "--customers", "50", "--articles", "40", "--categories", "4",
                 "--days", "10", "--seed", "3"])
    assert code == 0
    assert (out / "transactions_train.csv").exists()
    # more categories than articles is refused with a clear line, not a traceback
    code = main(["generate", "--out", str(tmp_path / "x"), "--articles", "3", "--categories", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "error:" in err


@pytest.mark.spark
def test_nightly_end_to_end_on_a_tiny_shop(spark, tmp_path, lake_root, capsys):
    shop = tmp_path / "shop"
    assert main(["generate", "--out", str(shop), "--customers", "200", "--articles", "120", "--categories", "6",
                 "--days", "14", "--seed", "5"]) == 0
    config = tmp_path / "small.toml"
    config.write_text("[tasks]\nwindow_days = 14\nmin_support = 2\nmin_query = 2\n")
    code = main(["nightly", "--input", str(shop), "--lake", lake_root, "--run-date", "2020-06-14", "--config", str(config),
                 "--holdout-categories", "1"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads(Path(lake_root, "task_files", "run_date=2020-06-14", "manifest.json").read_text())
    assert manifest["rows"]["total"] > 0 and len(manifest["holdout"]["categories"]) == 1
    current = json.loads(Path(lake_root, "models", "current.json").read_text())
    assert Path(lake_root, "models", current["version"], "model.safetensors").is_file()
    assert main(["materialize", "--lake", lake_root, "--run-date", "2020-06-14"]) == 0, capsys.readouterr().err
    assert Path(lake_root, "_feast", "online.db").stat().st_size > 0
    assert spark.read.format("delta").load(f"{lake_root}/bronze/transactions").count() > 0
    runs = spark.read.format("delta").load(f"{lake_root}/ops/run_log").orderBy("started_at").collect()
    assert [(r.command, r.status) for r in runs] == [("nightly", "succeeded"), ("materialize", "succeeded")]
    assert runs[0].counts["transactions_train.written"] > 0
    assert runs[0].counts["task_rows.total"] == manifest["rows"]["total"]
    assert '"root"' in runs[0].config_json
