"""Guards every lake-writing command shares: one writer per lake at a time, and paths confined to allowed roots.

**The lake lock.** Two runs writing the same lake at once would race on Delta commits (MERGE on the bronze
tables, replaceWhere on the same run date), and the loser would fail half-way with a concurrent-modification
error. So every command that writes the lake takes an exclusive ``flock`` on ``<lake>/_locks/lake.lock`` for its
whole run: the second run fails fast with one line naming the holder (pid, host, command, run date, since when),
or waits up to ``--lock-wait`` seconds for it. The kernel drops an ``flock`` when its process dies, SIGKILL
included, so a killed run never leaves a stale lock behind; the JSON in the file is only a description of the
holder. ``flock`` works on a local disk (the embedded default, one machine); on object stores (s3a://, abfss://)
there is no lock and the scheduler must not start two runs of one lake at once (said in the log).

**Path confinement.** Paths given on the command line (``--input``, ``--lake``, ``--out``, ``--registry``, the
config's lake root) are resolved (``~``, ``..`` and symlinks) and must lie under one of ``[paths] allowed_roots``
(default: the working directory and the system temp folder); URIs with a scheme must start with an allowed URI
root. A path outside is a usage error (exit 2) naming the option, the resolved path and the roots.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fashion_meta.errors import FashionMetaError, UsageError
from fashion_meta.lake import _SCHEME, resolve_root

log = logging.getLogger(__name__)

LOCK_FILE = "_locks/lake.lock"


class LakeBusyError(FashionMetaError):
    """Another run holds the lake's writer lock."""

    exit_code = 3


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')}: {info.get('command')} "
            f"{info.get('run_date') or ''} since {info.get('since')}").replace("  ", " ")


@contextmanager
def lake_lock(lake_root: str, command: str, run_date: dt.date | None = None, wait_seconds: float = 0.0,
              ) -> Iterator[None]:
    """Hold the lake's exclusive writer lock for the block (no-op with a warning on non-local lakes)."""
    import fcntl

    root = resolve_root(lake_root)
    if _SCHEME.match(root) and not root.startswith("file:"):
        log.warning("no writer lock on %s (not a local file system): make sure no other run writes this lake now", root)
        yield
        return
    path = Path(root.removeprefix("file://").removeprefix("file:")) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, wait_seconds)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_seconds:.0f}s" if wait_seconds > 0 else ""
                    raise LakeBusyError(
                        f"the lake {root} is being written by {_holder(path)}{waited}; nothing was done. Run again "
                        "when it has finished, or pass --lock-wait SECONDS to wait for it") from None
                if not announced:
                    log.info("waiting up to %.0fs for the lake lock held by %s", wait_seconds, _holder(path))
                    announced = True
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "run_date": run_date.isoformat() if run_date else None,
                "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def allowed_roots(configured: list[str]) -> list[str]:
    """The configured roots, resolved; the working directory and the temp folder when none are configured."""
    roots = configured or [".", tempfile.gettempdir()]
    return [r.rstrip("/") if _SCHEME.match(r) else os.path.realpath(os.path.expanduser(r)) for r in roots]


def confine(option: str, value: str, roots: list[str]) -> str:
    """``value`` resolved; a UsageError when it is not under one of ``roots`` (already resolved)."""
    if _SCHEME.match(value) and not value.startswith("file:"):
        target = value.rstrip("/")
        ok = any(_SCHEME.match(r) and (target == r or target.startswith(r + "/")) for r in roots)
    else:
        target = os.path.realpath(os.path.expanduser(value.removeprefix("file://").removeprefix("file:")))
        ok = any(not _SCHEME.match(r) and (target == r or target.startswith(r.rstrip("/") + "/")) for r in roots)
    if not ok:
        raise UsageError(f"{option} {value} resolves to {target}, outside the allowed roots ({', '.join(roots)}); "
                         "add a root to [paths] allowed_roots in the config to allow it")
    return target
