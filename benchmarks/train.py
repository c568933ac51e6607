"""Benchmark of meta-training (second- vs first-order MAML, ANIL, Meta-SGD) and of adapting to one new category.

    nice -n 10 .venv/bin/python benchmarks/train.py [--folder lake/task_files/run_date=2020-09-28] [--device auto]
        [--threads 2] [--omp-wait-policy inherit|passive|active] [--meta-batch 8] [--inner-steps 3] [--warmup 3]
        [--steps 30] [--repeats 3] [--adapt-repeats 20] [--category CATEGORY] [--seed 0] [--methods ...]
        [--softmax-weights 0,1]

On a CPU shared with other busy processes, PyTorch's OpenMP threads spin-wait at every barrier by default
(``OMP_WAIT_POLICY`` unset), and with 2 threads on 2 busy cores each small kernel can stall for a whole scheduler
time slice: this model then ran 20 to 100 times slower than with 1 thread. ``--omp-wait-policy passive`` sets
``OMP_WAIT_POLICY=PASSIVE`` in the subprocesses, which removes that stall; the policy in effect is printed.

Each (device, method) pair runs in a fresh subprocess of this script (internal flags ``--only METHOD --on
DEVICE``), so memory peaks are separate. In each subprocess, with ``torch.set_num_threads(--threads)`` and
``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set to the same value:

- **Data loading** (not timed in the figures below): ``load_task_dataset`` of the whole folder (the spec is fitted
  on train-role rows only); train-role tasks are moved to the device before any timing.
- **Meta-training throughput**: the same model (``build_model(..., ModelConfig(), seed=--seed)``) is meta-trained
  with ``meta_train`` itself, with no validation tasks (so no evaluation and no early stopping) and one epoch over
  a fixed episode list: the train-role tasks repeated cyclically up to ``--steps x --meta-batch`` tasks, which
  ``meta_train`` shuffles with ``MetaConfig.seed`` (the same episodes, in the same order, for every method). One
  warm-up call of ``--warmup`` meta-batches comes first and is not counted. Then ``--repeats`` timed calls of
  ``--steps`` meta-batches each; tasks/s = tasks / wall seconds of the call (median over repeats; the range is
  the min and max). Same inner steps, inner lr and meta-batch for every method; ANIL adapts ``head.*`` only.
  Ratio = second-order MAML time per task / first-order MAML time per task (at the first ``--softmax-weights``
  value). With several ``--softmax-weights`` (``MetaConfig.softmax_weight``: the within-group softmax term added to
  the query loss) every method runs once per weight, each in its own subprocess on the same episodes, and the time
  per task at each weight is also given as a ratio to the first weight's.
- **Peak memory**: peak RSS of the subprocess over its whole life (``ru_maxrss``, includes data loading), and peak
  RSS during the timed training only (``VmHWM`` after resetting it through ``/proc/self/clear_refs`` once the data
  are loaded and the heap trimmed; shown with the RSS at the reset). On CUDA also ``torch.cuda.max_memory_allocated``
  over the timed training (reset before it).
- **Adapting one new category**: the holdout-role tasks of ``--category`` (default: the first holdout category of
  the manifest) pooled into one support set (a task set without holdout-role tasks falls back to the
  validation-role tasks of the category that has the most of them, and says so); ``adapt`` with the method's
  serving recipe (``serving_steps`` steps, the inner lr, the method's parameter selection, Meta-SGD's learned lrs)
  from the meta-trained parameters, then ``model.score`` of every distinct query customer of the category
  against every distinct article of the category's rows (support and query), and the top-12 per customer
  (``top_n_indices``). Median ms over ``--adapt-repeats`` repeats, after 2 untimed ones.

Prints the conditions (torch version, threads, load average, CUDA availability) and a Markdown table.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

METHOD_ORDER = ("maml", "fomaml", "anil", "metasgd")
DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / "lake" / "task_files" / "run_date=2020-09-28"
RESULT_PREFIX = "RESULT "
MIB = 1024 * 1024


def _weights(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or any(not v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"softmax weights must be numbers >= 0: {text!r}")
    if len(set(values)) != len(values):  # the results are keyed by (method, weight)
        raise argparse.ArgumentTypeError(f"a softmax weight is given twice: {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER), help="task-dataset folder (manifest.json + Parquet)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CPU, and CUDA too when available; cuda: CUDA only (fails without a GPU)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (also OMP/MKL_NUM_THREADS)")
    parser.add_argument("--omp-wait-policy", choices=("inherit", "passive", "active"), default="inherit",
                        help="OMP_WAIT_POLICY of the subprocesses (inherit: leave the environment as it is)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_ORDER, default=list(METHOD_ORDER))
    parser.add_argument("--meta-batch", type=int, default=8)
    parser.add_argument("--inner-steps", type=int, default=3)
    parser.add_argument("--inner-lr", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up meta-batches")
    parser.add_argument("--steps", type=int, default=30, help="meta-batches per timed repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of --steps meta-batches")
    parser.add_argument("--adapt-repeats", type=int, default=20)
    parser.add_argument("--category", default=None, help="holdout category to adapt to (default: the first)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--softmax-weights", type=_weights, default=[0.0],
                        help="comma-separated [train] softmax_weight values to run each method at (default 0)")
    parser.add_argument("--softmax-weight", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=METHOD_ORDER, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--on", choices=("cpu", "cuda"), default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------------------- subprocess side


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Trim the heap and reset VmHWM (Linux >= 4.0); False where that is not possible."""
    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_one(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from fashion_meta.model.data import Batch, load_task_dataset
    from fashion_meta.model.meta import MetaConfig, adapt, meta_train
    from fashion_meta.model.scoring import top_n_indices
    from fashion_meta.model.towers import ModelConfig, build_model, parameter_names

    torch.set_num_threads(args.threads)
    device = torch.device(args.on)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    dataset = load_task_dataset(args.folder)
    train = [t.to(device) for t in dataset.by_role("train") if len(t.support) and len(t.query)]
    load_s = time.perf_counter() - started

    # The new category: holdout-role tasks; a task set without any falls back to validation-role tasks.
    new_role = "holdout" if dataset.by_role("holdout") else "validation"
    pool = dataset.by_role(new_role)
    counts = Counter(t.category for t in pool)
    category = args.category or next(iter(dataset.manifest.get("holdout", {}).get("categories") or []), None)
    if category is None and counts:
        category = min(counts, key=lambda c: (-counts[c], c))  # the category with the most tasks
    holdout = [t for t in pool if t.category == category]
    if not holdout:
        raise SystemExit(f"no {new_role}-role task of category {category!r}")
    support = Batch.concat([t.support for t in holdout]).to(device)
    rows = Batch.concat([*(t.support for t in holdout), *(t.query for t in holdout)])
    query = Batch.concat([t.query for t in holdout])
    _, c_first = np.unique(query.customer_ids.astype(str), return_index=True)
    _, a_first = np.unique(rows.article_ids.astype(str), return_index=True)
    x_customers = query.customer_inputs[torch.from_numpy(c_first)].to(device)
    x_articles = rows.article_inputs[torch.from_numpy(a_first)].to(device)
    del dataset, rows, query

    model = build_model(train[0].support.customer_inputs.shape[1], train[0].support.article_inputs.shape[1],
                        ModelConfig(), seed=args.seed).to(device)
    config = MetaConfig(method=args.only, inner_steps=args.inner_steps, inner_lr=args.inner_lr,
                        meta_batch=args.meta_batch, epochs=1, seed=args.seed, progress=False,
                        softmax_weight=args.softmax_weight)
    n_tasks = args.steps * args.meta_batch
    episodes = [train[i % len(train)] for i in range(n_tasks)]
    warmup = [train[i % len(train)] for i in range(args.warmup * args.meta_batch)]

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        if warmup:
            meta_train(model, warmup, [], config, log_dir=Path(tmp) / "warmup", device=device)
        sync()
        rss_at_reset = _status_kib("VmRSS")
        reset_ok = _reset_peak_rss()
        rss_at_reset = _status_kib("VmRSS") if reset_ok else rss_at_reset
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        seconds, result = [], None
        for r in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            result = meta_train(model, episodes, [], config, log_dir=Path(tmp) / f"run{r}", device=device)
            sync()
            seconds.append(time.perf_counter() - t0)
        train_hwm = _status_kib("VmHWM") if reset_ok else None
        cuda_peak = torch.cuda.max_memory_allocated(device) if cuda else None

    # Serving adaptation to the new category, from the meta-trained parameters, with the method's recipe.
    assert result is not None
    params = {n: p.detach() for n, p in model.named_parameters()}
    names = parameter_names(model, config.adapt_selection)
    lrs = {k: v.detach().to(device) for k, v in result.inner_lrs.items()} if result.inner_lrs else None
    adapt_ms, total_ms = [], []
    for i in range(args.adapt_repeats + 2):
        sync()
        t0 = time.perf_counter()
        adapted = adapt(model, params, support, config.serving_steps, config.inner_lr, adapt_names=names, lrs=lrs)
        sync()
        t1 = time.perf_counter()
        with torch.no_grad():
            scores = model.score(adapted, x_customers, x_articles).cpu().numpy()
        top_n_indices(scores, 12)
        t2 = time.perf_counter()
        if i >= 2:
            adapt_ms.append((t1 - t0) * 1000)
            total_ms.append((t2 - t0) * 1000)

    rates = [n_tasks / s for s in seconds]
    return {
        "method": args.only, "device": str(device), "second_order": config.spec.second_order,
        "softmax_weight": config.softmax_weight,
        "adapt": config.adapt_selection, "adapted_params": int(sum(params[n].numel() for n in names)),
        "params": int(sum(p.numel() for p in params.values())),
        "load_s": load_s, "train_tasks": len(train), "tasks_per_repeat": n_tasks, "seconds": seconds,
        "tasks_per_s": statistics.median(rates), "tasks_per_s_min": min(rates), "tasks_per_s_max": max(rates),
        "ms_per_task": 1000 * statistics.median(seconds) / n_tasks,
        "final_train_loss": result.history[-1]["train_loss"],
        "rss_peak_process_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_at_reset_mib": rss_at_reset / 1024 if rss_at_reset else None,
        "rss_peak_train_mib": train_hwm / 1024 if train_hwm else None,
        "cuda_peak_alloc_mib": cuda_peak / MIB if cuda_peak is not None else None,
        "category": category, "category_role": new_role, "category_tasks": len(holdout), "support_rows": len(support),
        "customers": int(x_customers.shape[0]), "candidates": int(x_articles.shape[0]),
        "serving_steps": config.serving_steps, "adapt_ms": statistics.median(adapt_ms),
        "adapt_score_ms": statistics.median(total_ms),
    }


# ------------------------------------------------------------------------------------------------- parent side


def child_argv(args: argparse.Namespace, method: str, device: str, weight: float = 0.0) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--folder", args.folder, "--threads", str(args.threads),
            "--meta-batch", str(args.meta_batch), "--inner-steps", str(args.inner_steps),
            "--inner-lr", repr(args.inner_lr), "--warmup", str(args.warmup), "--steps", str(args.steps),
            "--repeats", str(args.repeats), "--adapt-repeats", str(args.adapt_repeats), "--seed", str(args.seed),
            "--omp-wait-policy", args.omp_wait_policy, "--softmax-weight", repr(weight),
            "--only", method, "--on", device]
    if args.category:
        argv += ["--category", args.category]
    return argv


def run_child(args: argparse.Namespace, method: str, device: str, weight: float = 0.0) -> tuple[dict, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    if args.omp_wait_policy != "inherit":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    t0 = time.perf_counter()
    proc = subprocess.run(child_argv(args, method, device, weight), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{method} on {device}: subprocess failed with exit code {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if not lines:
        raise SystemExit(f"{method} on {device}: no result line in the subprocess output")
    return json.loads(lines[-1][len(RESULT_PREFIX):]), wall


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _growth(r: dict) -> str:
    if r["rss_peak_train_mib"] is None or r["rss_at_reset_mib"] is None:
        return "n/a"
    return f"{r['rss_peak_train_mib']:,.0f} (+{r['rss_peak_train_mib'] - r['rss_at_reset_mib']:,.0f})"


def main() -> None:
    args = parse_args()
    if args.only:
        if args.on is None:
            raise SystemExit("--only needs --on")
        print(RESULT_PREFIX + json.dumps(run_one(args)), flush=True)
        return

    import torch

    has_cuda = torch.cuda.is_available()
    if has_cuda:
        cuda_note = f"CUDA available: {torch.cuda.get_device_name(0)}"
    else:
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
        cuda_note = f"CUDA not available on this machine (torch {built}): CUDA measurements skipped"
    if args.device == "cuda" and not has_cuda:
        raise SystemExit("--device cuda: " + cuda_note)
    devices = {"auto": ["cpu", "cuda"] if has_cuda else ["cpu"], "cpu": ["cpu"], "cuda": ["cuda"]}[args.device]

    load_start = os.getloadavg()
    started = time.perf_counter()
    print(f"# benchmarks/train.py, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    policy = (os.environ.get("OMP_WAIT_POLICY", "unset") if args.omp_wait_policy == "inherit"
              else args.omp_wait_policy.upper())
    print(f"- torch {torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"torch threads {args.threads}, OMP_WAIT_POLICY {policy}, niceness {os.nice(0)}")
    print(f"- {cuda_note}")
    print(f"- tasks: {args.folder}")
    print(f"- meta-batch {args.meta_batch}, inner steps {args.inner_steps}, inner lr {args.inner_lr}, "
          f"{args.warmup} warm-up + {args.repeats} x {args.steps} timed meta-batches, seed {args.seed}, "
          f"softmax weights {', '.join(f'{w:g}' for w in args.softmax_weights)}")
    sys.stdout.flush()

    results = []
    for device in devices:
        for method in args.methods:
            for weight in args.softmax_weights:
                res, wall = run_child(args, method, device, weight)
                res["wall_s"] = wall
                results.append(res)
                print(f"  ... {device} {method} softmax weight {weight:g}: {res['tasks_per_s']:.1f} tasks/s, "
                      f"subprocess {wall:.0f} s", file=sys.stderr, flush=True)
    load_end = os.getloadavg()

    first = results[0]
    print(f"- load average (1 min) {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end; "
          f"total {time.perf_counter() - started:.0f} s")
    print(f"- model: {first['params']:,} parameters; {first['train_tasks']} train-role tasks, "
          f"{first['tasks_per_repeat']} tasks per timed repeat; data loading {min(r['load_s'] for r in results):.1f}"
          f"-{max(r['load_s'] for r in results):.1f} s per subprocess (not timed below)")
    print(f"- new category: {first['category']!r}, its {first['category_tasks']} {first['category_role']}-role tasks "
          f"pooled{' (the task set has no holdout-role task)' if first['category_role'] != 'holdout' else ''}, "
          f"{first['support_rows']} support rows, {first['serving_steps']} adaptation steps, scoring "
          f"{first['customers']} customers x {first['candidates']} candidate articles + top-12, "
          f"median of {args.adapt_repeats}")
    print()
    print("| device | method | order | softmax weight | adapts (params) | tasks/s (median) | tasks/s min-max | ms/task "
          "| RSS at start of training MiB | peak RSS in training MiB (growth) | peak RSS process MiB "
          "| CUDA peak alloc MiB | adapt ms | adapt + score ms | final train loss |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        order = "2nd" if r["second_order"] else "1st"
        print(f"| {r['device']} | {r['method']} | {order} | {r['softmax_weight']:g} | {r['adapt']} ({r['adapted_params']:,}) "
              f"| {r['tasks_per_s']:.1f} | {r['tasks_per_s_min']:.1f}-{r['tasks_per_s_max']:.1f} "
              f"| {r['ms_per_task']:.2f} | {_fmt(r['rss_at_reset_mib'], 0)} | {_growth(r)} "
              f"| {_fmt(r['rss_peak_process_mib'], 0)} | {_fmt(r['cuda_peak_alloc_mib'])} "
              f"| {r['adapt_ms']:.2f} | {r['adapt_score_ms']:.2f} | {r['final_train_loss']:.4f} |")
    print()
    base = args.softmax_weights[0]
    for device in devices:
        by = {(r["method"], r["softmax_weight"]): r for r in results if r["device"] == device}
        if ("maml", base) in by and ("fomaml", base) in by:
            ratio = by["maml", base]["ms_per_task"] / by["fomaml", base]["ms_per_task"]
            print(f"- {device}: second-order / first-order MAML time per task = {ratio:.2f}x (softmax weight {base:g})")
        for method in args.methods:
            for weight in args.softmax_weights[1:]:
                ratio = by[method, weight]["ms_per_task"] / by[method, base]["ms_per_task"]
                print(f"- {device} {method}: time per task at softmax weight {weight:g} / at {base:g} = {ratio:.2f}x")
    if "cuda" not in devices:
        print(f"- {cuda_note}")


if __name__ == "__main__":
    main()
