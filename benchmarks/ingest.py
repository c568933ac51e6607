"""Benchmark: generate H&M-format shops of 1M and 5M transactions, ingest them with Spark, compare with DuckDB.

Usage: .venv/bin/python benchmarks/ingest.py [--sizes 1000000 5000000] [--workdir DIR] [--keep] [--event-log DIR]

For each size, in one process:

1. ``generate_shop`` writes articles.csv, customers.csv and transactions_train.csv (timed; rows/s, CSV MB).
2. ``run_ingest`` (Spark ``local[2]``, 4 shuffle partitions, 6g driver, UI off) ingests the folder into a fresh
   lake: every row validated, bronze Delta tables and rejects written. Timed end to end; rows/s counts
   transaction rows. One small warm-up ingest runs first, so JVM start-up and JIT warm-up are not counted.
   The summary must show zero rejects and every generated row written, or the benchmark stops.
3. The single-machine reference: DuckDB with 2 threads (like ``local[2]``) converting the same files to
   Parquet: transactions_train.csv alone with explicit types, and all three files; each the median of 3 runs.

Peak RSS of this Python process (generator and DuckDB run in it) and of Spark's JVM are sampled per phase.
The CSV files are freshly written, so both engines read them from the page cache. ``--event-log DIR`` turns on
Spark's event log and prints, per ingest, the time inside and between Spark jobs and the longest steps; it is
off by default so the timed session is exactly the one the benchmark names. Figures from a shared machine vary;
the Spark/DuckDB ratio is the number to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import psutil

from fashion_meta import constants as C
from fashion_meta.ingest.job import IngestSummary, run_ingest
from fashion_meta.spark import get_spark
from fashion_meta.synth.generator import GenerateSummary, ShopSpec, generate_shop

DEFAULT_SIZES = (1_000_000, 5_000_000)
SPARK_MASTER = "local[2]"
DUCKDB_THREADS = 2  # the same two cores Spark's local[2] gets
DUCKDB_REPEATS = 3  # DuckDB runs take seconds on a shared machine: report the median of a few
WARMUP_SPEC = ShopSpec(customers=2_000, articles=500, categories=20, days=14, seed=1)
TRANSACTION_TYPES = {
    "t_dat": "DATE",
    "customer_id": "VARCHAR",
    "article_id": "VARCHAR",
    "price": "DOUBLE",
    "sales_channel_id": "INTEGER",
}
MB = 1024 * 1024


def shop_spec(size: int) -> ShopSpec:
    """The shop for a benchmark size: 50 transactions per customer over 120 days (at least 10k customers)."""
    return ShopSpec(
        customers=max(10_000, size // 50),
        articles=20_000 if size >= 5_000_000 else 10_000,
        categories=60,
        days=120,
        transactions=size,
        seed=1,
    )


@dataclasses.dataclass
class SizeResult:
    """Everything measured for one size."""

    size: int
    rows: int = 0
    csv_mb: float = 0.0
    generate_s: float = 0.0
    ingest_s: float = 0.0
    duckdb_tx_s: float = 0.0
    duckdb_all_s: float = 0.0
    peak_rss_mb: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


class RssSampler:
    """Samples the RSS of this process and of its java child every 0.2 s; peaks are kept per named phase."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self._me = psutil.Process(os.getpid())
        self._interval = interval_s
        self._phase: str | None = None
        self.peaks: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> "RssSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def phase(self, name: str | None) -> None:
        """Attribute following samples to ``name`` (None: to no phase)."""
        with self._lock:
            self._phase = name
            if name is not None:
                self.peaks.setdefault(name, {"python": 0.0, "jvm": 0.0})
        self._sample()

    def _java(self) -> psutil.Process | None:
        for child in self._me.children(recursive=True):
            try:
                if child.name() == "java":
                    return child
            except psutil.Error:
                continue
        return None

    def _sample(self) -> None:
        with self._lock:
            if self._phase is None:
                return
            peaks = self.peaks[self._phase]
            peaks["python"] = max(peaks["python"], self._me.memory_info().rss / MB)
            java = self._java()
            if java is not None:
                try:
                    peaks["jvm"] = max(peaks["jvm"], java.memory_info().rss / MB)
                except psutil.Error:
                    pass

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()


class PhaseLog(logging.Handler):
    """Prints fashion_meta's INFO lines with the seconds since the current ingest started."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.started = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        print(f"    [+{time.perf_counter() - self.started:7.1f} s] {record.getMessage()}", flush=True)


def dir_mb(path: Path) -> float:
    """Total size of the files under path, in MiB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MB


def generate(size: int, out: Path) -> GenerateSummary:
    """Generate the shop for one size into out (replacing what was there)."""
    shutil.rmtree(out, ignore_errors=True)
    return generate_shop(shop_spec(size), out, progress=lambda line: print(f"    gen: {line}", flush=True))


def ingest(spark, shop: Path, lake_root: Path, expected: GenerateSummary, phase_log: PhaseLog) -> IngestSummary:
    """run_ingest into a fresh lake; raise unless every generated row was written and none rejected."""
    shutil.rmtree(lake_root, ignore_errors=True)
    phase_log.started = time.perf_counter()
    summary = run_ingest(spark, str(shop), str(lake_root))
    tx = summary.files[C.TRANSACTIONS_FILE]
    expected_written = {
        C.TRANSACTIONS_FILE: expected.transactions_rows,
        C.ARTICLES_FILE: expected.articles_rows,
        C.CUSTOMERS_FILE: expected.customers_rows,
    }
    problems = [
        f"{name}: read {fc.read}, written {fc.written} (expected {expected_written[name]}), "
        f"rejected {fc.rejected}, skipped {fc.skipped}"
        for name, fc in summary.files.items()
        if fc.rejected or fc.skipped or fc.written != expected_written[name]
    ]
    if problems or tx.written != expected.transactions_rows:
        raise RuntimeError(f"ingest of {shop} did not write every row cleanly: {'; '.join(problems) or tx}")
    return summary


def duckdb_convert(shop: Path, out: Path, all_files: bool) -> tuple[float, int]:
    """(seconds, transaction rows) for DuckDB (2 threads) converting the CSV(s) in shop to Parquet in out."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tx_columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in TRANSACTION_TYPES.items()) + "}"
    tx_csv = shop / f"{C.TRANSACTIONS_FILE}.csv"
    jobs = [(C.TRANSACTIONS_FILE, f"read_csv('{tx_csv}', header = true, columns = {tx_columns})")]
    if all_files:
        jobs += [
            # article_id keeps its leading zero as text, as in bronze; the rest is DuckDB's type detection.
            (C.ARTICLES_FILE,
             f"read_csv('{shop / C.ARTICLES_FILE}.csv', header = true, types = {{'article_id': 'VARCHAR'}})"),
            (C.CUSTOMERS_FILE, f"read_csv('{shop / C.CUSTOMERS_FILE}.csv', header = true)"),
        ]
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {DUCKDB_THREADS}")
        started = time.perf_counter()
        counts = {
            name: con.execute(f"COPY (SELECT * FROM {source}) TO '{out / name}.parquet' (FORMAT parquet)").fetchone()[0]
            for name, source in jobs
        }
        seconds = time.perf_counter() - started
    finally:
        con.close()
    return seconds, counts[C.TRANSACTIONS_FILE]


def _job_label(props: dict[str, str], sql_descriptions: dict[int, str]) -> str:
    """A short name for a Spark job: its Python call site, Delta's description, or its root query's."""
    text = props.get("spark.job.description") or props.get("callSite.short")
    if not text and "spark.sql.execution.root.id" in props:
        text = sql_descriptions.get(int(props["spark.sql.execution.root.id"]), "")
    text = re.sub(r"/\S*/fashion_meta/", "", text or "?")
    text = re.sub(r"^(Delta: )+", "", text)
    text = re.sub(r": Compute snapshot for version: \d+$", " (snapshot)", text)
    return text.replace("save at NativeMethodAccessorImpl.java:0", "DataFrameWriter.save")


def job_breakdown(event_log_dir: Path, windows: list[tuple[str, float, float]],
                  min_step_s: float = 1.0) -> Iterator[str]:
    """Per timed ingest (name, start, end in epoch seconds): wall time in and outside Spark jobs, and its steps.

    A step is a run of consecutive jobs with the same label; steps shorter than min_step_s are summed into one line.
    """
    sql_descriptions: dict[int, str] = {}
    jobs: dict[int, dict] = {}
    for path in sorted(p for p in event_log_dir.rglob("*") if p.is_file() and not p.name.startswith((".", "app"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                event = json.loads(line)
                kind = event.get("Event", "")
                if kind.endswith("SparkListenerSQLExecutionStart"):
                    sql_descriptions[event["executionId"]] = event.get("description", "")
                elif kind == "SparkListenerJobStart":
                    jobs[event["Job ID"]] = {"start": event["Submission Time"] / 1000,
                                             "props": event.get("Properties") or {}}
                elif kind == "SparkListenerJobEnd":
                    jobs[event["Job ID"]]["end"] = event["Completion Time"] / 1000
    ordered = [j | {"label": _job_label(j["props"], sql_descriptions)} for _, j in sorted(jobs.items()) if "end" in j]
    for name, started, ended in windows:
        inside = [j for j in ordered if started <= j["start"] <= ended]
        busy, cursor = 0.0, started  # union of job intervals (jobs can overlap)
        for j in sorted(inside, key=lambda j: j["start"]):
            busy += max(0.0, j["end"] - max(cursor, j["start"]))
            cursor = max(cursor, j["end"])
        wall = ended - started
        yield (f"{name}: wall {wall:.1f} s, {len(inside)} Spark jobs; inside jobs {busy:.1f} s, "
               f"between jobs (driver: planning, Delta log, Python) {wall - busy:.1f} s")
        steps: list[list] = []
        for j in inside:
            if steps and steps[-1][0] == j["label"]:
                steps[-1][2] = j["end"]
                steps[-1][3] += 1
            else:
                steps.append([j["label"], j["start"], j["end"], 1])
        small, small_steps = 0.0, 0
        for label, first, last, count in steps:
            if last - first >= min_step_s:
                yield f"  +{first - started:6.1f} s  {last - first:6.1f} s  {count:2d} jobs  {label}"
            else:
                small, small_steps = small + (last - first), small_steps + 1
        yield f"  ({small_steps} shorter steps: {small:.1f} s together)"


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


def markdown_table(results: list[SizeResult]) -> str:
    """The summary table, in Markdown."""
    lines = [
        "| size | rows | CSV MB | generate s | generate rows/s | ingest s | ingest rows/s "
        "| duckdb s (tx) | ratio (tx) | duckdb s (3 files) | ratio (3 files) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.size:,} | {r.rows:,} | {r.csv_mb:,.0f} | {r.generate_s:.1f} | {rate(r.rows, r.generate_s)} "
            f"| {r.ingest_s:.1f} | {rate(r.rows, r.ingest_s)} "
            f"| {r.duckdb_tx_s:.2f} | {r.ingest_s / r.duckdb_tx_s:.1f}x "
            f"| {r.duckdb_all_s:.2f} | {r.ingest_s / r.duckdb_all_s:.1f}x |"
        )
    return "\n".join(lines)


def memory_table(results: list[SizeResult]) -> str:
    """Peak RSS per size and phase, in Markdown."""
    lines = ["| size | phase | Python peak RSS MB | JVM peak RSS MB |", "|---:|---|---:|---:|"]
    for r in results:
        for phase, peaks in r.peak_rss_mb.items():
            jvm = f"{peaks['jvm']:,.0f}" if peaks["jvm"] else "-"
            lines.append(f"| {r.size:,} | {phase} | {peaks['python']:,.0f} | {jvm} |")
    return "\n".join(lines)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="transaction counts")
    parser.add_argument("--workdir", type=Path, help="where shops and lakes go (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated shops, lakes and Parquet files")
    parser.add_argument("--event-log", type=Path,
                        help="enable Spark's event log here and print where each ingest's time goes")
    args = parser.parse_args(argv)

    command = shlex.join([os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable,
                          *sys.argv])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# ingest benchmark  {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
    print(f"command: {command}")
    print(f"workdir: {workdir}; cpus: {os.cpu_count()}; load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; duckdb {duckdb.__version__}", flush=True)

    logging.basicConfig(level=logging.WARNING, format="    %(levelname)s %(name)s: %(message)s")
    phase_log = PhaseLog()
    logging.getLogger("fashion_meta.ingest").addHandler(phase_log)
    logging.getLogger("fashion_meta.ingest").setLevel(logging.INFO)
    logging.getLogger("fashion_meta.ingest").propagate = False

    sampler = RssSampler().start()
    extra = None
    if args.event_log:
        shutil.rmtree(args.event_log, ignore_errors=True)
        args.event_log.mkdir(parents=True)
        extra = {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": args.event_log.resolve().as_uri(),
            "spark.eventLog.compress": "false",  # plain JSON lines, readable without a zstd module
            "spark.eventLog.rolling.enabled": "false",
        }
    spark_start_s, spark = timed(lambda: get_spark("bench-ingest", master=SPARK_MASTER, shuffle_partitions=4,
                                                   driver_memory="6g", ui=False, extra=extra))
    print(f"spark session ({SPARK_MASTER}) started in {spark_start_s:.1f} s", flush=True)

    warm_shop, warm_lake = workdir / "warmup-shop", workdir / "warmup-lake"
    warm = generate_shop(WARMUP_SPEC, warm_shop)
    windows: list[tuple[str, float, float]] = []  # (name, start, end) of each ingest, epoch seconds
    warm_started = time.time()
    warmup_s, _ = timed(lambda: ingest(spark, warm_shop, warm_lake, warm, phase_log))
    windows.append(("warm-up ingest", warm_started, time.time()))
    print(f"warm-up ingest ({warm.transactions_rows:,} transactions, not counted): {warmup_s:.1f} s", flush=True)

    results = []
    created = [warm_shop, warm_lake]
    try:
        for size in args.sizes:
            r = SizeResult(size)
            shop, lake_root = workdir / f"shop-{size}", workdir / f"lake-{size}"
            created += [shop, lake_root, workdir / f"duckdb-tx-{size}", workdir / f"duckdb-all-{size}"]
            print(f"\n## size {size:,}", flush=True)

            sampler.phase("generate")
            r.generate_s, generated = timed(lambda: generate(size, shop))
            r.rows = generated.transactions_rows
            r.csv_mb = (shop / f"{C.TRANSACTIONS_FILE}.csv").stat().st_size / MB
            print(f"  generate: {r.rows:,} transactions ({generated.customers_rows:,} customers, "
                  f"{generated.articles_rows:,} articles), transactions_train.csv {r.csv_mb:,.0f} MB, all CSVs "
                  f"{dir_mb(shop):,.0f} MB: {r.generate_s:.1f} s, {rate(r.rows, r.generate_s)} rows/s", flush=True)

            sampler.phase("ingest")
            ingest_started = time.time()
            r.ingest_s, summary = timed(lambda: ingest(spark, shop, lake_root, generated, phase_log))
            windows.append((f"ingest {size:,}", ingest_started, time.time()))
            print(f"  spark ingest: {r.ingest_s:.1f} s ({summary.seconds:.1f} s by its own clock), "
                  f"{rate(r.rows, r.ingest_s)} transaction rows/s; lake {dir_mb(lake_root):,.0f} MB; "
                  f"counts {summary.counts()}", flush=True)

            sampler.phase("duckdb")
            for all_files in (False, True):
                out = workdir / f"duckdb-{'all' if all_files else 'tx'}-{size}"
                runs = [duckdb_convert(shop, out, all_files) for _ in range(DUCKDB_REPEATS)]
                if any(rows != r.rows for _, rows in runs):
                    raise RuntimeError(f"DuckDB read {runs[0][1]:,} transactions, the generator wrote {r.rows:,}")
                seconds = statistics.median(s for s, _ in runs)
                what = "all 3 files" if all_files else "transactions"
                print(f"  duckdb {what} -> parquet: median {seconds:.2f} s of "
                      f"{', '.join(f'{s:.2f}' for s, _ in runs)}; {rate(r.rows, seconds)} transaction rows/s; "
                      f"ratio spark_ingest / duckdb ({what}) = {r.ingest_s / seconds:.1f}x", flush=True)
                if all_files:
                    r.duckdb_all_s = seconds
                else:
                    r.duckdb_tx_s = seconds
            sampler.phase(None)
            r.peak_rss_mb = {phase: dict(peaks) for phase, peaks in sampler.peaks.items()}
            sampler.peaks.clear()
            results.append(r)
    finally:
        sampler.stop()
        spark.stop()
        if not args.keep:
            for path in created:
                shutil.rmtree(path, ignore_errors=True)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    if args.event_log:
        print("\nwhere the ingest time goes (Spark event log; steps of 1 s or more):")
        for line in job_breakdown(args.event_log, windows):
            print("  " + line)
    print("\n" + markdown_table(results))
    print("\n" + memory_table(results))
    python_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\nPython process peak RSS over the whole run: {python_peak:,.0f} MB")
    print(f"ratio = spark ingest s / duckdb s (median of {DUCKDB_REPEATS}); warm-up ingest of "
          f"{warm.transactions_rows:,} transactions not counted; "
          f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
