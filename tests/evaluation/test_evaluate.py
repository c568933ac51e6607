"""`fashion-meta evaluate` end to end on a tiny generated shop (slow): per-K honesty, records, report, plots."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from fashion_meta.cli import main
from fashion_meta.model.towers import ModelConfig

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_pick_new_categories_takes_the_latest_launches(spark):
    from fashion_meta.errors import UsageError
    from fashion_meta.evaluation.run import pick_new_categories

    d = dt.date(2020, 3, 1)
    tx = spark.createDataFrame(
        [(d, "a1"), (d + dt.timedelta(days=5), "a2"), (d + dt.timedelta(days=9), "a3"), (d + dt.timedelta(days=9), "a3"),
         (d + dt.timedelta(days=30), "a4")],  # a4 sells only after the cutoff: not a candidate
        "t_dat date, article_id string")
    cats = spark.createDataFrame([("a1", "Old"), ("a2", "Mid"), ("a3", "New"), ("a4", "Later")],
                                 "article_id string, category string")
    cutoff = d + dt.timedelta(days=10)
    assert pick_new_categories(tx, cats, cutoff, "2") == ["Mid", "New"]
    assert pick_new_categories(tx, cats, cutoff, "Old") == ["Old"]
    with pytest.raises(UsageError, match="Later"):
        pick_new_categories(tx, cats, cutoff, "Later")
    with pytest.raises(UsageError):
        pick_new_categories(tx, cats, cutoff, "3")  # all of them: nothing warm left


def test_evaluate_on_a_tiny_shop(spark, tmp_path, capsys, monkeypatch):
    import deltalake
    import pandas as pd

    import fashion_meta.evaluation.run as run

    out = tmp_path / "eval"
    work = out / "work" / "seed=1"
    args = ["evaluate", "--holdout-categories", "2", "--holdout-groups", "1", "--out", str(out), "--ks", "0,10",
            "--seeds", "1", "--methods", "fomaml,transfer", "--epochs", "3", "--customers", "300",
            "--articles", "150", "--categories", "8", "--days", "45", "--window-days", "14",
            "--lake", str(tmp_path / "lake"),  # its run-log row goes there, not into ./lake
            "--config", str(tmp_path / "fashion-meta.toml")]
    # evaluate builds its models from the code defaults: a shop's [train] settings (here a smaller model) are not read
    (tmp_path / "fashion-meta.toml").write_text("[train]\ndim = 8\nhidden = [16]\n")
    # without --keep-work each K lake goes as soon as its K is evaluated: what the checks below need is read from
    # it just before the real removal, which must then leave nothing behind
    seen, removed, real_remove = {}, [], run._remove_tree

    def inspect_then_remove(path: Path) -> int:
        if path.name.startswith("k="):
            k = int(path.name[2:])
            tx = deltalake.DeltaTable(str(path / "bronze" / "transactions")).to_pandas()
            arts = deltalake.DeltaTable(str(path / "bronze" / "articles")).to_pandas()[
                ["article_id", "product_type_name", "first_seen_date"]]
            models = path / "models"
            found = next((path / "task_files").glob("run_date=*/manifest.json"), None)
            seen[k] = {
                "tx": tx.merge(arts, on="article_id"), "arts": arts,
                "models": sorted(p.name for p in models.iterdir()) if models.is_dir() else None,
                "fomaml_card": (json.loads((models / "fomaml" / "card.json").read_text())
                                if (models / "fomaml" / "card.json").is_file() else None),
                "pretrain_of_fomaml": (models / "runs" / "fomaml" / "pretrain").exists(),
                "manifest": json.loads(found.read_text()) if found else None,
                "source_present": (path.parent / "source").is_dir(),  # the source lake stays until the seed ends
                "records_saved": (path.parent / "records.json").is_file(),  # removed right after its K, not at the end
                "other_k_lakes": sorted(p.name for p in path.parent.glob("k=*") if p != path),
            }
        freed = real_remove(path)
        assert freed > 0 and not path.exists(), path
        removed.append(path.name)
        return freed

    monkeypatch.setattr(run, "_remove_tree", inspect_then_remove)
    code = main(args)
    assert code == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    # one K lake on disk at a time, each removed right after its K; the source lake once the records are saved
    assert removed == ["k=0", "k=10", "source"], removed
    assert seen[0]["other_k_lakes"] == [] and seen[10]["other_k_lakes"] == []
    assert seen[0]["source_present"] and seen[10]["source_present"]
    assert not seen[0]["records_saved"] and not seen[10]["records_saved"]
    assert err.count("its lake removed") == 2 and "its rebuilt lakes removed" in err
    assert sorted(p.name for p in work.iterdir()) == ["holdout.json", "records.json", "shop", "shop_spec.json"]
    report = json.loads((out / "metrics.json").read_text())
    assert '"customers": 300' in (work / "shop_spec.json").read_text()  # the shop's shape, kept
    records = report["records"]
    new = [r for r in records if r["set"] == "new_categories"]
    assert {r["k"] for r in new} == {0, 10}
    methods_at = lambda k: {r["method"] for r in new if r["k"] == k}  # noqa: E731
    assert {"popularity", "group_popularity", "content", "warm", "transfer", "fomaml"} <= methods_at(0)
    assert "from_scratch" not in methods_at(0) and "from_scratch" in methods_at(10)
    assert {r["set"] for r in records} == {"new_categories", "new_groups", "warm_categories"}
    for r in records:
        for name, value in r["metrics"].items():
            low, high = r["ci"][name]
            assert 0.0 <= low <= value <= high <= 1.0, (r["set"], r["method"], name)
        assert r["customers"] > 0
    text = (out / "report.md").read_text()
    assert "## Quality bar" in text and "## New categories" in text
    for png in ("new_categories_vs_k.png", "new_categories_per_unit.png", "new_groups_vs_k.png"):
        assert (out / png).stat().st_size > 1000

    # honesty: each K lake holds at most K purchases of the held-out categories before the cutoff, none after it
    cutoff = dt.date(2020, 6, 1) + dt.timedelta(days=45 - 1 - 7)
    held = report["meta"]["holdout"]["1"]["categories"]
    assert len(held) == 2 and report["meta"]["holdout"]["1"]["cutoff"] == cutoff.isoformat()
    for k in (0, 10):
        tx, arts = seen[k]["tx"], seen[k]["arts"]
        assert (pd.to_datetime(tx["t_dat"]).dt.date <= cutoff).all()
        launch = cutoff - dt.timedelta(days=7 - 1)  # [evaluate] launch_days = 7
        assert report["meta"]["launch_days"] == 7
        for category in held:
            bought = tx[tx["product_type_name"] == category]
            assert len(bought) <= k
            assert (pd.to_datetime(bought["t_dat"]).dt.date >= launch).all()  # launched 7 days before the cutoff
            # every article of a held-out category is first seen at its launch, sold or not
            first = arts.loc[arts["product_type_name"] == category, "first_seen_date"]
            assert len(first) and (pd.to_datetime(first).dt.date == launch).all(), (k, category)
        if k == 10:
            assert any((tx["product_type_name"] == c).any() for c in held)  # some support purchases were kept
        group = report["meta"]["holdout"]["1"]["user_groups"]
        assert len(group) == 1
    # models: trained once, on the K=0 lake's task files (a subset of K=10's data), and reused for K=10
    assert {"fomaml", "transfer"} <= set(seen[0]["models"])
    assert seen[10]["models"] is None
    # transfer trained first (though listed last); fomaml started from its weights instead of pretraining again
    assert seen[0]["fomaml_card"]["config"]["pretrained_from"] == str(work / "k=0" / "models" / "transfer")
    default, built = ModelConfig(), seen[0]["fomaml_card"]["architecture"]
    assert (default.dim, list(default.hidden)) != (8, [16])  # else the config file below would prove nothing
    assert (built["dim"], built["hidden"]) == (default.dim, list(default.hidden))
    assert not seen[0]["pretrain_of_fomaml"]
    assert "K=0 task files" in report["meta"]["models"] and "K=0 task files" in text
    new_groups = [r for r in records if r["set"] == "new_groups" and r["k"] == 10]
    assert new_groups and all(r["units"] == 1 for r in new_groups)
    # the held-out group's unit holds its members' first K purchases: none at K=0, 1..10 support positives at K=10
    # (the tasks job gets the members, not the name: their day-before group from the truncated history is another)
    group = report["meta"]["holdout"]["1"]["user_groups"][0]
    for k, low, high in ((0, 0, 0), (10, 1, 10)):
        assert seen[k]["manifest"] is not None, f"k={k}: no task files manifest"
        manifest = seen[k]["manifest"]  # K=10's own tasks (support rows, tuning) are built too
        unit = [t for t in manifest["tasks"] if t["task_id"] == f"*|{group}"]
        positives = unit[0]["support_positives"] if unit else 0
        assert low <= positives <= high, (k, unit)
        assert manifest["holdout"]["user_groups"] == [group]
        if unit:
            assert unit[0]["role"] == "holdout" and unit[0]["support_rows"] > positives  # negatives drawn too
    assert "from_scratch" in {r["method"] for r in new_groups}  # only ranks when there is a support set

    # the finished seed's records are kept: the same command again reuses them instead of evaluating again, and
    # removes a K lake an interrupted run left behind; records, hold-out and the generated shop stay
    left = work / "k=10" / "bronze"
    left.mkdir(parents=True)
    (left / "part-0.parquet").write_bytes(b"x" * 2048)
    monkeypatch.setattr(run, "_remove_tree", real_remove)  # not a lake to inspect
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "seed 1: %d records of an earlier run" % len(report["records"]) in err
    assert "rebuilt lakes removed" in err
    assert json.loads((out / "metrics.json").read_text())["records"] == report["records"]
    assert sorted(p.name for p in work.iterdir()) == ["holdout.json", "records.json", "shop", "shop_spec.json"]
    assert (work / "shop" / "transactions_train.csv").is_file()
