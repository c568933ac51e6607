"""Model registry: safetensors weights plus a JSON card per version, and an atomic ``current.json`` pointer.

Layout::

    <registry>/<version>/model.safetensors   weights (and Meta-SGD inner learning rates as inner_lr.*)
    <registry>/<version>/card.json           version, created_at, git commit, data window, config, metrics,
                                             feature spec, adaptation recipe, weights checksum
    <registry>/<version>/logs/...            training logs, when given
    <registry>/current.json                  {"version": ..., "promoted_at": ...}

Nothing here unpickles: weights are read with safetensors, everything else is JSON, and ``torch.load`` is
never called. A version folder is written under a temporary name and renamed into place, so a reader never
sees half a version; ``current.json`` is replaced atomically (write temp + ``os.replace``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .logs import write_json_atomic
from .spec import FeatureSpec
from .towers import TwoTower

CARD_FORMAT = "fashion-meta-model/1"
WEIGHTS = "model.safetensors"
CARD = "card.json"
CURRENT = "current.json"
INNER_LR_PREFIX = "inner_lr."
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def detect_git_commit(cwd: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of the code's checkout, or "unknown" (no git, not a checkout, shipped wheel)."""
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{7,64}", commit) else "unknown"


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _json_ready(value.item())
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_version(version: str) -> str:
    if not _VERSION_RE.match(version):
        raise ValueError(f"invalid model version {version!r} (letters, digits, '.', '_', '-')")
    return version


@dataclass
class LoadedModel:
    """A model read back from the registry, with its feature spec and card."""

    version: str
    path: Path
    model: TwoTower
    spec: FeatureSpec
    card: dict[str, Any]
    inner_lrs: dict[str, torch.Tensor] | None

    def params(self) -> dict[str, torch.Tensor]:
        """The weights as a parameter dict (detached), ready for ``adapt`` and scoring."""
        return {n: p.detach() for n, p in self.model.named_parameters()}


def save_model(
    registry: str | Path,
    model: TwoTower,
    *,
    spec: FeatureSpec,
    manifest: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    adaptation: Mapping[str, Any] | None = None,
    inner_lrs: Mapping[str, torch.Tensor] | None = None,
    version: str | None = None,
    files: Mapping[str, str | Path] | None = None,
    git_commit: str | None = None,
    promote_now: bool = False,
) -> str:
    """Write a new version (never overwrites one); returns its name. ``files``: extra files, name -> source."""
    registry = Path(registry)
    registry.mkdir(parents=True, exist_ok=True)
    created = dt.datetime.now(dt.timezone.utc)
    version = _check_version(version or created.strftime("%Y%m%dT%H%M%S%fZ"))
    final = registry / version
    if final.exists():
        raise ValueError(f"model version {version!r} already exists in {registry}")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    for name, value in (inner_lrs or {}).items():
        tensors[INNER_LR_PREFIX + name] = value.detach().to("cpu").contiguous().clone()
    staging = registry / f".tmp-{version}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        # one metadata key: safetensors writes its metadata map in arbitrary order, so with two keys the same
        # weights gave files differing in bytes (and in the card's sha256); the version is the folder and the card's
        save_file(tensors, str(staging / WEIGHTS), metadata={"format": CARD_FORMAT})
        for name, source in (files or {}).items():
            target = staging / "logs" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        manifest = dict(manifest or {})
        card = {
            "format": CARD_FORMAT,
            "version": version,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "git_commit": git_commit if git_commit is not None else detect_git_commit(),
            "run_date": manifest.get("run_date"),
            "data_window": manifest.get("window"),
            "task_dataset": {k: manifest.get(k) for k in ("format", "feature_service", "seed",
                                                          "negatives_per_positive", "rows", "holdout")},
            "architecture": model.architecture(),
            "config": dict(config or {}),
            "metrics": dict(metrics or {}),
            "adaptation": dict(adaptation or {}),
            "feature_spec": spec.to_dict(),
            "weights": {"file": WEIGHTS, "sha256": _sha256(staging / WEIGHTS), "tensors": sorted(tensors)},
            "logs": sorted(f"logs/{n}" for n in (files or {})),
        }
        (staging / CARD).write_text(json.dumps(_json_ready(card), indent=2, sort_keys=True, allow_nan=False) + "\n",
                                    encoding="utf-8")
        os.rename(staging, final)  # atomic; fails rather than merging into an existing version
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if promote_now:
        promote(registry, version)
    return version


def load_version_dir(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load one version folder (card.json + model.safetensors), checking format and checksum."""
    path = Path(path)
    card_path, weights_path = path / CARD, path / WEIGHTS
    for needed in (card_path, weights_path):
        if not needed.is_file():
            raise ValueError(f"model folder {path}: missing {needed.name}")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card.get("format") != CARD_FORMAT:
        raise ValueError(f"{card_path}: unsupported format {card.get('format')!r} (expected {CARD_FORMAT!r})")
    expected = card.get("weights", {}).get("sha256")
    if expected != _sha256(weights_path):
        raise ValueError(f"{weights_path}: checksum does not match the card")
    tensors = load_file(str(weights_path), device=str(device))
    # copied: nothing of the loaded model may stay backed by the file (a caller may delete the version folder)
    inner = {k[len(INNER_LR_PREFIX):]: v.clone() for k, v in tensors.items() if k.startswith(INNER_LR_PREFIX)}
    state = {k: v for k, v in tensors.items() if not k.startswith(INNER_LR_PREFIX)}
    model = TwoTower.from_architecture(card["architecture"])
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return LoadedModel(version=card["version"], path=path, model=model,
                       spec=FeatureSpec.from_dict(card["feature_spec"]), card=card, inner_lrs=inner or None)


def list_versions(registry: str | Path) -> list[str]:
    """Complete versions in the registry (folders with a card), sorted by name."""
    registry = Path(registry)
    if not registry.is_dir():
        return []
    return sorted(p.name for p in registry.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / CARD).is_file() and (p / WEIGHTS).is_file())


def current_version(registry: str | Path) -> str | None:
    """The promoted version, or None when nothing was promoted."""
    path = Path(registry) / CURRENT
    if not path.is_file():
        return None
    return str(json.loads(path.read_text(encoding="utf-8"))["version"])


def promote(registry: str | Path, version: str) -> None:
    """Point ``current.json`` at ``version`` (atomically)."""
    registry = Path(registry)
    if version not in list_versions(registry):
        raise ValueError(f"cannot promote {version!r}: no such version in {registry}")
    write_json_atomic(registry / CURRENT, {
        "version": version,
        "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
    })


def load_model(registry: str | Path, version: str | None = None, *,
               device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``version`` (default: the current one) from the registry."""
    registry = Path(registry)
    if version is None:
        version = current_version(registry)
        if version is None:
            raise ValueError(f"model registry {registry}: no current version (promote one first)")
    return load_version_dir(registry / _check_version(version), device=device)
