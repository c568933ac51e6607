"""Set-up and the two Quick-start commands, runnable on a bare Python 3.11 (stdlib only).

    python3 -m fashion_meta.bootstrap demo   # set up, generate the default shop, run the nightly job on it
    python3 -m fashion_meta.bootstrap test   # set up, run the whole test suite (extra args go to pytest)
    python3 -m fashion_meta.bootstrap setup  # only set up

Set-up is incremental: a virtual env in .venv (created once), the project and its pinned dependencies
(re-installed only when pyproject.toml or .ci/constraints.txt change), and Delta's jars fetched once from
Maven Central into .cache/jars, so every later Spark start works offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".fashion-meta-installed"
CONSTRAINTS = ROOT / ".ci" / "constraints.txt"
# A first install (torch from PyPI is the CUDA build) takes about 7.5 GB in .venv plus about 3 GB of downloads.
INSTALL_NEEDS_GB = 11.0
SHOP_DIR = ROOT / "data" / "shop"


def _say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def _run(cmd: list[str], **kwargs) -> None:
    result = subprocess.run(cmd, cwd=ROOT, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"[bootstrap] failed ({result.returncode}): {' '.join(map(str, cmd))}")


def _install_hash() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _disk_preflight() -> list[str]:
    """Say when the disk is short for a first install; skip pip's download cache then (it doubles the downloads)."""
    free_gb = shutil.disk_usage(ROOT).free / 1e9
    if free_gb >= INSTALL_NEEDS_GB:
        return []
    _say(f"warning: {free_gb:.1f} GB free on the disk of {ROOT}; a first install needs about {INSTALL_NEEDS_GB:.0f} GB "
         "(torch with its CUDA libraries). Installing without pip's cache; if pip then fails with 'No space left on "
         "device', free space (old clones, lakes under /tmp) and run the same command again.")
    return ["--no-cache-dir"]


def setup() -> None:
    """Create the venv, install the project with pinned dependencies, fetch Delta's jars (each only if needed)."""
    if sys.version_info < (3, 11):
        raise SystemExit("[bootstrap] Python 3.11 or 3.12 is required (found %d.%d)" % sys.version_info[:2])
    if not PYTHON.exists():
        _say(f"creating virtual env {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _install_hash()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        _say("installing fashion-meta and its pinned dependencies (first time: several minutes, torch is large)")
        cache = _disk_preflight()
        _run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        cmd = [str(PYTHON), "-m", "pip", "install", "--quiet", *cache, "-e", ".[dev]"]
        if CONSTRAINTS.exists():
            cmd += ["-c", str(CONSTRAINTS)]
        _run(cmd)
        STAMP.write_text(wanted)
    _run([str(PYTHON), "-c", "from fashion_meta.spark import fetch_delta_jars as f; print('[bootstrap] Delta jars:', len(f()))"])


def _default_run_date() -> str:
    with (ROOT / "fashion_meta" / "defaults.toml").open("rb") as fh:
        gen = tomllib.load(fh)["generate"]
    return (dt.date.fromisoformat(gen["start_date"]) + dt.timedelta(days=gen["days"] - 1)).isoformat()


def demo(extra: list[str]) -> None:
    """Generate the default shop (once) and run the nightly job on it into ./lake."""
    setup()
    cli = str(VENV / "bin" / "fashion-meta")
    if not (SHOP_DIR / "transactions_train.csv").exists():
        _run([cli, "generate", "--out", str(SHOP_DIR)])
    _run([cli, "nightly", "--input", str(SHOP_DIR), "--lake", str(ROOT / "lake"), "--run-date", _default_run_date(), *extra])
    _say(f"done: Delta tables under {ROOT / 'lake'}, run summary in {ROOT / 'lake' / 'runs'}, storefront files in "
         f"{ROOT / 'lake' / 'exports'}; the input shop is in {SHOP_DIR}")


# Two pytest-xdist workers, one test file at a time each, files in the order tests/conftest.py gives (the longest
# first); pass -n 0 (or your own -n/--dist) to change it. The 15 slowest tests are listed at the end.
PARALLEL = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder", "--durations=15"]


def test(extra: list[str]) -> None:
    """Run the whole test suite (slow tests included unless -m says otherwise), on two xdist workers by default."""
    setup()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    own = any(a.startswith(("-n", "--numprocesses", "--dist")) or a in ("no:xdist", "-pno:xdist") for a in extra)
    result = subprocess.run([str(PYTHON), "-m", "pytest", *([] if own else PARALLEL), *extra], cwd=ROOT, env=env)
    raise SystemExit(result.returncode)


def main(argv: list[str]) -> None:
    """Dispatch `setup`, `demo` or `test`."""
    if not argv or argv[0] not in ("setup", "demo", "test"):
        raise SystemExit(__doc__)
    command, extra = argv[0], argv[1:]
    if command == "setup":
        setup()
    elif command == "demo":
        demo(extra)
    else:
        test(extra)


if __name__ == "__main__":
    main(sys.argv[1:])
