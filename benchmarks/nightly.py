"""End-to-end nightly on a generated shop: total time, time per stage, peak memory.

    nice -n 10 .venv/bin/python benchmarks/nightly.py [--customers 100000] [--articles 20000]
        [--transactions 5000000] [--categories 30] [--days 120] [--seed 42] [--work DIR] [--keep]
        [--config FILE] [--sample-seconds 0.5]

Generates the shop with ``fashion-meta generate`` (timed on its own, not part of the nightly), then runs
``fashion-meta nightly --input SHOP --lake LAKE --run-date <last day>`` as a child process on a fresh lake, with
the packaged defaults (Spark ``local[*]``, driver memory 4g, MAML) unless ``--config`` is given. While it runs,
the resident memory of the whole process tree (the CLI's Python, the Spark JVM, Spark's Python workers) is
sampled every ``--sample-seconds`` with psutil: peak of the tree's sum, and the peak of each kind of process on
its own. Stage times, row counts and serving modes come from the run's own ``runs/run_date=D/summary.json``.
CPU seconds are those of the whole tree, sampled per process (up to one sampling interval short per process).
The load average at the start and the end is printed: on a shared machine wall times move with the other jobs,
CPU seconds less so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "fashion_meta.cli"]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--transactions", type=int, default=5_000_000)
    parser.add_argument("--categories", type=int, default=30)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", help="work folder (default: a new temp folder, removed unless --keep)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--config", help="TOML config for the nightly (default: the packaged defaults)")
    parser.add_argument("--sample-seconds", type=float, default=0.5)
    return parser.parse_args()


class TreeMemory:
    """Samples the RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, every: float):
        self.root = psutil.Process(pid)
        self.every = every
        self.peak_total = 0
        self.peak_by_kind: dict[str, int] = {}
        self.cpu_by_pid: dict[int, float] = {}  # latest user+system seconds of every process seen in the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _kind(proc: psutil.Process) -> str:
        try:
            name = proc.name()
            cmd = " ".join(proc.cmdline()[:3])
        except psutil.Error:
            return "other"
        if "java" in name:
            return "spark JVM"
        if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
            return "python workers"
        return "driver python" if "python" in name else "other"

    def _run(self) -> None:
        while not self._stop.is_set():
            total, by_kind = 0, {}
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                self.cpu_by_pid[proc.pid] = times.user + times.system
                total += rss
                kind = self._kind(proc)
                by_kind[kind] = by_kind.get(kind, 0) + rss
            self.peak_total = max(self.peak_total, total)
            for kind, rss in by_kind.items():
                self.peak_by_kind[kind] = max(self.peak_by_kind.get(kind, 0), rss)
            self._stop.wait(self.every)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    args = _args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    shop, lake = work / "shop", work / "lake"
    load_start = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, niceness {os.nice(0)}, "
          f"/proc/loadavg at start {' '.join(f'{x:.2f}' for x in load_start)}; work dir {work}", flush=True)
    start_date = dt.date(2020, 6, 1)
    if not (shop / "transactions_train.csv").exists():
        t0 = time.monotonic()
        subprocess.run([*CLI, "generate", "--out", str(shop), "--customers", str(args.customers), "--articles",
                        str(args.articles), "--transactions", str(args.transactions), "--categories",
                        str(args.categories), "--days", str(args.days), "--seed", str(args.seed), "--start-date",
                        start_date.isoformat(), "--log-level", "WARNING"], check=True, cwd=ROOT)
        print(f"shop generated in {time.monotonic() - t0:.1f}s (not part of the nightly)", flush=True)
    lines = sum(1 for _ in (shop / "transactions_train.csv").open()) - 1
    print(f"shop: {args.customers:,} customers, {args.articles:,} articles, {lines:,} transaction rows, "
          f"{args.categories} categories, {args.days} days", flush=True)
    if lake.exists():
        shutil.rmtree(lake)
    run_date = (start_date + dt.timedelta(days=args.days - 1)).isoformat()
    cmd = [*CLI, "nightly", "--input", str(shop), "--lake", str(lake), "--run-date", run_date]
    if args.config:
        cmd += ["--config", args.config]
    log_file = work / "nightly.log"
    started = time.monotonic()
    with log_file.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid, args.sample_seconds)
        memory.start()
        code = proc.wait()
        memory.stop()
    wall = time.monotonic() - started
    # sampled per process: the Spark JVM and its Python workers are grandchildren that this process never reaps,
    # so its children_user/children_system miss them (the last sample before each exit is what is counted)
    cpu = sum(memory.cpu_by_pid.values())
    print(f"nightly exit code {code}; log {log_file}", flush=True)
    if code != 0:
        print(log_file.read_text()[-3000:])
        raise SystemExit(code)
    summary = json.loads((lake / "runs" / f"run_date={run_date}" / "summary.json").read_text())
    print(f"\nrun date {run_date}; /proc/loadavg at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| stage | seconds | share |\n|---|---:|---:|")
    for stage, seconds in summary["stage_seconds"].items():
        print(f"| {stage} | {seconds:.1f} | {seconds / summary['total_seconds']:.0%} |")
    print(f"| **nightly (stages)** | **{summary['total_seconds']:.1f}** | |")
    print(f"| process wall incl. Spark start/stop | {wall:.1f} | |")
    print(f"\nCPU seconds of the process tree: {cpu:.0f} ({cpu / wall:.2f} cores busy on average)")
    print(f"peak RSS of the process tree: {memory.peak_total / 2**30:.2f} GiB; by kind: " + ", ".join(
        f"{kind} {rss / 2**30:.2f} GiB" for kind, rss in sorted(memory.peak_by_kind.items())))
    rec = summary.get("recommend", {})
    print(f"recommendations: {rec.get('rows')} lists for {rec.get('customers')} customers; categories by mode "
          f"{rec.get('categories_by_mode')}")
    counts = summary.get("counts", {})
    print("counts: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()) if isinstance(v, int)))
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
