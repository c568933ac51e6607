"""One configuration: packaged defaults, then a TOML file, then CLI overrides; unknown keys are errors."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
LOCAL_CONFIG_FILE = "fashion-meta.toml"


class ConfigError(ValueError):
    """A configuration file or override is invalid."""


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], override: Mapping[str, Any], origin: str, prefix: str = "") -> None:
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown config key '{dotted}' in {origin}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{dotted}' in {origin} must be a table")
            _merge(base[key], value, origin, f"{dotted}.")
            continue
        default = base[key]
        if isinstance(default, bool) != isinstance(value, bool) or (
            not isinstance(value, type(default)) and not (isinstance(default, float) and isinstance(value, int))
        ):
            raise ConfigError(
                f"config key '{dotted}' in {origin} must be {type(default).__name__}, got {value!r}"
            )
        base[key] = value


class Config:
    """Effective configuration: nested sections read as ``cfg.get("spark.master")`` or ``cfg["spark"]``."""

    def __init__(self, data: dict[str, Any], sources: list[str]):
        self._data = data
        self.sources = sources

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self._data[section]

    def get(self, dotted: str) -> Any:
        node: Any = self._data
        for part in dotted.split("."):
            node = node[part]
        return node

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        return json.dumps(self._data, sort_keys=True)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then ``path`` (or ./fashion-meta.toml if present), then dotted ``overrides`` (None values skipped)."""
    data = _load_toml(DEFAULTS_FILE)
    sources = [str(DEFAULTS_FILE)]
    file_path = Path(path) if path else (Path(LOCAL_CONFIG_FILE) if Path(LOCAL_CONFIG_FILE).exists() else None)
    if file_path is not None:
        _merge(data, _load_toml(file_path), str(file_path))
        sources.append(str(file_path))
    cli: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        cli.setdefault(section, {})[key] = value
    if cli:
        _merge(data, cli, "command-line options")
        sources.append("command line")
    return Config(data, sources)
