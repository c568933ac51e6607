"""The `fashion-meta` command: one subcommand per stage, plus `nightly` that runs them in order.

Every subcommand reads the one configuration (packaged defaults < --config file < options), logs the effective
configuration, what it did and how long it took, records the run in ops/run_log, and exits 0 on success,
2 on unusable input or options, 1 on any other failure: always with a one-line message, never a traceback
(the traceback goes to a log file named in that line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fashion_meta import __version__
from fashion_meta.config import Config, ConfigError, load_config

log = logging.getLogger("fashion_meta")


# ----------------------------------------------------------------------------------------------- arguments
def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def _common(parser: argparse.ArgumentParser, lake: bool = True) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--config", metavar="FILE", help="TOML config file (default: ./fashion-meta.toml if present)")
    if lake:
        group.add_argument("--lake", metavar="DIR", help="lake root, a local folder or any Spark path [lake.root]")
        group.add_argument("--master", metavar="URL", help="Spark master when not under spark-submit [spark.master]")
        group.add_argument("--shuffle-partitions", type=_positive_int, metavar="N", help="[spark.shuffle_partitions]")
        group.add_argument("--lock-wait", type=float, metavar="SECONDS",
                           help="wait this long for another run's lake lock instead of failing at once "
                                "[lake.lock_wait_seconds]")
    group.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="fashion-meta",
        description="Nightly cold-start apparel recommender: ingest -> features -> tasks -> train -> recommend -> export.",
    )
    parser.add_argument("--version", action="version", version=f"fashion-meta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("generate", help="write a synthetic shop in the H&M Kaggle format",
                       description="Write articles.csv, customers.csv and transactions_train.csv for a synthetic shop.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--customers", type=_positive_int, help="[generate.customers]")
    p.add_argument("--articles", type=_positive_int, help="[generate.articles]")
    p.add_argument("--categories", type=_positive_int, help="[generate.categories]")
    p.add_argument("--days", type=_positive_int, help="[generate.days]")
    p.add_argument("--transactions", type=_positive_int, help="approximate total; default from a per-customer rate")
    p.add_argument("--seed", type=int, help="[generate.seed]")
    p.add_argument("--start-date", type=_date, help="first day, YYYY-MM-DD [generate.start_date]")
    _common(p, lake=False)
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("ingest", help="load H&M-format files into the bronze Delta tables",
                       description="Load articles/customers/transactions (CSV or Parquet) into bronze Delta tables; "
                       "invalid rows go to bronze/rejects with a reason.")
    p.add_argument("--input", required=True, metavar="DIR", help="folder with articles.*, customers.*, transactions_train.*")
    p.add_argument("--since", type=_date, help="ingest only transactions from this date on")
    p.add_argument("--run-date", type=_date,
                   help="as-of date for articles' first_seen_date (default: the last transaction date ingested)")
    _common(p)
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("features", help="compute the daily feature tables (and article text vectors)",
                       description="Compute customer, article, category and user-group x category features as of the "
                       "end of --run-date (or of every day of --backfill START END, in one Spark job).")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--run-date", type=_date, help="the day whose features to compute (YYYY-MM-DD)")
    when.add_argument("--backfill", nargs=2, type=_date, metavar=("START", "END"), help="every day from START to END")
    p.add_argument("--category-column", choices=["product_type_name", "product_group_name", "garment_group_name"],
                   help="[vocabulary.category_column]")
    p.add_argument("--text-model", metavar="NAME_OR_PATH", help="text encoder: package alias, local folder or hub id [features.text_model]")
    p.add_argument("--no-text-vectors", action="store_true", help="skip the article text vectors [features.text_vectors]")
    _common(p)
    p.set_defaults(handler=cmd_features)

    p = sub.add_parser("tasks", help="build the meta-learning task datasets (Feast point-in-time features)",
                       description="Build (category x user group) tasks from the purchases of the window ending "
                       "--run-date, join their features point-in-time through Feast (service meta_tasks_v1), and write "
                       "the `tasks` table and the trainer's Parquet files + manifest.json.")
    p.add_argument("--run-date", required=True, type=_date, help="last day of the task window (YYYY-MM-DD)")
    _task_options(p)
    _common(p)
    p.set_defaults(handler=cmd_tasks)

    p = sub.add_parser("train", help="meta-train (or pretrain for transfer) a model on the task files of a run date",
                       description="Train on <lake>/task_files/run_date=D (no Spark needed): a MAML-family "
                       "meta-learner or transfer pretraining; write safetensors + a JSON card to the model registry "
                       "and make it current unless --no-promote.")
    p.add_argument("--run-date", required=True, type=_date, help="run date of the task files to train on")
    p.add_argument("--method", choices=["maml", "fomaml", "anil", "metasgd", "transfer"], help="[train.method]")
    p.add_argument("--device", metavar="DEV", help="auto, cpu, cuda, cuda:N [train.device]")
    p.add_argument("--tracking", choices=["mlflow", "wandb"],
                   help="also log the run to MLflow or W&B (offline) [train.tracking]; JSON/CSV logs always")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="[train.epochs]")
    p.add_argument("--registry", metavar="DIR", help="model registry (default <lake>/models) [train.registry]")
    p.add_argument("--train-seed", type=int, metavar="S", help="[run.seed]")
    promote = p.add_mutually_exclusive_group()
    promote.add_argument("--no-promote", action="store_true", help="keep the current model; only register the new one")
    promote.add_argument("--force-promote", action="store_true",
                         help="make the new model current without the promotion gate")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("recommend", help="write every active customer's top-N per category for a run date",
                       description="Adapt new categories and user groups on their support purchases, score every "
                       "active customer against each category's in-stock articles (blocked matrix products in Spark "
                       "or on the driver's GPU), check the lists and replace the run date in the recommendations "
                       "table.")
    p.add_argument("--run-date", required=True, type=_date, help="run date (its task files hold the scoring snapshot)")
    _recommend_options(p)
    _common(p)
    p.set_defaults(handler=cmd_recommend)

    p = sub.add_parser("export", help="write per-category recommendation files for the storefront",
                       description="Write one file per category (slug names) plus manifest.json (row counts, "
                       "checksums, model version) for --run-date; a re-run replaces the previous export atomically.")
    p.add_argument("--run-date", required=True, type=_date, help="run date to export")
    _export_options(p)
    _common(p)
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("evaluate", help="offline cold-start evaluation of every method against the baselines",
                       description="DESIGN.md evaluation protocol: for each K the lake, features, tasks and models are "
                       "rebuilt from the truncated data; every method ranks the held-out categories' (and user "
                       "groups') articles for the customers who bought in the days after --cutoff. Writes "
                       "report.md, metrics.json and PNG plots under --out.")
    p.add_argument("--input", metavar="DIR", help="H&M-format files (default: generate the evaluation shop per seed)")
    p.add_argument("--cutoff", type=_date, help="last day the system sees (default: the generated shop's last day "
                   "minus the query window)")
    p.add_argument("--holdout-categories", required=True, metavar="N|NAMES",
                   help="the N most recently launched categories, or comma-separated names")
    p.add_argument("--holdout-groups", metavar="N|NAMES", help="user groups to hold out (N drawn by hash, or names)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (work lakes under DIR/work)")
    p.add_argument("--ks", metavar="K,K,...", help="support sizes [evaluate.ks]")
    p.add_argument("--seeds", metavar="S,S,...", help="[evaluate.seeds]")
    p.add_argument("--methods", metavar="M,M,...", help="maml, fomaml, anil, metasgd, transfer [evaluate.methods]")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="[evaluate.epochs]")
    p.add_argument("--customers", type=_positive_int, help="generated shop size [evaluate.customers]")
    p.add_argument("--articles", type=_positive_int, help="[evaluate.articles]")
    p.add_argument("--categories", type=_positive_int, help="[evaluate.categories]")
    p.add_argument("--days", type=_positive_int, help="[evaluate.days]")
    p.add_argument("--window-days", type=_positive_int, metavar="N", help="[evaluate.window_days]")
    p.add_argument("--launch-days", type=_positive_int, metavar="N",
                   help="held-out slices are treated as launched N days before the cutoff, up to and including it "
                        "[evaluate.launch_days]")
    p.add_argument("--train-per-k", action="store_true", default=None,
                   help="train every method on each K's own task files (default: once per seed on the smallest K, "
                        "reused for the larger ones) [evaluate.train_per_k]")
    p.add_argument("--keep-work", action="store_true", default=None,
                   help="keep each seed's rebuilt lakes under DIR/work (about 1 GB per K and seed on the default "
                        "shop; by default each K lake is removed once its K is evaluated and the source lake once "
                        "the seed's records are saved) [evaluate.keep_work]")
    _common(p)
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("backfill-late", help="ingest late or corrected days and recompute the feature days they affect",
                       description="Ingest --input like `ingest` (the transaction dates present replace those dates), "
                       "then recompute only the existing feature days the written dates affect: from the earliest "
                       "written date to the latest written date + the longest feature window - 1 (to the latest "
                       "feature day when a whole-history value such as a category's total purchases changed, every "
                       "feature day when articles/customers changed a feature column); never a day without features.")
    p.add_argument("--input", required=True, metavar="DIR",
                   help="folder with transactions_train.* (articles.* / customers.* optional)")
    p.add_argument("--run-date", type=_date, help="as-of date for new articles' first_seen_date (default: the latest "
                   "transaction date already in the lake, so a late file does not move it back)")
    p.add_argument("--no-text-vectors", action="store_true", help="skip the article text vectors [features.text_vectors]")
    _common(p)
    p.set_defaults(handler=cmd_backfill_late)

    p = sub.add_parser("maintain", help="compact and VACUUM the Delta tables; prune old run records and folders",
                       description="OPTIMIZE (compaction) and VACUUM every Delta table of the lake, delete ops/run_log "
                       "rows older than --run-log-days (never the latest run of a command), and remove run_date=D "
                       "folders of exports, task files and run summaries older than their retention (never the newest, "
                       "never the current model's task files). Prints what it did; --dry-run changes nothing.")
    p.add_argument("--retention-hours", type=float, metavar="H",
                   help="VACUUM keeps files that versions younger than H hours need; under 168 is refused unless "
                        "--allow-short-retention [maintain.retention_hours]")
    p.add_argument("--allow-short-retention", action="store_true",
                   help="allow a retention under 168 hours (readers of recent versions may fail) "
                        "[maintain.allow_short_retention]")
    p.add_argument("--run-log-days", type=int, metavar="N", help="0 = keep every row [maintain.run_log_days]")
    p.add_argument("--export-days", type=int, metavar="N", help="0 = keep every export [maintain.export_days]")
    p.add_argument("--task-files-days", type=int, metavar="N", help="[maintain.task_files_days]")
    p.add_argument("--run-summary-days", type=int, metavar="N", help="[maintain.run_summary_days]")
    p.add_argument("--registry", metavar="DIR", help="model registry whose current model is protected "
                   "(default <lake>/models) [train.registry]")
    p.add_argument("--out", dest="export_out", metavar="DIR", help="export folder (default <lake>/exports) [export.out]")
    p.add_argument("--dry-run", action="store_true", help="measure and print what would be done; change nothing")
    _common(p)
    p.set_defaults(handler=cmd_maintain)

    p = sub.add_parser("materialize", help="load the latest feature values into the online store",
                       description="Materialise the feature values as of the end of --run-date (stamped run date + 1 "
                       "00:00 UTC) into the Feast online store (SQLite under <lake>/_feast by default, Redis on a cluster).")
    p.add_argument("--run-date", required=True, type=_date, help="the day whose feature values to serve")
    _common(p)
    p.set_defaults(handler=cmd_materialize)

    p = sub.add_parser("nightly", help="run every stage for one run date",
                       description="Run the nightly pipeline for --run-date: ingest, features (every day of the task "
                       "window that has none yet, and the run date), tasks, train (or reuse), recommend, export. Each "
                       "stage's completion is recorded in ops/run_log; a rerun with the same inputs, config and code "
                       "resumes at the first stage that did not complete (--force re-runs every stage).")
    p.add_argument("--input", required=True, metavar="DIR", help="folder with the H&M-format files")
    p.add_argument("--run-date", required=True, type=_date, help="the day whose data is complete (YYYY-MM-DD)")
    p.add_argument("--since", type=_date, help="ingest only transactions from this date on")
    p.add_argument("--reuse-model", action="store_true",
                   help="skip training while the current model is at most [nightly] max_model_age_days old")
    p.add_argument("--force", action="store_true",
                   help="re-run every stage, even those a previous run of this date completed with the same inputs")
    p.add_argument("--method", choices=["maml", "fomaml", "anil", "metasgd", "transfer"], help="[train.method]")
    _task_options(p)
    _recommend_options(p)
    _export_options(p)
    _common(p)
    p.set_defaults(handler=cmd_nightly)
    return parser


def _task_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("task options")
    group.add_argument("--window-days", type=_positive_int, metavar="N", help="days of purchases [tasks.window_days]")
    group.add_argument("--support-size", type=_positive_int, metavar="N", help="[tasks.support_size]")
    group.add_argument("--query-size", type=_positive_int, metavar="N", help="[tasks.query_size]")
    group.add_argument("--negatives", type=int, metavar="N", help="negatives per purchase [tasks.negatives_per_positive]")
    group.add_argument("--holdout-categories", metavar="N|NAMES",
                       help="hold out N categories (drawn by hash) or comma-separated names [tasks.holdout_categories]")
    group.add_argument("--holdout-groups", metavar="N|NAMES", help="likewise for user groups [tasks.holdout_groups]")


def _recommend_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("recommend options")
    group.add_argument("--top-n", type=_positive_int, metavar="N", help="list length [run.top_n]")
    group.add_argument("--engine", choices=["auto", "spark", "driver"], help="[recommend.engine]")
    group.add_argument("--adaptation", choices=["auto", "transfer"], help="[recommend.adaptation]")
    group.add_argument("--max-per-product", type=int, metavar="N", help="colour variants per list, 0 = no cap "
                       "[recommend.max_per_product]")
    group.add_argument("--model-version", metavar="VERSION", help="serve this registry version [recommend.model_version]")
    group.add_argument("--registry", metavar="DIR", help="model registry (default <lake>/models) [train.registry]")
    group.add_argument("--device", metavar="DEV", help="auto, cpu, cuda, cuda:N [train.device]")


def _export_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("export options")
    group.add_argument("--format", dest="export_format", choices=["jsonl", "parquet", "csv"], help="[export.format]")
    group.add_argument("--out", dest="export_out", metavar="DIR", help="export folder (default <lake>/exports) "
                       "[export.out]")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {
        "lake": "lake.root",
        "lock_wait": "lake.lock_wait_seconds",
        "master": "spark.master",
        "shuffle_partitions": "spark.shuffle_partitions",
        "customers": "generate.customers",
        "articles": "generate.articles",
        "categories": "generate.categories",
        "days": "generate.days",
        "transactions": "generate.transactions",
        "seed": "generate.seed",
        "category_column": "vocabulary.category_column",
        "text_model": "features.text_model",
        "method": "train.method",
        "device": "train.device",
        "tracking": "train.tracking",
        "epochs": "train.epochs",
        "registry": "train.registry",
        "train_seed": "run.seed",
        "window_days": "tasks.window_days",
        "support_size": "tasks.support_size",
        "query_size": "tasks.query_size",
        "negatives": "tasks.negatives_per_positive",
        "holdout_categories": "tasks.holdout_categories",
        "holdout_groups": "tasks.holdout_groups",
        "top_n": "run.top_n",
        "engine": "recommend.engine",
        "adaptation": "recommend.adaptation",
        "max_per_product": "recommend.max_per_product",
        "model_version": "recommend.model_version",
        "export_format": "export.format",
        "export_out": "export.out",
    }
    out = {key: getattr(args, name, None) for name, key in mapping.items()}
    if getattr(args, "no_text_vectors", False):
        out["features.text_vectors"] = False
    if getattr(args, "start_date", None):
        out["generate.start_date"] = args.start_date.isoformat()
    return out


# ------------------------------------------------------------------------------------------------ commands
class Context:
    """What a command handler gets: parsed args, the effective config, a run id, and counters for the run log."""

    def __init__(self, args: argparse.Namespace, cfg: Config):
        self.args = args
        self.cfg = cfg
        self.run_id = uuid.uuid4().hex[:12]
        self.counts: dict[str, int] = {}
        self.summary: dict[str, Any] = {}
        self._spark = None

    @property
    def lake(self) -> str:
        return self.cfg.get("lake.root")

    @property
    def spark(self):
        if self._spark is None:
            from fashion_meta.spark import spark_from_config

            started = time.monotonic()
            self._spark = spark_from_config(self.cfg, app_name=f"fashion-meta {self.args.command}")
            log.info("spark session ready in %.1fs (master %s)", time.monotonic() - started,
                     self._spark.sparkContext.master)
        return self._spark


def cmd_generate(ctx: Context) -> str:
    """Write a synthetic shop."""
    from fashion_meta.errors import UsageError
    from fashion_meta.synth.generator import ShopSpec, generate_shop, validate_spec

    g = ctx.cfg["generate"]
    spec = ShopSpec(
        customers=g["customers"], articles=g["articles"], categories=g["categories"], days=g["days"],
        seed=g["seed"], start_date=dt.date.fromisoformat(g["start_date"]),
        transactions=g["transactions"] or None,
    )
    try:
        validate_spec(spec)
    except ValueError as exc:
        raise UsageError(f"invalid shop: {exc}") from None
    summary = generate_shop(spec, ctx.args.out, progress=lambda line: log.info("generate: %s", line))
    info = asdict(summary)
    ctx.counts.update({k: v for k, v in info.items() if isinstance(v, int)})
    log.info("generate: %s", json.dumps(info, default=str))
    return f"wrote a shop to {ctx.args.out}"


def _ingest(ctx: Context, run_date: dt.date | None) -> str:
    from fashion_meta.ingest.job import run_ingest

    summary = run_ingest(
        ctx.spark, ctx.args.input, ctx.lake, since=ctx.args.since, as_of=run_date,
        max_field_chars=ctx.cfg.get("ingest.max_field_chars"),
    )
    ctx.counts.update(summary.counts())
    tx = summary.files["transactions_train"]
    return (f"ingested {tx.written} transactions ({summary.first_date}..{summary.last_date}), "
            f"{sum(f.rejected for f in summary.files.values())} rows rejected, in {summary.seconds:.1f}s")


def cmd_ingest(ctx: Context) -> str:
    """Run the ingest stage."""
    return _ingest(ctx, ctx.args.run_date)


def _features(ctx: Context, start: dt.date, end: dt.date) -> str:
    from fashion_meta.features.job import FeatureParams, run_features

    summary = run_features(ctx.spark, ctx.lake, start, end, FeatureParams.from_config(ctx.cfg))
    ctx.counts.update({f"{k}.rows": v for k, v in summary.rows.items()})
    ctx.counts["article_text_embedding.encoded"] = summary.encoded_texts
    rows = ", ".join(f"{k} {v}" for k, v in summary.rows.items())
    span = start.isoformat() if start == end else f"{start}..{end}"
    return f"features for {span}: {rows}; {summary.encoded_texts} texts encoded"


def cmd_features(ctx: Context) -> str:
    """Run the features stage for one date or a range."""
    start, end = ctx.args.backfill if ctx.args.backfill else (ctx.args.run_date, ctx.args.run_date)
    if end < start:
        from fashion_meta.errors import UsageError

        raise UsageError(f"--backfill ends ({end}) before it starts ({start})")
    return _features(ctx, start, end)


def _tasks(ctx: Context, run_date: dt.date) -> str:
    from fashion_meta.feast_store import FeastSettings
    from fashion_meta.tasks.job import TaskParams, run_tasks

    summary = run_tasks(ctx.spark, ctx.lake, run_date, TaskParams.from_config(ctx.cfg), FeastSettings.from_config(ctx.cfg))
    ctx.counts.update({f"tasks.{k}": v for k, v in summary.tasks.items()})
    ctx.counts.update({f"task_rows.{k}": v for k, v in summary.rows.items()})
    return (f"{sum(summary.tasks.values())} tasks ({', '.join(f'{k} {v}' for k, v in summary.tasks.items())}), "
            f"{summary.rows['total']} rows for {summary.window['start']}..{summary.window['end']}; "
            f"held out {summary.holdout}; files in {summary.files_path}")


def cmd_tasks(ctx: Context) -> str:
    """Run the tasks stage."""
    return _tasks(ctx, ctx.args.run_date)


def registry_path(ctx: Context) -> Path:
    """The model registry folder: [train] registry, relative to the lake root unless absolute."""
    from fashion_meta.lake import resolve_root

    registry = Path(ctx.cfg.get("train.registry"))
    return registry if registry.is_absolute() else Path(resolve_root(ctx.lake)) / registry


def _train(ctx: Context, run_date: dt.date, promote: str = "gate", progress: bool = True) -> str:
    """Train on the task files of ``run_date``; ``promote``: "gate" (promotion gate), "force" or "never"."""
    from fashion_meta.errors import InputError
    from fashion_meta.model.meta import MetaConfig
    from fashion_meta.model.threads import torch_threads
    from fashion_meta.model.towers import ModelConfig
    from fashion_meta.model.train import train
    from fashion_meta.model.transfer import PretrainConfig
    from fashion_meta.tasks.job import MANIFEST, task_files_path

    t = ctx.cfg["train"]
    folder = Path(task_files_path(ctx.lake, ctx.cfg.get("tasks.files_dir"), run_date))
    if not (folder / MANIFEST).is_file():
        raise InputError(f"no task files for {run_date} in {folder}: run `fashion-meta tasks --run-date {run_date}` first")
    method, seed = t["method"], ctx.cfg.get("run.seed")
    model_config = ModelConfig(hidden=tuple(t["hidden"]), dim=t["dim"], group_evidence=t["group_evidence"])
    try:
        meta = None if method == "transfer" else MetaConfig(
            method=method, inner_steps=t["inner_steps"], inner_lr=t["inner_lr"], outer_lr=t["outer_lr"],
            meta_batch=t["meta_batch"], epochs=t["epochs"], patience=t["patience"], adapt=t["adapt"] or None,
            seed=seed, cold_fraction=t["cold_fraction"], unit_episodes=t["unit_episodes"], init=t["meta_init"],
            validate_launches=t["validate_launches"], softmax_weight=t["softmax_weight"],
        )
        # transfer's pretraining, and the start of meta-training when meta_init = "pretrained"
        pretrain = PretrainConfig(epochs=t["epochs"], patience=t["patience"], seed=seed,
                                  softmax_weight=t["softmax_weight"])
    except ValueError as exc:
        raise ConfigError(f"[train]: {exc}") from None
    try:
        # the thread count is restored after: the nightly goes on to other stages in this process
        with torch_threads(t["threads"] if t["threads"] > 0 else None):
            result = train(folder, registry_path(ctx), method, device=t["device"], seed=seed,
                           model_config=model_config, meta_config=meta, pretrain_config=pretrain,
                           promote=promote == "force", progress=progress,
                           tracking=t["tracking"], tracking_uri=t["tracking_uri"],
                           new_category_days=ctx.cfg.get("vocabulary.new_category_days"),
                           min_category_history=ctx.cfg.get("vocabulary.min_category_history"))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    status = "registered, not promoted (--no-promote)" if promote == "never" else "current (forced)"
    if promote == "gate":
        from fashion_meta.model.gate import promotion_gate

        decision = promotion_gate(result.registry, result.version, folder,
                                  margin=float(ctx.cfg.get("recommend.promotion_margin")))
        ctx.summary["promotion"] = decision.to_dict()
        status = f"{'current' if decision.promoted else 'NOT promoted'} ({decision.reason})"
        log.info("train: promotion gate: %s", status)
    ctx.summary["model"] = {"trained": result.version, "method": method, **{k: result.metrics[k] for k in (
        "val_ndcg12", "val_ndcg12_unadapted", "epochs_run")}}
    m = result.metrics
    ctx.counts.update({"train.epochs_run": int(m["epochs_run"]), "train.train_tasks": int(m["train_tasks"]),
                       "train.validation_tasks": int(m["validation_tasks"])})
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    return (f"model {result.version} ({method} on {result.device}, {m['epochs_run']} epochs, best {m['best_epoch']}): "
            f"validation loss {fmt(m['val_loss'])} (unadapted {fmt(m['val_loss_unadapted'])}), NDCG@12 "
            f"{fmt(m['val_ndcg12'])} (unadapted {fmt(m['val_ndcg12_unadapted'])}); "
            f"{status} in {result.registry}")


def cmd_train(ctx: Context) -> str:
    """Train a model on the task files of a run date."""
    promote = "never" if ctx.args.no_promote else "force" if ctx.args.force_promote else "gate"
    return _train(ctx, ctx.args.run_date, promote=promote, progress=not ctx.args.no_progress)


def _recommend(ctx: Context, run_date: dt.date) -> str:
    from fashion_meta.recommend.job import RecommendParams, run_recommend

    summary = run_recommend(ctx.spark, ctx.lake, run_date, registry_path(ctx), RecommendParams.from_config(ctx.cfg))
    ctx.counts.update({"recommendations.rows": summary.rows, "recommendations.customers": summary.customers})
    ctx.counts.update({f"recommendations.{m}": n for m, n in summary.rows_by_mode.items()})
    ctx.summary["recommend"] = {
        "model_version": summary.model_version, "rows": summary.rows, "customers": summary.customers,
        "categories_by_mode": {m: len(c) for m, c in summary.categories_by_mode.items()},
        "new_categories": {m: c for m, c in summary.categories_by_mode.items() if m != "warm"},
        "new_user_groups": summary.groups_by_mode, "rows_by_mode": summary.rows_by_mode,
        "adaptation": summary.adaptation, "engine": summary.engine, "device": summary.device,
        "seconds": summary.seconds,
    }
    modes = ", ".join(f"{m} {len(c)}" for m, c in sorted(summary.categories_by_mode.items()))
    return (f"{summary.rows} lists ({summary.customers} customers x {summary.categories} categories: {modes}) "
            f"from model {summary.model_version}, engine {summary.engine}, checks passed; "
            f"new user groups {summary.groups_by_mode or 'none'}")


def cmd_recommend(ctx: Context) -> str:
    """Write the recommendations of a run date."""
    return _recommend(ctx, ctx.args.run_date)


def export_path(ctx: Context) -> str:
    from fashion_meta.lake import resolve_root

    out = ctx.cfg.get("export.out")
    return resolve_root(out) if out else f"{resolve_root(ctx.lake).rstrip('/')}/exports"


def _export(ctx: Context, run_date: dt.date) -> str:
    from fashion_meta.recommend.export import export_recommendations

    summary = export_recommendations(ctx.spark, ctx.lake, run_date, ctx.cfg.get("export.format"), export_path(ctx),
                                     progress=lambda line: log.info("export: %s", line))
    ctx.counts["export.rows"] = summary.rows
    ctx.counts["export.files"] = len(summary.files)
    ctx.summary["export"] = {"path": str(summary.path), "files": len(summary.files), "rows": summary.rows}
    return f"exported {summary.rows} rows in {len(summary.files)} files + manifest.json to {summary.path}"


def cmd_export(ctx: Context) -> str:
    """Export the recommendations of a run date for the storefront."""
    return _export(ctx, ctx.args.run_date)


def _int_list(value: str | None, what: str) -> list[int] | None:
    from fashion_meta.errors import UsageError

    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated integers, got {value!r}") from None


def cmd_evaluate(ctx: Context) -> str:
    """Run the offline evaluation for every seed and write the report."""
    from fashion_meta.evaluation.report import write_report
    from fashion_meta.evaluation.run import (
        SEED_RECORDS, EvalParams, clear_seed_work, load_seed_records, records_to_json, run_evaluation,
        save_seed_records, seed_fingerprint,
    )
    from fashion_meta.runlog import code_version
    from fashion_meta.spark import release_memory
    from fashion_meta.synth.generator import ShopSpec, generate_shop

    a, e = ctx.args, ctx.cfg["evaluate"]
    seeds = _int_list(a.seeds, "--seeds") or list(e["seeds"])
    ks = tuple(_int_list(a.ks, "--ks") or e["ks"])
    methods = tuple(m.strip() for m in (a.methods.split(",") if a.methods else e["methods"]) if m.strip())
    shape = {k: getattr(a, k) or e[k] for k in ("customers", "articles", "categories", "days")}
    out = Path(a.out).resolve()
    keep_work = bool(a.keep_work if a.keep_work is not None else e["keep_work"])
    records = []
    cutoff = a.cutoff

    def tidy(seed: int, seed_dir: Path) -> None:
        if not keep_work:
            freed = clear_seed_work(seed_dir)
            if freed:
                log.info("evaluate: seed %d: its rebuilt lakes removed (%.2f GB freed; --keep-work keeps them)",
                         seed, freed / 1e9)
    for seed in seeds:
        source = a.input
        if source is None:
            spec = ShopSpec(seed=seed, **shape)
            source = str(out / "work" / f"seed={seed}" / "shop")
            last = spec.start_date + dt.timedelta(days=spec.days - 1)
            cutoff = a.cutoff or last - dt.timedelta(days=e["query_days"])
        if cutoff is None:
            from fashion_meta.errors import UsageError

            raise UsageError("--cutoff is required with --input")
        params = EvalParams(
            cutoff=cutoff, holdout_categories=a.holdout_categories, holdout_groups=a.holdout_groups or "", ks=ks,
            query_days=e["query_days"], window_days=a.window_days or e["window_days"], methods=methods, seed=seed,
            launch_days=a.launch_days or e["launch_days"],
            epochs=a.epochs or e["epochs"], warm_customers=e["warm_customers"], top_n=ctx.cfg.get("run.top_n"),
            category_column=ctx.cfg.get("vocabulary.category_column"), text_model=ctx.cfg.get("features.text_model"),
            train_per_k=bool(a.train_per_k if a.train_per_k is not None else e["train_per_k"]),
        )
        params.validate()  # before generating a shop
        seed_dir = out / "work" / f"seed={seed}"
        fingerprint = seed_fingerprint(params, a.input or f"generated {shape}", code_version())
        earlier = load_seed_records(seed_dir, fingerprint)
        if earlier is not None:
            log.info("evaluate: seed %d: %d records of an earlier run with the same settings and code reused "
                     "(delete %s to evaluate it again)", seed, len(earlier), seed_dir / SEED_RECORDS)
            records += earlier
            ctx.counts["evaluate.seeds_reused"] = ctx.counts.get("evaluate.seeds_reused", 0) + 1
            tidy(seed, seed_dir)
            continue
        if a.input is None:
            # a shop generated with another shape or seed under the same --out is generated again, not reused
            made = seed_dir / "shop_spec.json"
            wanted = json.dumps(asdict(spec), default=str, sort_keys=True)
            if not (Path(source, "transactions_train.csv").is_file() and made.is_file()
                    and made.read_text(encoding="utf-8") == wanted):
                generate_shop(spec, source)
                made.write_text(wanted, encoding="utf-8")
        found = records_to_json(run_evaluation(ctx.spark, source, str(out), params, keep_work=keep_work,
                                               progress=lambda line: log.info("evaluate: %s", line)))
        save_seed_records(seed_dir, fingerprint, found)  # a later seed's failure does not lose this one
        records += found
        tidy(seed, seed_dir)
        heap = release_memory(ctx.spark)
        if heap is not None:
            log.info("evaluate: seed %d: driver heap in use %d MiB, %d MiB after releasing caches", seed, *heap)
    held = {seed: json.loads((out / "work" / f"seed={seed}" / "holdout.json").read_text()) for seed in seeds}
    meta = {"cutoff": str(cutoff), "seeds": seeds, "holdout": held, "ks": list(ks), "methods": list(methods),
            "new_categories": a.holdout_categories, "new_groups": a.holdout_groups, "query_days": e["query_days"],
            "launch_days": params.launch_days,
            "input": a.input or f"generated {shape}",
            "models": ("trained on each K's own task files" if params.train_per_k else
                       f"trained once per seed on the K={min(ks)} task files, reused for every K")}
    paths = write_report(records, out, meta)
    ctx.counts["evaluate.records"] = len(records)
    return f"{len(records)} results for seeds {seeds}; report {paths['markdown']}"


def cmd_backfill_late(ctx: Context) -> str:
    """Ingest late or corrected files, then recompute only the feature days they affect."""
    from fashion_meta.features import late_data
    from fashion_meta.features.job import FeatureParams
    from fashion_meta.ingest.job import run_ingest

    params = FeatureParams.from_config(ctx.cfg)
    before = late_data.lake_versions(ctx.spark, ctx.lake)
    as_of = ctx.args.run_date or late_data.latest_transaction_date(ctx.spark, ctx.lake)
    summary = run_ingest(ctx.spark, ctx.args.input, ctx.lake, as_of=as_of,
                         max_field_chars=ctx.cfg.get("ingest.max_field_chars"))
    ctx.counts.update(summary.counts())
    plan = late_data.plan_recompute(ctx.spark, ctx.lake, before, params)
    log.info("backfill-late: %s", plan.describe())
    features = late_data.recompute_features(ctx.spark, ctx.lake, plan, params)
    ctx.counts["late.dates_written"] = len(plan.touched_dates)
    ctx.counts["late.feature_days_recomputed"] = plan.days
    for feature_summary in features:
        for table, rows in feature_summary.rows.items():
            ctx.counts[f"{table}.rows"] = ctx.counts.get(f"{table}.rows", 0) + rows
    tx = summary.files["transactions_train"]
    return f"ingested {tx.written} transactions; {plan.describe()}"


def cmd_maintain(ctx: Context) -> str:
    """Compact and VACUUM the lake's tables and prune old run records and dated folders."""
    from fashion_meta.maintain import MaintainParams, run_maintain

    a, section = ctx.args, ctx.cfg["maintain"]
    for option in ("retention_hours", "run_log_days", "export_days", "task_files_days", "run_summary_days"):
        if getattr(a, option) is not None:
            section[option] = float(getattr(a, option)) if option == "retention_hours" else getattr(a, option)
    if a.allow_short_retention:
        section["allow_short_retention"] = True  # CLI values land in the effective config stored in the run log
    report = run_maintain(ctx.spark, ctx.lake, MaintainParams.from_config(ctx.cfg), exports_dir=export_path(ctx),
                          task_files_dir=ctx.cfg.get("tasks.files_dir"), registry=registry_path(ctx), dry_run=a.dry_run)
    ctx.counts.update(report.counts())
    print(report.format(), file=sys.stdout)
    removed = sum(len(f.removed) for f in report.folders)
    vacuumed = sum(t.vacuum_files for t in report.tables)
    files = (sum(t.files_before for t in report.tables), sum(t.files_after for t in report.tables))
    return (f"{'dry run: ' if a.dry_run else ''}{len(report.tables)} tables, files {files[0]} -> {files[1]}, "
            f"{vacuumed} files vacuumed, {report.run_log_rows_deleted} run-log rows and {removed} folders removed")


def cmd_materialize(ctx: Context) -> str:
    """Load the latest feature values into the online store."""
    from fashion_meta import feast_store

    _ = ctx.spark  # started first: Feast's Spark offline store reuses the job's session (Delta configured)
    store = feast_store.open_store(ctx.lake, feast_store.FeastSettings.from_config(ctx.cfg), ctx.cfg.get("features.text_model"))
    windows = feast_store.materialize(store, ctx.args.run_date)
    return f"materialised {len(windows)} feature views as of {ctx.args.run_date} into {store.config.online_store.type}"


def _nightly_features(ctx: Context, run_date: dt.date) -> str:
    """Features for the run date and for every day of the task window that has none yet (one Spark job)."""
    from fashion_meta.tasks.job import missing_feature_dates, required_feature_dates

    needed = required_feature_dates(ctx.spark, ctx.lake, run_date, ctx.cfg.get("tasks.window_days"))
    missing = missing_feature_dates(ctx.spark, ctx.lake, *needed) if needed else []
    return _features(ctx, missing[0] if missing else run_date, run_date)


def _fresh_model(ctx: Context, run_date: dt.date) -> str | None:
    """The current model's version when --reuse-model applies (trained on task files at most N days old)."""
    from fashion_meta.model.checkpoint import current_version, load_version_dir

    registry = registry_path(ctx)
    version = current_version(registry)
    if not ctx.args.reuse_model or version is None:
        return None
    trained_on = load_version_dir(registry / version).card.get("run_date")
    age = (run_date - dt.date.fromisoformat(trained_on)).days if trained_on else None
    return version if age is not None and 0 <= age <= ctx.cfg.get("nightly.max_model_age_days") else None


def _train_or_reuse(ctx: Context, run_date: dt.date) -> str:
    version = _fresh_model(ctx, run_date)
    if version is None:
        return _train(ctx, run_date, progress=False)
    ctx.summary["model"] = {"reused": version}
    return f"reused model {version} (--reuse-model, at most {ctx.cfg.get('nightly.max_model_age_days')} days old)"


NIGHTLY_STAGES = ("ingest", "features", "tasks", "train", "recommend", "export")


def nightly_fingerprint(ctx: Context, run_date: dt.date) -> str:
    """Hash of what a nightly's outputs depend on: the input files (names, sizes, times), the effective config,
    the code version and the options outside the config. A stage completed under another fingerprint is redone."""
    import hashlib

    from fashion_meta import fs
    from fashion_meta.runlog import code_version

    config = ctx.cfg.as_dict()
    config.get("lake", {}).pop("lock_wait_seconds", None)
    payload = {"inputs": fs.listing(ctx.spark, str(ctx.args.input)), "config": config, "code": code_version(),
               "run_date": run_date.isoformat(), "since": str(ctx.args.since), "reuse_model": ctx.args.reuse_model}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cmd_nightly(ctx: Context) -> str:
    """Run every stage for the run date (resuming after the last completed one); print and store a run summary."""
    from fashion_meta.runlog import completed_stages, record_run, resume_index

    run_date = ctx.args.run_date
    stages: dict[str, Callable[[], str]] = {
        "ingest": lambda: _ingest(ctx, run_date),
        "features": lambda: _nightly_features(ctx, run_date),
        "tasks": lambda: _tasks(ctx, run_date),
        "train": lambda: _train_or_reuse(ctx, run_date),
        "recommend": lambda: _recommend(ctx, run_date),
        "export": lambda: _export(ctx, run_date),
    }
    order = list(NIGHTLY_STAGES)
    fingerprint = nightly_fingerprint(ctx, run_date)
    done = {} if ctx.args.force else completed_stages(ctx.spark, ctx.lake, "nightly", run_date, fingerprint)
    first = resume_index(done, order)
    if first == len(order):
        runs = sorted({run_id for run_id, _ in done.values()})
        print(f"fashion-meta nightly {run_date}: already complete (runs {', '.join(runs)}); --force re-runs it")
        return (f"nothing to do: every stage of {run_date} already completed with these inputs, config and code "
                f"(runs {', '.join(runs)}); --force re-runs them")
    skipped = {name: done[name][0] for name in order[:first]}
    if skipped:
        log.info("nightly %s: resuming at stage %s (%s completed in earlier runs with the same fingerprint %s)",
                 run_date, order[first], ", ".join(skipped), fingerprint)
    times: dict[str, float] = {}
    for name in order[first:]:
        started_at = dt.datetime.now(dt.timezone.utc)
        started = time.monotonic()
        before = dict(ctx.counts)
        log.info("nightly %s: stage %s started", run_date, name)
        status, message = "failed", "stage did not finish"
        try:
            message = stages[name]()
            status = "succeeded"
        except BaseException as exc:
            message = _first_line(exc)
            raise
        finally:
            times[name] = round(time.monotonic() - started, 1)
            counts = {k: v for k, v in ctx.counts.items() if before.get(k) != v}
            try:
                record_run(ctx.spark, ctx.lake, run_id=ctx.run_id, command="nightly", run_date=run_date, status=status,
                           started_at=started_at, counts=counts, message=message, config=ctx.cfg.as_dict(),
                           stage=name, fingerprint=fingerprint)
            except Exception as exc:  # noqa: BLE001 - never mask the stage's own outcome
                log.warning("could not record stage %s in the run log: %s", name, _first_line(exc))
        log.info("nightly %s: stage %s done in %.1fs: %s", run_date, name, times[name], message)
    summary = {"run_date": run_date.isoformat(), "run_id": ctx.run_id, "stage_seconds": times,
               "total_seconds": round(sum(times.values()), 1), "counts": dict(ctx.counts), **ctx.summary}
    if skipped:
        summary["resumed"] = {"from_stage": order[first], "skipped": skipped}
        if "model" not in summary:
            from fashion_meta.model.checkpoint import current_version

            summary["model"] = {"reused": current_version(registry_path(ctx))}
    path = _store_summary(ctx, run_date, summary)
    print(format_summary(summary, path), file=sys.stdout)
    return f"nightly done in {summary['total_seconds']:.0f}s: " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items())


def _store_summary(ctx: Context, run_date: dt.date, summary: dict[str, Any]) -> str:
    """summary.json under <lake>/runs/run_date=D/ (replaced by a rerun); the path."""
    from fashion_meta import fs
    from fashion_meta.lake import resolve_root

    path = f"{resolve_root(ctx.lake).rstrip('/')}/runs/run_date={run_date.isoformat()}/summary.json"
    fs.write_text(ctx.spark, path, json.dumps(summary, indent=1, sort_keys=True, default=str))
    return path


def format_summary(summary: dict[str, Any], path: str) -> str:
    """The run summary as a few human-readable lines."""
    lines = [f"fashion-meta nightly {summary['run_date']}: done in {summary['total_seconds']:.0f}s"]
    lines.append("  stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in summary["stage_seconds"].items()))
    if "resumed" in summary:
        skipped = summary["resumed"]["skipped"]
        lines.append(f"  resumed at {summary['resumed']['from_stage']}: " + ", ".join(
            f"{stage} done in run {run_id}" for stage, run_id in skipped.items()))
    model = summary.get("model", {})
    if "reused" in model:
        lines.append(f"  model: reused {model['reused']}")
    elif model:
        lines.append(f"  model: trained {model['trained']} ({model['method']})")
    if "promotion" in summary:
        p = summary["promotion"]
        lines.append(f"  promotion: {'promoted' if p['promoted'] else 'kept ' + str(p['current_version'])}: {p['reason']}")
    rec = summary.get("recommend")
    if rec:
        lines.append(f"  recommendations: {rec['rows']} lists for {rec['customers']} customers, model "
                     f"{rec['model_version']}")
        lines.append("  categories by serving mode: " + ", ".join(
            f"{m} {n}" for m, n in sorted(rec["categories_by_mode"].items())))
        for mode, names in sorted(rec["new_categories"].items()):
            lines.append(f"    {mode}: {', '.join(names)}")
        for mode, names in sorted(rec["new_user_groups"].items()):
            lines.append(f"  new user groups, {mode}: {', '.join(names)}")
    if "export" in summary:
        lines.append(f"  export: {summary['export']['files']} files, {summary['export']['rows']} rows in "
                     f"{summary['export']['path']}")
    lines.append(f"  summary: {path}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- main
# Commands that write the lake: they hold its writer lock for their whole run (fashion_meta/guard.py).
LAKE_WRITERS = frozenset({"ingest", "features", "tasks", "train", "recommend", "export", "materialize", "nightly",
                          "maintain", "backfill-late"})


def _confine_paths(args: argparse.Namespace, cfg: Config) -> None:
    """Every path option, and the lake root, must lie under [paths] allowed_roots (a UsageError otherwise)."""
    from fashion_meta.guard import allowed_roots, confine

    roots = allowed_roots(cfg.get("paths.allowed_roots"))
    for name, option in (("input", "--input"), ("out", "--out"), ("export_out", "--out")):
        value = getattr(args, name, None)
        if value:
            confine(option, str(value), roots)
    registry = getattr(args, "registry", None)
    if registry and (Path(registry).is_absolute() or "://" in registry):
        confine("--registry", registry, roots)
    if hasattr(args, "lake"):
        confine("--lake" if args.lake else "[lake] root", cfg.get("lake.root"), roots)


def _writer_lock(ctx: Context):
    """The lake's writer lock for commands that write it; nothing for the others."""
    from contextlib import nullcontext

    from fashion_meta.guard import lake_lock

    if ctx.args.command not in LAKE_WRITERS:
        return nullcontext()
    return lake_lock(ctx.lake, ctx.args.command, getattr(ctx.args, "run_date", None),
                     ctx.cfg.get("lake.lock_wait_seconds"))


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S", stream=sys.stderr, force=True,
    )
    for noisy in ("py4j", "urllib3", "filelock", "matplotlib", "feast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:500]}" if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fashion-meta` console script and of every jobs/*.py file."""
    from fashion_meta.errors import FashionMetaError
    from fashion_meta.runlog import redact

    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    started_at = dt.datetime.now(dt.timezone.utc)
    ctx = None
    status, message, code = "failed", "", 1
    try:
        cfg = load_config(args.config, _overrides(args))
        ctx = Context(args, cfg)
        log.info("%s: effective config (%s): %s", args.command, " < ".join(cfg.sources),
                 json.dumps(redact(cfg.as_dict()), sort_keys=True))
        _confine_paths(args, cfg)
        with _writer_lock(ctx):
            message = args.handler(ctx)
        status, code = "succeeded", 0
        log.info("%s: %s (%.1fs)", args.command, message,
                 (dt.datetime.now(dt.timezone.utc) - started_at).total_seconds())
    except (FashionMetaError, ConfigError) as exc:
        code = getattr(exc, "exit_code", 2)
        message = str(exc)
        print(f"fashion-meta {args.command}: error: {message}", file=sys.stderr)
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
        print(f"fashion-meta {args.command}: interrupted", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line for the user, the trace to a file
        message = _first_line(exc)
        trace_file = Path(tempfile.gettempdir()) / f"fashion-meta-{args.command}-{started_at:%Y%m%dT%H%M%S}.log"
        trace_file.write_text(traceback.format_exc())
        print(f"fashion-meta {args.command}: failed: {message} (traceback in {trace_file})", file=sys.stderr)
    finally:
        if ctx is not None and ctx._spark is not None:
            try:
                from fashion_meta.runlog import record_run

                record_run(
                    ctx.spark, ctx.lake, run_id=ctx.run_id, command=args.command,
                    run_date=getattr(args, "run_date", None) or (args.backfill[1] if getattr(args, "backfill", None) else None),
                    status=status, started_at=started_at,
                    counts=ctx.counts, message=message, config=ctx.cfg.as_dict(),
                )
            except Exception as exc:  # noqa: BLE001 - a failed run-log write must not mask the real outcome
                log.warning("could not record the run in the run log: %s", _first_line(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
