"""Registry round trip: same scores after load, card contents, no pickle anywhere, atomic current pointer."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch

from fashion_meta.model import checkpoint
from fashion_meta.model.checkpoint import (
    current_version, list_versions, load_model, promote, save_model,
)
from fashion_meta.model.towers import ModelConfig, build_model


def _save(dataset, registry, version, **kwargs):
    spec = dataset.spec
    model = build_model(spec.customer_input_dim, spec.article_input_dim, ModelConfig(hidden=(8,), dim=4), seed=2)
    kwargs.setdefault("git_commit", "0123abcd" * 5)
    save_model(registry, model, spec=spec, manifest=dataset.manifest, config={"method": "maml", "seed": 2},
               metrics={"val_loss": 0.4, "val_ndcg12": float("nan")}, adaptation={"kind": "meta", "steps": 1},
               version=version, **kwargs)
    return model


def test_round_trip_gives_the_same_scores_and_a_full_card(dataset, tmp_path):
    lrs = {"head.customer.bias": torch.full((4,), 0.25)}
    model = _save(dataset, tmp_path, "v1", inner_lrs=lrs)
    loaded = load_model(tmp_path, "v1")
    batch = dataset.by_role("validation")[0].query
    torch.testing.assert_close(loaded.model.score(None, batch.customer_inputs, batch.article_inputs),
                               model.score(None, batch.customer_inputs, batch.article_inputs), rtol=0, atol=0)
    assert loaded.spec == dataset.spec
    assert torch.equal(loaded.inner_lrs["head.customer.bias"], lrs["head.customer.bias"])
    card = json.loads((tmp_path / "v1" / "card.json").read_text())
    assert card["version"] == "v1" and card["format"] == "fashion-meta-model/1"
    assert card["git_commit"] == "0123abcd" * 5
    assert card["data_window"] == {"start": "2020-08-31", "end": "2020-09-28"}
    assert card["run_date"] == "2020-09-28" and card["task_dataset"]["feature_service"] == "meta_tasks_v1"
    assert card["config"] == {"method": "maml", "seed": 2}
    assert card["metrics"] == {"val_loss": 0.4, "val_ndcg12": None}  # NaN is not JSON: stored as null
    assert card["created_at"].endswith("Z") and card["architecture"]["dim"] == 4
    assert card["feature_spec"] == dataset.spec.to_dict()


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads the process's memory maps (Linux)")
def test_a_loaded_model_keeps_nothing_backed_by_its_weights_file(dataset, tmp_path):
    # safetensors maps the file; a tensor kept as loaded (not copied) keeps the mapping, and the file, alive
    import gc

    from safetensors.torch import load_file

    _save(dataset, tmp_path, "v1", inner_lrs={"head.customer.bias": torch.full((4,), 0.25)})
    weights = str((tmp_path / "v1" / "model.safetensors").resolve())
    raw = load_file(weights)  # the premise: tensors as safetensors loads them keep the file mapped
    assert weights in Path("/proc/self/maps").read_text()
    del raw
    gc.collect()
    loaded = load_model(tmp_path, "v1")
    gc.collect()
    assert loaded.inner_lrs is not None
    assert weights not in Path("/proc/self/maps").read_text(), "a loaded tensor is still backed by the file"
    torch.testing.assert_close(loaded.inner_lrs["head.customer.bias"], torch.full((4,), 0.25))


def test_files_are_safetensors_and_json_and_loading_never_unpickles(dataset, tmp_path, monkeypatch):
    _save(dataset, tmp_path, "v1")
    raw = (tmp_path / "v1" / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header length, then a JSON header
    header = json.loads(raw[8:8 + header_len])
    assert "head.customer.weight" in header and header["__metadata__"]["format"] == "fashion-meta-model/1"
    assert not raw.startswith(b"PK") and raw[:1] != b"\x80"  # not a torch zip archive, not a pickle stream
    json.loads((tmp_path / "v1" / "card.json").read_text())

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling is not allowed")

    for target, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(target, name, refuse)
    assert load_model(tmp_path, "v1").version == "v1"


def test_the_same_weights_give_the_same_file_bytes(dataset, tmp_path):
    """safetensors orders its metadata map arbitrarily: with more than one key two saves of the same weights
    differed in bytes about half the time; eight saves must give one file and one checksum."""
    files, checksums = set(), set()
    for i in range(8):
        _save(dataset, tmp_path / f"r{i}", "v1")
        files.add((tmp_path / f"r{i}" / "v1" / "model.safetensors").read_bytes())
        checksums.add(json.loads((tmp_path / f"r{i}" / "v1" / "card.json").read_text())["weights"]["sha256"])
    assert len(files) == 1 and len(checksums) == 1


def test_registry_versions_and_atomic_promotion(dataset, tmp_path):
    assert list_versions(tmp_path) == [] and current_version(tmp_path) is None
    with pytest.raises(ValueError, match="no current version"):
        load_model(tmp_path)
    _save(dataset, tmp_path, "2020-09-28-a")
    _save(dataset, tmp_path, "2020-09-29-b", promote_now=True)
    assert list_versions(tmp_path) == ["2020-09-28-a", "2020-09-29-b"]
    assert current_version(tmp_path) == "2020-09-29-b"
    promote(tmp_path, "2020-09-28-a")
    assert json.loads((tmp_path / "current.json").read_text())["version"] == "2020-09-28-a"
    assert load_model(tmp_path).version == "2020-09-28-a"
    with pytest.raises(ValueError, match="no such version"):
        promote(tmp_path, "nope")
    with pytest.raises(ValueError, match="already exists"):
        _save(dataset, tmp_path, "2020-09-28-a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2020-09-28-a", "2020-09-29-b", "current.json"]


def test_tampered_weights_are_refused(dataset, tmp_path):
    _save(dataset, tmp_path, "v1")
    path = tmp_path / "v1" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_model(tmp_path, "v1")


def test_git_commit_falls_back_to_unknown(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable to find
    assert checkpoint.detect_git_commit() == "unknown"
