"""A finished seed's records are kept beside its work folder and reused by a rerun with the same fingerprint only."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from fashion_meta.evaluation.run import (
    SEED_RECORDS, EvalParams, clear_seed_work, load_seed_records, save_seed_records, seed_fingerprint,
)

RECORDS = [{"set": "new_categories", "method": "fomaml", "k": 50, "seed": 1001, "metrics": {"ndcg@12": 0.25}}]


def _fingerprint(**changes):
    knobs = {"cutoff": dt.date(2020, 11, 20), "holdout_categories": "6", "ks": (0, 50), "seed": 1001, **changes}
    params = EvalParams(**knobs)
    return seed_fingerprint(params, "generated {'customers': 20000}", "0.1.0+abc1234")


def test_a_saved_seed_is_reused_with_the_same_fingerprint(tmp_path):
    fingerprint = _fingerprint()
    assert json.loads(json.dumps(fingerprint)) == fingerprint  # JSON round trip keeps it equal (dates, tuples)
    path = save_seed_records(tmp_path / "seed=1001", fingerprint, RECORDS)
    assert path == tmp_path / "seed=1001" / SEED_RECORDS
    assert [p.name for p in path.parent.iterdir()] == [SEED_RECORDS]  # no temp file left
    assert load_seed_records(path.parent, _fingerprint()) == RECORDS


def test_other_settings_code_or_input_rerun_the_seed(tmp_path, caplog):
    seed_dir = tmp_path / "seed=1001"
    save_seed_records(seed_dir, _fingerprint(), RECORDS)
    with caplog.at_level(logging.INFO, logger="fashion_meta.evaluation.run"):
        assert load_seed_records(seed_dir, _fingerprint(ks=(0, 10, 50))) is None
    assert "other params" in caplog.text
    other_code = {**_fingerprint(), "code": "0.1.0+fff0000"}
    assert load_seed_records(seed_dir, other_code) is None
    other_input = {**_fingerprint(), "input": "/data/hm"}
    assert load_seed_records(seed_dir, other_input) is None
    assert load_seed_records(tmp_path / "seed=1002", _fingerprint()) is None  # never run


def test_an_unreadable_file_reruns_the_seed_with_a_warning(tmp_path, caplog):
    seed_dir = tmp_path / "seed=1001"
    seed_dir.mkdir()
    (seed_dir / SEED_RECORDS).write_text('{"fingerprint": {"par', encoding="utf-8")  # cut short
    with caplog.at_level(logging.WARNING, logger="fashion_meta.evaluation.run"):
        assert load_seed_records(seed_dir, _fingerprint()) is None
    assert "unreadable" in caplog.text


def test_a_record_does_not_depend_on_the_customer_order():
    """Spark returns customers in another order from run to run; the record (means, intervals, per-category NDCG)
    must be bit-identical for any order of the same per-customer values."""
    import numpy as np

    from fashion_meta.evaluation.run import _record

    rng = np.random.default_rng(3)
    values = {f"{cat}\t{name}": list(rng.random(97) / 3.0) for cat in ("a", "b") for name in ("ndcg@12", "hit@12")}
    shuffled = {key: list(rng.permutation(v)) for key, v in reversed(list(values.items()))}
    record = _record("new_categories", "maml", 50, 1001, values, 2)
    assert record == _record("new_categories", "maml", 50, 1001, shuffled, 2)


def test_clearing_a_seed_removes_only_its_rebuilt_lakes_and_only_once_finished(tmp_path):
    seed_dir = tmp_path / "seed=5"
    for name in ("source/bronze/articles", "k=0/features/x", "k=10/models/maml", "shop"):
        (seed_dir / name).mkdir(parents=True)
    (seed_dir / "k=0" / "features" / "x" / "part-0.parquet").write_bytes(b"x" * 1000)
    (seed_dir / "source" / "bronze" / "articles" / "part-0.parquet").write_bytes(b"y" * 500)
    (seed_dir / "shop" / "transactions_train.csv").write_text("t_dat\n")
    (seed_dir / "holdout.json").write_text("{}")
    (seed_dir / "shop_spec.json").write_text("{}")
    (seed_dir / "kept_notes").mkdir()  # not a lake this code made: left alone
    with pytest.raises(RuntimeError, match="not finished"):
        clear_seed_work(seed_dir)  # no records yet: a rerun needs nothing from it, but it is kept until then
    assert (seed_dir / "k=0").is_dir()
    save_seed_records(seed_dir, {"params": {}}, [])
    assert clear_seed_work(seed_dir) == 1500
    assert sorted(p.name for p in seed_dir.iterdir()) == [
        "holdout.json", "kept_notes", "records.json", "shop", "shop_spec.json"]
    assert (seed_dir / "shop" / "transactions_train.csv").is_file()
    assert clear_seed_work(seed_dir) == 0  # again: nothing left to remove


@pytest.mark.parametrize("keep_work", [False, True])
def test_without_keep_work_each_k_lake_goes_once_its_k_is_evaluated(tmp_path, monkeypatch, keep_work):
    """The disk holds the source lake and one K lake at a time (unless --keep-work), from the smallest K up, and the
    models of the smallest K (in memory) still reach the larger K. Building and evaluating a K lake are replaced by
    stand-ins that write a folder and record what they see (the real ones: tests/evaluation/test_evaluate.py)."""
    from fashion_meta.evaluation import run

    work = tmp_path / "seed=3"
    source = work / "source"
    (source / "bronze").mkdir(parents=True)
    for stale in ("k=50", "k=7"):  # left by an earlier run (k=7: another --ks): never reused, removed first
        (work / stale).mkdir()
        (work / stale / "stale").write_text("old")
    seen = []

    def build(spark, source_lake, target, params, k, new_categories, group_members):
        assert source_lake == str(source) and source.is_dir()
        seen.append((k, sorted(p.name for p in work.iterdir() if p.name.startswith("k="))))
        Path(target, "bronze").mkdir(parents=True)
        Path(target, "bronze", "part-0.parquet").write_bytes(b"x" * 3_000_000)

    def evaluate(spark, k_lake, params, k, new_categories, new_groups, truth, group_of, *, group_members=None,
                 trained=None, progress=None):
        assert Path(k_lake, "bronze", "part-0.parquet").is_file()
        models = {"fomaml": f"trained on K={k}"}
        return [f"record of K={k} with the model {(trained or models)['fomaml']}"], models

    monkeypatch.setattr(run, "build_k_lake", build)
    monkeypatch.setattr(run, "evaluate_k", evaluate)
    monkeypatch.setattr(run, "release_memory", lambda spark, keep_cache: None)
    lines = []
    params = EvalParams(cutoff=dt.date(2020, 11, 20), holdout_categories="1", ks=(10, 0, 50), seed=3)
    records = run._evaluate_each_k(None, str(source), work, params, ["New"], [], None, {}, None, lines.append,
                                   keep_work)
    assert records == [f"record of K={k} with the model trained on K=0" for k in (0, 10, 50)]
    assert not (work / "k=50" / "stale").exists()
    assert [line.split("/")[-1] for line in lines[:2]] == [f"k={k} of an earlier run (0.00 GB freed)" for k in (50, 7)]
    if keep_work:
        assert seen == [(0, []), (10, ["k=0"]), (50, ["k=0", "k=10"])]
        assert sorted(p.name for p in work.iterdir()) == ["k=0", "k=10", "k=50", "source"]
        assert not any("lake removed" in line for line in lines)
    else:  # no other K lake on disk while one is built
        assert seen == [(0, []), (10, []), (50, [])]
        assert sorted(p.name for p in work.iterdir()) == ["source"]  # clear_seed_work takes it once records are saved
        assert sum("its lake removed (0.00 GB freed" in line for line in lines) == 3, lines


def test_a_k_lake_that_cannot_be_removed_does_not_lose_its_records(tmp_path, monkeypatch):
    from fashion_meta.evaluation import run

    def build(spark, source_lake, target, *args):
        Path(target).mkdir(parents=True)

    def evaluate(spark, k_lake, params, k, *args, trained=None, **kwargs):
        return [f"record of K={k}"], {"fomaml": k}

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(run, "build_k_lake", build)
    monkeypatch.setattr(run, "evaluate_k", evaluate)
    monkeypatch.setattr(run, "release_memory", lambda spark, keep_cache: None)
    monkeypatch.setattr(run, "_remove_tree", refuse)
    lines = []
    params = EvalParams(cutoff=dt.date(2020, 11, 20), holdout_categories="1", ks=(0, 10), seed=3)
    records = run._evaluate_each_k(None, str(tmp_path / "source"), tmp_path, params, ["New"], [], None, {}, None,
                                   lines.append, False)
    assert records == ["record of K=0", "record of K=10"]
    assert all("could not be removed now ([Errno 13] Permission denied" in line for line in lines), lines


def test_evaluate_trains_with_the_products_softmax_weight():
    # evaluate does not read a shop's [train]; its models must still be trained as the product's defaults train them
    import tomllib

    from fashion_meta.config import DEFAULTS_FILE
    from fashion_meta.errors import UsageError

    defaults = tomllib.loads(DEFAULTS_FILE.read_text())
    params = EvalParams(cutoff=dt.date(2020, 11, 20), holdout_categories="1")
    assert params.softmax_weight == defaults["train"]["softmax_weight"]
    assert _fingerprint() != _fingerprint(softmax_weight=1.0)  # a changed weight is never served old records
    with pytest.raises(UsageError, match="softmax_weight"):
        EvalParams(cutoff=dt.date(2020, 11, 20), holdout_categories="1", softmax_weight=-1.0).validate()
