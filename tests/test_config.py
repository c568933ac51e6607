"""Configuration: defaults < file < CLI overrides; unknown keys and wrong types are clear errors."""

from __future__ import annotations

import pytest

from fashion_meta.config import ConfigError, load_config
from fashion_meta.runlog import redact


def test_defaults_then_file_then_overrides(tmp_path):
    path = tmp_path / "fm.toml"
    path.write_text('[lake]\nroot = "/data/lake"\n[spark]\nshuffle_partitions = 16\n')
    cfg = load_config(path, {"spark.shuffle_partitions": 3, "lake.root": None})
    assert cfg.get("lake.root") == "/data/lake"  # file beats default, a None override is ignored
    assert cfg.get("spark.shuffle_partitions") == 3  # CLI beats file
    assert cfg.get("run.top_n") == 12  # default kept
    assert cfg.sources[-1] == "command line"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[lake]\nrot = 'x'\n", "unknown config key 'lake.rot'"),
        ("[spark]\nshuffle_partitions = 'many'\n", "must be int"),
        ("[lake\n", "not valid TOML"),
        ("lake = 3\n", "must be a table"),
    ],
)
def test_bad_config_files_are_named_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/fm.toml")


def test_secrets_are_redacted():
    cfg = {"online": {"connection_string": "redis://user:s3cret@host:6379/0", "password": "pw", "port": 6379}}
    out = redact(cfg)
    assert out["online"]["connection_string"] == "redis://user:***@host:6379/0"
    assert out["online"]["password"] == "***"
    assert out["online"]["port"] == 6379
    assert "s3cret" not in str(out)
