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
    for stage in COMMANDS:
        assert stage in text


COMMANDS = ["generate", "ingest", "features", "tasks", "train", "recommend", "export", "evaluate", "materialize",
            "nightly", "maintain", "backfill-late"]


def test_every_subparser_is_listed_here():
    actions = [a for a in build_parser()._subparsers._group_actions if hasattr(a, "choices")]
    assert sorted(actions[0].choices) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
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
@pytest.mark.slow
def test_nightly_end_to_end_on_a_tiny_shop(spark, tmp_path, capsys, monkeypatch, tiny_nightly):
    """The session's nightly of the tiny shop (``tiny_nightly``: generate + nightly in its own process, the same
    shop and config this test used to build in-process), then in-process commands on a copy of its lake."""
    import shutil

    # "Top" launches on 2020-06-12, two days before the run date (launch_calendar of this shop): a new category
    lake_root = str(tmp_path / "lake")
    shutil.copytree(tiny_nightly.lake, lake_root)
    config = tmp_path / "small.toml"
    shutil.copyfile(tiny_nightly.config, config)
    manifest = json.loads(Path(lake_root, "task_files", "run_date=2020-06-14", "manifest.json").read_text())
    assert manifest["rows"]["total"] > 0 and len(manifest["holdout"]["categories"]) == 1
    current = json.loads(Path(lake_root, "models", "current.json").read_text())
    assert Path(lake_root, "models", current["version"], "model.safetensors").is_file()
    assert main(["materialize", "--lake", lake_root, "--run-date", "2020-06-14"]) == 0, capsys.readouterr().err
    assert Path(lake_root, "_feast", "online.db").stat().st_size > 0
    assert spark.read.format("delta").load(f"{lake_root}/bronze/transactions").count() > 0
    log_rows = spark.read.format("delta").load(f"{lake_root}/ops/run_log")
    runs = log_rows.where("stage IS NULL").orderBy("started_at").collect()
    assert [(r.command, r.status) for r in runs] == [("nightly", "succeeded"), ("materialize", "succeeded")]
    stages = log_rows.where("stage IS NOT NULL").orderBy("started_at").collect()  # one row per nightly stage
    assert [(r.stage, r.status, r.run_id) for r in stages] == [
        (s, "succeeded", runs[0].run_id) for s in ("ingest", "features", "tasks", "train", "recommend", "export")]
    assert stages[0].counts["transactions_train.written"] == runs[0].counts["transactions_train.written"]
    assert len({r.fingerprint for r in stages}) == 1
    assert runs[0].counts["transactions_train.written"] > 0
    assert runs[0].counts["task_rows.total"] == manifest["rows"]["total"]
    assert '"root"' in runs[0].config_json

    _check_recommend_stage(spark, lake_root, config, capsys, monkeypatch, tiny_nightly.output)


def _lists(spark, lake_root: str, run_date: str = "2020-06-14") -> dict:
    rows = spark.read.format("delta").load(f"{lake_root}/recommendations").where(f"run_date = '{run_date}'").collect()
    return {(r.category, r.customer_id): ([(i.article_id, i.score) for i in r["items"]], r.serving_mode) for r in rows}


def _check_recommend_stage(spark, lake_root: str, config: Path, capsys, monkeypatch, nightly_output: str) -> None:
    """After the nightly: summary, the new category's path, fallback contrast, idempotence, engines, export."""
    assert "categories by serving mode" in nightly_output
    summary = json.loads(Path(lake_root, "runs", "run_date=2020-06-14", "summary.json").read_text())
    assert set(summary["stage_seconds"]) == {"ingest", "features", "tasks", "train", "recommend", "export"}
    rec = summary["recommend"]
    assert "Top" in rec["new_categories"]["meta_adapted"]
    assert rec["adaptation"]["category Top"]["parameter_change_l1"] > 0  # adapted parameters moved
    first = _lists(spark, lake_root)
    customers = {c for _, c in first}
    categories = {cat for cat, _ in first}
    assert len(first) == rec["rows"] == len(customers) * len(categories) == len(customers) * 6
    assert {mode for (cat, _), (_, mode) in first.items() if cat == "Top"} == {"meta_adapted"}
    assert {mode for (cat, _), (_, mode) in first.items() if cat == "Dress"} <= {"warm", "meta_adapted", "fallback"}
    export = json.loads(Path(lake_root, "exports", "run_date=2020-06-14", "manifest.json").read_text())
    assert export["total_rows"] == len(first)

    # the same category without adaptation (every new unit falls back): the lists differ
    fallback = Path(config.parent, "fallback.toml")
    fallback.write_text(config.read_text() + "[recommend]\nmin_adapt_positives = 100000\n")
    base = ["--lake", lake_root, "--run-date", "2020-06-14"]
    assert main(["recommend", *base, "--config", str(fallback)]) == 0, capsys.readouterr().err
    unadapted = _lists(spark, lake_root)
    assert {mode for (cat, _), (_, mode) in unadapted.items() if cat == "Top"} == {"fallback"}
    top = [k for k in first if k[0] == "Top"]
    assert any([a for a, _ in first[k][0]] != [a for a, _ in unadapted[k][0]] for k in top)

    # idempotent rerun: the same rows again, nothing duplicated; the driver engine gives the same lists
    assert main(["recommend", *base, "--config", str(config)]) == 0, capsys.readouterr().err
    assert _lists(spark, lake_root) == first
    assert main(["recommend", *base, "--config", str(config), "--engine", "driver"]) == 0, capsys.readouterr().err
    again = _lists(spark, lake_root)
    assert again.keys() == first.keys()
    assert all([a for a, _ in again[k][0]] == [a for a, _ in first[k][0]] for k in first)
    assert spark.read.format("delta").load(f"{lake_root}/recommendations").count() == len(first)

    # a planted duplicate list fails the output checks: nothing is published, the previous lists stay
    from fashion_meta.recommend import serve

    real = serve.score_batch
    monkeypatch.setattr(serve, "score_batch", lambda table, plan: (lambda out: out.__class__.from_batches(
        [*out.to_batches(), *out.slice(0, 1).to_batches()], schema=out.schema))(real(table, plan)))
    capsys.readouterr()
    assert main(["recommend", *base, "--config", str(config), "--engine", "driver"]) == 1
    err = capsys.readouterr().err
    assert "output checks failed" in err and "duplicate" in err and "Traceback" not in err
    assert _lists(spark, lake_root) == again
