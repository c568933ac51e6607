"""End-to-end nightly on a generated shop: total time, time per stage, peak memory.

    nice -n 10 .venv/bin/python benchmarks/nightly.py [--customers 100000] [--articles 20000]
        [--transactions 5000000] [--categories 30] [--days 120] [--seed 42] [--work DIR] [--keep]
        [--config FILE] [--sample-seconds 0.5] [--spark-conf KEY=VALUE ...]

Generates the shop with ``fashion-meta generate`` (timed on its own, not part of the nightly), then runs
``fashion-meta nightly --input SHOP --lake LAKE --run-date <last day>`` as a child process on a fresh lake, with
the packaged defaults (Spark ``local[*]``, driver memory 4g, MAML) unless ``--config`` is given. While it runs,
the resident memory of the whole process tree (the CLI's Python, the Spark JVM, Spark's Python workers) is
sampled every ``--sample-seconds`` with psutil: peak of the tree's sum, and the peak of each kind of process on
its own. Stage times, row counts and serving modes come from the run's own ``runs/run_date=D/summary.json``.
CPU seconds are those of the whole tree, sampled per process (up to one sampling interval short per process).
The load average at the start and the end is printed: on a shared machine wall times move with the other jobs,
CPU seconds less so. The Spark JVM's CPU is also split by thread (from ``/proc/<pid>/task/*``, Linux only): the
C2 and C1 JIT compilers, garbage collection and VM threads, and the rest (the threads that plan and run the
queries). ``--spark-conf KEY=VALUE`` (repeatable) goes into a ``spark-defaults.conf`` in a fresh ``SPARK_CONF_DIR``
for the nightly, e.g. ``--spark-conf "spark.driver.defaultJavaOptions=-XX:TieredStopAtLevel=1"``; the busy CPU
of the whole machine over the nightly is printed too, for runs on an otherwise idle machine.
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
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for the nightly's spark-defaults.conf (repeatable)")
    args = parser.parse_args()
    for item in args.spark_conf:
        if "=" not in item or not item.split("=", 1)[0].strip():
            parser.error(f"--spark-conf {item!r}: expected KEY=VALUE")
    return args


def jvm_thread_group(name: str) -> str:
    """The group of a JVM thread by its name (Linux ``comm``, 15 characters at most)."""
    if name.startswith("C2 Compiler"):
        return "C2 JIT"
    if name.startswith("C1 Compiler"):
        return "C1 JIT"
    if name.startswith(("GC Thread", "G1 ", "VM Thread", "VM Periodic")):
        return "GC + VM"
    return "rest"


def jvm_cpu_by_group(pid: int) -> dict[str, float]:
    """User + system CPU seconds of a JVM's live threads, by ``jvm_thread_group``; empty if unreadable."""
    groups: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return groups
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        group = jvm_thread_group(name)
        groups[group] = groups.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return groups


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot: all but idle and iowait (``psutil.cpu_times``)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class TreeMemory:
    """Samples the RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, every: float):
        self.root = psutil.Process(pid)
        self.every = every
        self.peak_total = 0
        self.peak_by_kind: dict[str, int] = {}
        self.cpu_by_pid: dict[int, float] = {}  # latest user+system seconds of every process seen in the tree
        self.jvm_threads: dict[int, dict[str, float]] = {}  # latest CPU by thread group of every JVM seen
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
                if kind == "spark JVM":
                    self.jvm_threads[proc.pid] = jvm_cpu_by_group(proc.pid) or self.jvm_threads.get(proc.pid, {})
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
    env = dict(os.environ)
    if args.spark_conf:
        conf_dir = work / "spark-conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "spark-defaults.conf").write_text(
            "".join(f"{k.strip()} {v.strip()}\n" for k, v in (item.split("=", 1) for item in args.spark_conf)))
        env["SPARK_CONF_DIR"] = str(conf_dir)
        print(f"spark-defaults.conf: {'; '.join(args.spark_conf)}", flush=True)
    busy_start = machine_busy_seconds()
    started = time.monotonic()
    with log_file.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        memory = TreeMemory(proc.pid, args.sample_seconds)
        memory.start()
        code = proc.wait()
        memory.stop()
    wall = time.monotonic() - started
    busy = machine_busy_seconds() - busy_start
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
    print(f"\nCPU seconds of the process tree: {cpu:.0f} ({cpu / wall:.2f} cores busy on average); the whole "
          f"machine's busy CPU over the nightly: {busy:.0f} s")
    jvm: dict[str, float] = {}
    for groups in memory.jvm_threads.values():
        for group, seconds in groups.items():
            jvm[group] = jvm.get(group, 0.0) + seconds
    if jvm:
        jvm_total = sum(jvm.values())
        print(f"Spark JVM CPU by thread (last sample of each JVM): {jvm_total:.0f} s; " + ", ".join(
            f"{g} {jvm.get(g, 0.0):.0f} s ({jvm.get(g, 0.0) / jvm_total:.0%})" for g in ("C2 JIT", "C1 JIT", "GC + VM", "rest")))
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
