"""Optional experiment tracking of train(): MLflow (file store) and W&B (offline), read back from what they wrote."""

from __future__ import annotations

import json

import pytest

from fashion_meta.model import tracking
from fashion_meta.model.train import train

from .test_train import TINY


def test_flatten_nests_with_dots_and_stringifies_lists():
    assert tracking.flatten({"meta": {"inner_lr": 0.1, "adapt": None}, "model": {"hidden": [8, 4]}, "seed": 3}) == {
        "meta.inner_lr": 0.1, "meta.adapt": None, "model.hidden": "[8, 4]", "seed": 3}


def test_unknown_or_missing_tracker_is_a_one_line_error_before_training(task_folder, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="expected one of"):
        train(task_folder, tmp_path, "fomaml", tracking="tensorboard", **TINY)
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r"mlflow is not installed: .*pip install mlflow-skinny"):
        train(task_folder, tmp_path, "fomaml", tracking="mlflow", **TINY)
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_mlflow_run_has_params_every_epoch_final_metrics_and_the_model(task_folder, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    result = train(task_folder, tmp_path, "fomaml", seed=3, version="v-tracked", tracking="mlflow", **TINY)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fashion-meta")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "v-tracked" and run.info.status == "FINISHED"
    assert run.data.params["method"] == "fomaml" and run.data.params["meta.seed"] == "3"
    assert run.data.params["model.hidden"] in ("(8,)", "[8]")
    epochs = json.loads((result.model_dir / "logs" / "metrics.json").read_text())["epochs"]
    history = client.get_metric_history(run.info.run_id, "train_loss")
    trained = [e for e in epochs if "train_loss" in e]  # epoch 0 validates the pretrained start, no train loss
    assert [(m.step, m.value) for m in history] == [(e["epoch"], pytest.approx(e["train_loss"])) for e in trained]
    assert run.data.metrics["final.val_loss"] == pytest.approx(result.metrics["val_loss"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"card.json", "model.safetensors"} <= artifacts


def test_a_failing_tracker_never_breaks_training(task_folder, tmp_path, monkeypatch, caplog):
    pytest.importorskip("mlflow")

    def broken(self, values, step):
        raise ConnectionError("tracking server unreachable")

    monkeypatch.setattr(tracking.MlflowTracker, "_log_metrics", broken)
    result = train(task_folder, tmp_path, "fomaml", seed=3, version="v-broken", tracking="mlflow", **TINY)
    assert (result.model_dir / "model.safetensors").is_file() and result.metrics["epochs_run"] == 2
    warnings = [r for r in caplog.records if "experiment tracking (mlflow) failed" in r.getMessage()]
    assert len(warnings) == 1  # said once, then switched off


def test_wandb_offline_run_records_every_epoch(task_folder, tmp_path, caplog):
    pytest.importorskip("wandb")
    with caplog.at_level("WARNING", logger="fashion_meta"):
        result = train(task_folder, tmp_path, "transfer", seed=3, version="v-wandb", tracking="wandb", **TINY)
    # a W&B call that raised switches the tracker off with a warning (training goes on); name it if it happened
    switched_off = [r.getMessage() for r in caplog.records if "experiment tracking" in r.getMessage()]
    assert not switched_off, switched_off
    runs = sorted((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    epochs = json.loads((result.model_dir / "logs" / "metrics.json").read_text())["epochs"]
    from wandb.proto import wandb_internal_pb2

    logged, kinds = [], []
    for data in _wandb_records(next(runs[0].glob("*.wandb")).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kinds.append(record.WhichOneof("record_type"))
        if kinds[-1] == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            logged.append((items["_step"], items["train_loss"]))
    # on failure, say what the run file did hold (record kinds in order) and what W&B's core logged
    debug = "".join(p.read_text()[-2000:] for p in runs[0].glob("logs/debug*.log"))
    assert logged == [(e["epoch"], pytest.approx(e["train_loss"])) for e in epochs], (kinds, debug)


def _wandb_records(raw: bytes, block: int = 32768):
    """The protobuf payloads of a W&B run file (a LevelDB-style log: 7-byte header, then 32 KiB blocks of records
    with a 7-byte header each: crc32 (4), length (2, little endian), type (1 full, 2 first, 3 middle, 4 last))."""
    assert raw[:4] == b":W&B", raw[:8]
    pos, pending = 7, b""
    while pos + 7 <= len(raw):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        length, kind = int.from_bytes(raw[pos + 4:pos + 6], "little"), raw[pos + 6]
        data = raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            yield pending
            pending = b""


def test_train_command_tracks_with_mlflow_and_refuses_a_missing_tracker(task_folder, tmp_path, capsys, monkeypatch):
    """`fashion-meta train --tracking mlflow` on a lake; a tracker that is not installed is exit 2, one line."""
    pytest.importorskip("mlflow")
    import importlib.util
    import shutil

    from fashion_meta.cli import main

    from .conftest import RUN_DATE

    lake = tmp_path / "lake"
    shutil.copytree(task_folder, lake / "task_files" / f"run_date={RUN_DATE}")
    base = ["train", "--run-date", RUN_DATE.isoformat(), "--lake", str(lake), "--epochs", "1", "--no-progress",
            "--force-promote"]
    assert main([*base, "--tracking", "mlflow"]) == 0, capsys.readouterr().err
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{(lake / 'models').resolve() / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("fashion-meta").experiment_id])
    current = json.loads((lake / "models" / "current.json").read_text())["version"]
    assert run.info.run_name == current and run.data.params["method"] == "maml"

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else find_spec(name, *a))
    capsys.readouterr()
    assert main([*base, "--tracking", "wandb"]) == 2
    err = capsys.readouterr().err
    assert "wandb is not installed" in err.strip().splitlines()[-1] and "Traceback" not in err
