"""train(): registry output, determinism, holdout isolation, every method, and CUDA vs CPU."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from safetensors.torch import load_file

from fashion_meta.model.checkpoint import current_version, list_versions, load_model
from fashion_meta.model.data import load_task_dataset
from fashion_meta.model.meta import MetaConfig
from fashion_meta.model.ranking import SupportSet, adapted_ranker
from fashion_meta.model.towers import ModelConfig
from fashion_meta.model.train import resolve_device, train
from fashion_meta.model.transfer import PretrainConfig

from .conftest import (
    ARTICLE_COLUMNS, ARTICLE_VECTOR, VECTOR_DIM, first_rows, plans, poison, raw_rows, write_task_dataset,
)

TINY = {
    "model_config": ModelConfig(hidden=(8,), dim=4),
    "meta_config": MetaConfig(epochs=2, patience=2, inner_steps=1, inner_lr=0.5, outer_lr=0.01, meta_batch=8),
    "pretrain_config": PretrainConfig(epochs=2, batch_size=128, fine_tune_steps=1, fine_tune_lr=0.5),
    "progress": False,
    "git_commit": "unknown",
    "device": "cpu",
}


def _weights(result):
    return load_file(str(result.model_dir / "model.safetensors"))


def test_train_writes_and_promotes_a_version(task_folder, dataset, tmp_path):
    result = train(task_folder, tmp_path, "maml", seed=3, version="v-maml", **TINY)
    assert list_versions(tmp_path) == ["v-maml"] and current_version(tmp_path) == "v-maml"
    card = json.loads((result.model_dir / "card.json").read_text())
    assert card["config"]["method"] == "maml" and card["config"]["meta"]["seed"] == 3
    assert card["adaptation"]["kind"] == "meta" and card["adaptation"]["steps"] == 1
    assert card["data_window"] == dataset.manifest["window"]
    assert card["metrics"] == json.loads(json.dumps(result.metrics))
    assert math.isfinite(result.metrics["val_loss"]) and 0 <= result.metrics["val_ndcg12"] <= 1
    assert result.metrics["epochs_run"] == 2 and result.device == "cpu"
    assert card["logs"] == ["logs/metrics.csv", "logs/metrics.json"]
    epochs = json.loads((result.model_dir / "logs" / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2]  # the default start (pretrained) is validated as epoch 0
    holdout = {t.task_id for t in dataset.by_role("holdout")}
    assert holdout and not holdout & set(result.train_task_ids + result.validation_task_ids)


def test_same_seed_gives_the_same_model(task_folder, tmp_path):
    a = train(task_folder, tmp_path, "fomaml", seed=5, version="a", **TINY)
    b = train(task_folder, tmp_path, "fomaml", seed=5, version="b", **TINY)
    c = train(task_folder, tmp_path, "fomaml", seed=6, version="c", **TINY)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a.metrics == b.metrics


def test_meta_training_can_start_from_the_pretrained_model(task_folder, tmp_path):
    from dataclasses import replace

    transfer = train(task_folder, tmp_path, "transfer", seed=5, version="transfer", **TINY)
    kept = {**TINY, "meta_config": replace(TINY["meta_config"], init="pretrained", outer_lr=50.0)}
    wrecked = train(task_folder, tmp_path, "fomaml", seed=5, version="kept", **kept)
    card = json.loads((wrecked.model_dir / "card.json").read_text())
    assert card["config"]["meta"]["init"] == "pretrained" and card["config"]["pretrain"]["epochs"] == 2
    epochs = json.loads((wrecked.model_dir / "logs" / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2] and "train_loss" not in epochs[0]  # the start, validated
    assert (tmp_path / "runs" / "kept" / "pretrain" / "metrics.json").is_file()
    # an outer step of 50 wrecks the model: early stopping keeps the start, which is the transfer learner's
    # pretrained model bit for bit (same seed, same pretraining)
    assert wrecked.metrics["best_epoch"] == 0 and epochs[1]["val_loss"] > epochs[0]["val_loss"]
    assert wrecked.metrics["epochs_run"] == 2
    wt, wk = _weights(transfer), _weights(wrecked)
    assert all(torch.equal(wt[k], wk[k]) for k in wt)
    # a usable outer step moves on from it; from a random start the model is a different one
    moved = train(task_folder, tmp_path, "fomaml", seed=5, version="moved",
                  **{**TINY, "meta_config": replace(TINY["meta_config"], init="pretrained")})
    random_start = _weights(train(task_folder, tmp_path, "fomaml", seed=5, version="random",
                                  **{**TINY, "meta_config": replace(TINY["meta_config"], init="random")}))
    wm = _weights(moved)
    assert not all(torch.equal(wt[k], wm[k]) for k in wt) and not all(torch.equal(wm[k], random_start[k]) for k in wm)
    with pytest.raises(ValueError, match="init must be one of"):
        MetaConfig(init="warm")


def test_meta_training_reuses_a_matching_transfer_model(task_folder, tmp_path):
    """pretrained_from gives the model that pretraining again would (bit for bit) and refuses a foreign one."""
    from dataclasses import replace

    pre = {**TINY, "meta_config": replace(TINY["meta_config"], init="pretrained")}
    transfer = train(task_folder, tmp_path, "transfer", seed=5, version="transfer", **TINY)
    again = train(task_folder, tmp_path, "fomaml", seed=5, version="again", **pre)
    reused = train(task_folder, tmp_path, "fomaml", seed=5, version="reused", pretrained_from=transfer.model_dir,
                   **pre)
    wa, wr = _weights(again), _weights(reused)
    assert all(torch.equal(wa[k], wr[k]) for k in wa)
    assert reused.metrics == again.metrics
    assert not (tmp_path / "runs" / "reused" / "pretrain").exists()  # no second pretraining
    card = json.loads((reused.model_dir / "card.json").read_text())
    assert card["config"]["pretrained_from"] == str(transfer.model_dir)
    # another seed, another pretraining config, or a meta-learner's folder: refused, saying what differs
    with pytest.raises(ValueError, match="seed 5 != 6"):
        train(task_folder, tmp_path, "fomaml", seed=6, version="s6", pretrained_from=transfer.model_dir, **pre)
    other = {**pre, "pretrain_config": replace(TINY["pretrain_config"], lr=0.5)}
    with pytest.raises(ValueError, match="pretraining config"):
        train(task_folder, tmp_path, "fomaml", seed=5, version="lr", pretrained_from=transfer.model_dir, **other)
    with pytest.raises(ValueError, match="method 'fomaml' != 'transfer'"):
        train(task_folder, tmp_path, "maml", seed=5, version="m", pretrained_from=again.model_dir, **pre)
    with pytest.raises(ValueError, match="not 'transfer'"):
        train(task_folder, tmp_path, "transfer", seed=5, version="t", pretrained_from=transfer.model_dir, **TINY)


def _bad_vectors(table: pa.Table) -> pa.Table:
    """Holdout rows whose vectors have the wrong length: reading them at all would raise."""
    bad = pa.array([[0.0] * (VECTOR_DIM + 3)] * table.num_rows, type=pa.list_(pa.float32()))
    return poison(table).set_column(table.schema.get_field_index(ARTICLE_VECTOR), ARTICLE_VECTOR, bad)


def test_holdout_rows_never_reach_training(tmp_path):
    task_plans = plans(6, 2, 2)
    write_task_dataset(tmp_path / "clean", task_plans)
    write_task_dataset(tmp_path / "poisoned", task_plans, transform_role={"holdout": _bad_vectors})
    with pytest.raises(ValueError, match="vectors must have length"):
        load_task_dataset(tmp_path / "poisoned")  # the poison is real
    for method in ("anil", "transfer"):
        clean = train(tmp_path / "clean", tmp_path / "reg", method, seed=1, version=f"clean-{method}", **TINY)
        dirty = train(tmp_path / "poisoned", tmp_path / "reg", method, seed=1, version=f"dirty-{method}", **TINY)
        wc, wd = _weights(clean), _weights(dirty)
        assert all(torch.equal(wc[k], wd[k]) for k in wc)
        assert clean.metrics == dirty.metrics  # early stopping and metrics saw the same (validation) tasks


@pytest.mark.parametrize("method", ["fomaml", "anil", "metasgd", "transfer"])
def test_every_method_trains_and_serves(method, task_folder, dataset, tmp_path):
    result = train(task_folder, tmp_path, method, seed=0, version=method, **TINY)
    loaded = load_model(tmp_path)
    assert loaded.version == method
    assert loaded.card["adaptation"]["kind"] == ("fine_tune" if method == "transfer" else "meta")
    assert (loaded.inner_lrs is not None) == (method == "metasgd")
    if method == "anil":
        assert all(n.startswith("head.") for n in loaded.card["adaptation"]["adapt_names"])
    raw = raw_rows(task_folder)
    task = dataset.by_role("validation")[0]
    rows = raw.filter(pc.equal(raw.column("task_id"), task.task_id))
    support = rows.filter(pc.equal(rows.column("split"), "support"))
    candidates = first_rows(rows, "article_id").select(["article_id", *ARTICLE_COLUMNS, ARTICLE_VECTOR])
    ranker = adapted_ranker(loaded).fit(SupportSet(support, {task.category: candidates}))
    ids, scores = ranker.recommend(first_rows(rows, "customer_id"), task.category, 12)
    assert ids.shape[1] == min(12, candidates.num_rows) and np.isfinite(scores).all()
    assert math.isfinite(result.metrics["val_loss"])


def test_unknown_method_and_missing_cuda_are_errors(task_folder, tmp_path):
    with pytest.raises(ValueError, match="unknown training method"):
        train(task_folder, tmp_path, "reptile", **TINY)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_and_cpu_train_the_same_model(task_folder, tmp_path):
    cpu = train(task_folder, tmp_path, "maml", seed=2, version="cpu", **TINY)
    gpu = train(task_folder, tmp_path, "maml", seed=2, version="gpu", **{**TINY, "device": "cuda"})
    assert gpu.device.startswith("cuda")
    wc, wg = _weights(cpu), _weights(gpu)
    for k in wc:
        torch.testing.assert_close(wg[k], wc[k], rtol=1e-4, atol=1e-5)
    assert gpu.metrics["val_loss"] == pytest.approx(cpu.metrics["val_loss"], rel=1e-4)
    assert gpu.metrics["best_epoch"] == cpu.metrics["best_epoch"]
