"""Optional experiment tracking of training runs: MLflow or Weights & Biases (offline), next to the JSON/CSV log.

The per-epoch ``metrics.csv``/``metrics.json`` of :mod:`fashion_meta.model.logs` are always written; a tracker is
an extra sink, chosen with ``[train] tracking`` (``""`` = none, ``"mlflow"``, ``"wandb"``) and
``[train] tracking_uri``:

- **mlflow**: the run goes to ``tracking_uri`` (default ``sqlite:///<registry>/mlflow.db`` with artifacts in
  ``<registry>/mlartifacts``: browse with ``mlflow ui --backend-store-uri sqlite:///<registry>/mlflow.db``; MLflow's
  plain-folder store is deprecated). Params = the flattened training config, one metric row per epoch (step =
  epoch), the final metrics (``final.*``), the model folder (weights, card, logs) as artifacts. Needs ``mlflow``
  or ``mlflow-skinny`` (+ ``alembic`` for the SQLite store).
- **wandb**: always offline (this job never talks to a server); files under ``tracking_uri`` (default
  ``<registry>/wandb``); upload later with ``wandb sync``. Needs ``wandb``.

A tracker that is asked for but not installed is a one-line configuration error before training starts, never a
silent no-op. A tracker that fails while training is logged once and switched off: the run and its JSON/CSV log
go on. Nothing here unpickles anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("fashion_meta")

KINDS = ("", "mlflow", "wandb")
EXPERIMENT = "fashion-meta"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"meta": {"inner_lr": 0.1}} -> {"meta.inner_lr": 0.1}; lists become strings."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return out


def _numeric(row: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


class Tracker:
    """One run in an experiment tracker; every call is guarded so tracking never breaks training."""

    kind = ""

    def __init__(self) -> None:
        self.failed = False

    def _guard(self, what: str, fn, *args) -> None:
        if self.failed:
            return
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a tracker is optional; training goes on without it
            self.failed = True
            log.warning("experiment tracking (%s) failed while %s, switched off for this run: %s", self.kind, what, exc)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        step = int(row.get("epoch", 0))
        self._guard("logging an epoch", self._log_metrics, _numeric(row), step)

    def finish(self, metrics: Mapping[str, Any], artifacts: Path | None, ok: bool) -> None:
        self._guard("logging final metrics", self._log_summary, _numeric(metrics))
        if artifacts is not None:
            self._guard("uploading artifacts", self._log_artifacts, artifacts)
        self._guard("closing the run", self._close, ok)

    # backends implement these
    def _log_metrics(self, values: dict[str, float], step: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _log_summary(self, values: dict[str, float]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _log_artifacts(self, folder: Path) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _close(self, ok: bool) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class MlflowTracker(Tracker):
    kind = "mlflow"

    def __init__(self, uri: str, run_name: str, params: Mapping[str, Any], artifacts: str | None = None) -> None:
        super().__init__()
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = (experiment.experiment_id if experiment
                         else self.client.create_experiment(EXPERIMENT, artifact_location=artifacts))
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        self.uri = uri
        items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def _log_summary(self, values: dict[str, float]) -> None:
        self._log_metrics({f"final.{k}": v for k, v in values.items()}, 0)

    def _log_artifacts(self, folder: Path) -> None:
        self.client.log_artifacts(self.run_id, str(folder))

    def _close(self, ok: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


class WandbTracker(Tracker):
    kind = "wandb"

    def __init__(self, directory: str, run_name: str, params: Mapping[str, Any]) -> None:
        super().__init__()
        import wandb

        Path(directory).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=EXPERIMENT, name=run_name, dir=directory, mode="offline",
                              config=flatten(params), settings=wandb.Settings(console="off", silent=True))
        self.directory = directory

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        # commit=True writes the epoch's history row now; without it W&B holds the row as partial history until a
        # later step or finish() flushes it (a CI run once ended with no history rows at all)
        self.run.log(values, step=step, commit=True)

    def _log_summary(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.run.summary[key] = value

    def _log_artifacts(self, folder: Path) -> None:
        import wandb

        artifact = wandb.Artifact(f"model-{self.run.name}".replace(":", "-"), type="model")
        artifact.add_dir(str(folder))
        self.run.log_artifact(artifact)

    def _close(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


def check_available(kind: str) -> None:
    """Raise ValueError (one line) when ``kind`` is unknown or its package is not installed."""
    if kind not in KINDS:
        raise ValueError(f"[train] tracking = {kind!r}: expected one of {', '.join(repr(k) for k in KINDS)}")
    if not kind:
        return
    import importlib.util

    if importlib.util.find_spec(kind) is None:
        package = "mlflow-skinny (or mlflow)" if kind == "mlflow" else "wandb"
        raise ValueError(f"[train] tracking = {kind!r} but {kind} is not installed: `.venv/bin/pip install {package}`,"
                         " or set [train] tracking = \"\"")


def open_tracker(kind: str, uri: str, registry: Path, run_name: str, params: Mapping[str, Any]) -> Tracker | None:
    """The tracker of ``kind`` for one training run, or None for ``""``. Defaults live under ``registry``."""
    check_available(kind)
    if not kind:
        return None
    if kind == "mlflow":
        if uri:
            tracker: Tracker = MlflowTracker(uri, run_name, params)
        else:
            root = registry.resolve()
            root.mkdir(parents=True, exist_ok=True)
            tracker = MlflowTracker(f"sqlite:///{root / 'mlflow.db'}", run_name, params,
                                    artifacts=(root / "mlartifacts").as_uri())
    else:
        tracker = WandbTracker(uri or str(registry / "wandb"), run_name, params)
    log.info("train: experiment tracking with %s (%s)", kind, uri or f"under {registry}")
    return tracker
