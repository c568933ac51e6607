"""The recommend stage: per-customer top-N lists of every category for run date D, new ones adapted first.

Inputs: the scoring snapshot of D that the tasks stage wrote beside the task files (active customers,
user group x category rows, in-stock articles, each with features as of D+1 00:00 UTC through the same Feast
service the model was trained on), the adaptation units of new categories and user groups (roles ``serve`` and
``holdout`` of the same task files), the current model of the registry (or a named version), and bronze
transactions (what each customer already bought).

Steps: adapt every new category / user group that has enough support (meta-learned initialisation and its
recipe, or transfer fine-tuning by option) on the driver; build the :class:`~.serve.ServingPlan` (articles encoded
once per parameter set); score customers in blocks inside Spark (``mapInArrow``, bounded torch threads) or on the
driver (its GPU when present); write the rows to a staging folder; run the output checks on them; only then
replace the run date's partition of the ``recommendations`` Delta table (atomic, idempotent per run date). A failed
check stops before publishing and names what failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fashion_meta import constants as C
from fashion_meta import fs, lake, schemas
from fashion_meta.errors import InputError, UsageError
from fashion_meta.model.threads import torch_threads

from . import serve

log = logging.getLogger(__name__)

ENGINES = ("auto", "spark", "driver")
ADAPTATIONS = ("auto", "transfer")
UNIT_ROLES = ("serve", "holdout")


@dataclass(frozen=True)
class RecommendParams:
    """Every knob of the recommend stage (the [recommend] config section plus run.top_n and paths)."""

    top_n: int = 12
    repeat_categories: tuple[str, ...] = ()
    max_per_product: int = 0
    engine: str = "auto"
    adaptation: str = "auto"
    min_adapt_positives: int = 3
    transfer_steps: int = 20
    transfer_lr: float = 0.01
    threads: int = 1
    block_rows: int = 4096
    device: str = "auto"
    model_version: str = ""
    files_dir: str = "task_files"

    @classmethod
    def from_config(cls, cfg) -> RecommendParams:
        r = cfg["recommend"]
        return cls(
            top_n=cfg.get("run.top_n"), repeat_categories=tuple(r["repeat_categories"]),
            max_per_product=r["max_per_product"], engine=r["engine"], adaptation=r["adaptation"],
            min_adapt_positives=r["min_adapt_positives"], transfer_steps=r["transfer_steps"],
            transfer_lr=float(r["transfer_lr"]), threads=r["threads"], block_rows=r["block_rows"],
            device=cfg.get("train.device"), model_version=r["model_version"], files_dir=cfg.get("tasks.files_dir"),
        )

    def validate(self) -> None:
        checks = [
            (self.top_n >= 1, "run.top_n must be at least 1"),
            (self.max_per_product >= 0, "[recommend] max_per_product must be >= 0 (0 = no cap)"),
            (self.engine in ENGINES, f"[recommend] engine must be one of {', '.join(ENGINES)}"),
            (self.adaptation in ADAPTATIONS, f"[recommend] adaptation must be one of {', '.join(ADAPTATIONS)}"),
            (self.min_adapt_positives >= 1, "[recommend] min_adapt_positives must be at least 1"),
            (self.transfer_steps >= 1, "[recommend] transfer_steps must be at least 1"),
            (self.threads >= 0 and self.block_rows >= 1, "[recommend] threads >= 0 and block_rows >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


@dataclass
class RecommendSummary:
    """What one recommend run produced."""

    run_date: str
    model_version: str
    engine: str
    device: str
    rows: int = 0
    customers: int = 0
    categories: int = 0
    rows_by_mode: dict[str, int] = field(default_factory=dict)
    categories_by_mode: dict[str, list[str]] = field(default_factory=dict)
    groups_by_mode: dict[str, list[str]] = field(default_factory=dict)
    adaptation: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- inputs
def _snapshot(folder: Path) -> tuple[dict[str, Any], pa.Table, pa.Table, list[str]]:
    """Manifest, articles and group x category tables of the scoring snapshot, and the customers' files."""
    from fashion_meta.model.data import read_manifest

    try:
        manifest = read_manifest(folder)
    except ValueError as exc:
        raise InputError(f"{exc}: run `fashion-meta tasks` for this run date first") from None
    scoring = manifest.get("scoring") or {}
    missing = [k for k in ("customers", "articles", "group_category") if k not in scoring]
    if missing:
        raise InputError(f"task files {folder} have no scoring snapshot ({', '.join(missing)}): rerun `fashion-meta tasks`")

    def read(name: str) -> pa.Table:
        tables = [pq.read_table(folder / f) for f in scoring[name]]
        return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})

    return manifest, read("articles"), read("group_category"), [str(folder / f) for f in scoring["customers"]]


def _resolve_device(device: str) -> str:
    from fashion_meta.model.train import resolve_device

    try:
        return str(resolve_device(device))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _load_model(registry: Path, version: str, device: str):
    from fashion_meta.model.checkpoint import load_model

    try:
        return load_model(registry, version or None, device=device)
    except (ValueError, OSError) as exc:
        raise InputError(f"{exc}: train a model first (`fashion-meta train`)") from None


# ------------------------------------------------------------------------------------------ adaptation
def _adapter(loaded, params: RecommendParams):
    """(adapter(model, params, support) -> params, serving mode) per the option and the model's card."""
    from fashion_meta.model.ranking import adapted_ranker, transfer_ranker

    if params.adaptation == "transfer":
        ranker = transfer_ranker(loaded.model, loaded.params(), loaded.spec, steps=params.transfer_steps,
                                 lr=params.transfer_lr)
        return ranker.adapter, "transferred"
    ranker = adapted_ranker(loaded)
    kind = (loaded.card.get("adaptation") or {}).get("kind")
    return ranker.adapter, "meta_adapted" if kind == "meta" else "transferred"


def launch_rule(loaded, params: RecommendParams):
    """The model's launch mode (model/launch.py) when its own meta-adaptation serves, else None."""
    from fashion_meta.model.launch import LaunchRule

    recipe = loaded.card.get("adaptation") or {}
    if params.adaptation == "transfer" or recipe.get("kind") != "meta" or not recipe.get("launch"):
        return None
    return LaunchRule.from_dict(recipe["launch"])


def _adapt_units(loaded, folder: Path, manifest: dict[str, Any], params: RecommendParams, device: str,
                 summary: RecommendSummary) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, tuple[str, str]],
                                                      dict[str, tuple[str, str]], dict[str, np.ndarray]]:
    """Adapted parameter sets, (parameter set, mode) per new category and per new user group, and the support
    purchases (article ids) of each adapted set, for its support evidence."""
    from fashion_meta.model.data import load_task_dataset

    serving = manifest.get("serving")
    if serving is None:
        log.warning("recommend: task files of %s predate new-unit detection; every category served warm",
                    manifest.get("run_date"))
        serving = {}
    held = manifest.get("holdout") or {}
    new_categories = sorted(set(serving.get("all_categories", [])) | set(held.get("categories", [])))
    new_groups = sorted(set(serving.get("all_user_groups", [])) | set(held.get("user_groups", [])))
    base = loaded.params()
    param_sets = {serve.BASE: serve.to_numpy_params(base)}
    bought: dict[str, np.ndarray] = {}  # adapted set -> its support purchases (the support evidence)
    if not new_categories and not new_groups:
        return param_sets, {}, {}, bought
    listed = {t["task_id"] for t in manifest["tasks"] if t["role"] in UNIT_ROLES}
    dataset = load_task_dataset(folder, roles=UNIT_ROLES, spec=loaded.spec) if listed else None
    units = {t.task_id: t for t in (dataset.tasks if dataset else ())}
    adapter, adapted_mode = _adapter(loaded, params)
    launch = launch_rule(loaded, params)

    def resolve(task_id: str, name: str) -> tuple[str, str]:
        task = units.get(task_id)
        positives = int(task.support.labels.sum().item()) if task is not None else 0
        record: dict[str, Any] = {"support_rows": len(task.support) if task else 0, "support_positives": positives}
        if positives < params.min_adapt_positives:
            record["mode"] = "fallback"
            record["reason"] = f"{positives} support purchase(s) < min_adapt_positives {params.min_adapt_positives}"
            summary.adaptation[name] = record
            return serve.BASE, "fallback"
        started = time.monotonic()
        support = task.support
        if launch is not None:  # a launching category's support is seen as in meta-training (model/launch.py)
            support = replace(support, article_features=launch.hide(loaded.spec, support.article_features))
        # a new user group gets no support evidence unless the model's config says so (model/towers.py)
        evidence = loaded.model.config.uses_evidence(group_unit=task.is_group_unit)
        if not evidence:
            support = support.with_evidence(None)
        adapted = adapter(loaded.model, base, support.to(device))
        param_sets[task_id] = serve.to_numpy_params(adapted)
        if evidence:
            bought[task_id] = task.support.article_ids[task.support.labels.cpu().numpy() > 0.5]
        moved = sum(float((adapted[k].detach() - base[k]).abs().sum()) for k in base)
        record.update(mode=adapted_mode, seconds=round(time.monotonic() - started, 3), parameter_change_l1=moved)
        summary.adaptation[name] = record
        return task_id, adapted_mode

    by_category = {c: resolve(f"{c}|*", f"category {c}") for c in new_categories}
    by_group = {g: resolve(f"*|{g}", f"user group {g}") for g in new_groups}
    return param_sets, by_category, by_group, bought


# ------------------------------------------------------------------------------------------------ plan
def _product_codes(table: pa.Table) -> np.ndarray:
    """product_code per article; a missing code makes the article its own product (a unique negative code)."""
    if "product_code" not in table.column_names:
        return -np.arange(1, table.num_rows + 1, dtype=np.int64)
    codes = table.column("product_code")
    values = pc.fill_null(pc.cast(codes, pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    nulls = pc.is_null(codes).to_numpy(zero_copy_only=False)
    values[nulls] = -np.arange(1, int(nulls.sum()) + 1)
    return values


def build_plan(loaded, articles: pa.Table, group_category: pa.Table, param_sets: dict[str, dict[str, np.ndarray]],
               by_category: dict[str, tuple[str, str]], by_group: dict[str, tuple[str, str]], run_date: dt.date,
               params: RecommendParams, device: str,
               support_positives: dict[str, np.ndarray] | None = None) -> serve.ServingPlan:
    """The serving plan: every category's candidates encoded under each parameter set its rows use.

    An adapted set's articles carry the support evidence of its support purchases (``support_positives``), as in
    the evaluation's rankers (model/evidence.py).
    """
    import torch

    from fashion_meta.model.evidence import evidence_for

    support_positives = support_positives or {}
    launch = launch_rule(loaded, params)

    def evidence(key: str, ids: np.ndarray) -> np.ndarray | None:
        if key not in support_positives or not loaded.model.config.evidence:
            return None
        return evidence_for(support_positives[key], ids)

    spec = loaded.spec
    slots = serve.gc_slots(spec)
    tensors = {key: {n: torch.from_numpy(a).to(device) for n, a in p.items()} for key, p in param_sets.items()}
    categories = sorted(set(pc.unique(articles.column("category")).to_pylist()) - {None}) if articles.num_rows else []
    segments = serve.resolve_segments(categories, by_category, by_group)
    repeat = set(params.repeat_categories)
    plans = []
    for category in categories:
        rows = articles.filter(pc.equal(articles.column("category"), category))
        rows = rows.take(pc.sort_indices(rows, sort_keys=[("article_id", "ascending")]))
        key, mode, overrides = segments[category]
        inputs = spec.article_inputs(rows)
        if launch is not None:
            inputs = launch.hide(spec, inputs)
        keys = {key} | {k for k, _ in overrides.values()}
        ids = rows.column("article_id").to_numpy(zero_copy_only=False).astype(str).astype(object)
        gc = group_category.filter(pc.equal(group_category.column("category"), category)) if group_category.num_rows \
            else group_category
        plans.append(serve.CategoryPlan(
            category=category,
            article_ids=rows.column("article_id").to_numpy(zero_copy_only=False).astype(object),
            product_codes=_product_codes(rows), repeat=category in repeat, key=key, mode=mode,
            group_overrides=overrides,
            vectors={k: serve.article_vectors(loaded.model, tensors[k], inputs, device, evidence(k, ids))
                     for k in sorted(keys)},
            gc_groups=gc.column("user_group").to_pylist() if gc.num_rows else [],
            gc_inputs=serve.encode_group_features(spec, gc, slots) if len(slots) else None,
        ))
    return serve.ServingPlan(
        plan_id=uuid.uuid4().hex, run_date=run_date, model_version=loaded.version,
        architecture=loaded.model.architecture(), spec=spec.to_dict(), params=param_sets, categories=plans,
        gc_slots=slots, top_n=params.top_n, max_per_product=params.max_per_product or None,
        block_rows=params.block_rows, threads=params.threads or None, device=device,
    )


# ------------------------------------------------------------------------------------------ spark side
def bought_pairs(spark: SparkSession, lake_root: str, run_date: dt.date, customers: DataFrame,
                 articles: DataFrame, repeat_categories: tuple[str, ...]) -> DataFrame:
    """(customer_id, article_id): in-stock articles of non-repeat categories each active customer bought up to D."""
    tx = lake.read_table(spark, lake.table_path(lake_root, C.BRONZE_TRANSACTIONS))
    candidates = articles.where(~F.col("category").isin(list(repeat_categories))).select("article_id")
    return (
        tx.where(F.col("t_dat") <= F.lit(run_date)).select("customer_id", "article_id").distinct()
        .join(candidates, on="article_id", how="left_semi")
        .join(customers.select("customer_id"), on="customer_id", how="left_semi")
    )


def _score_spark(customers: DataFrame, plan: serve.ServingPlan, staging: str, partitions: int) -> None:
    def run(batches):
        return serve.score_batches(batches, plan)

    (customers.repartition(partitions, "customer_id")
     .mapInArrow(run, schemas.RECOMMENDATIONS)
     .write.mode("errorifexists").parquet(staging))


def _score_driver(customers: DataFrame, plan: serve.ServingPlan, staging: str, chunk: int = 65536) -> None:
    if "://" in staging and not staging.startswith("file://"):
        raise UsageError("[recommend] engine = driver writes its staging files locally: use engine = spark on a "
                         "remote lake")
    table = customers.orderBy("customer_id").toArrow()
    Path(staging).mkdir(parents=True, exist_ok=False)
    with torch_threads(plan.threads or None):  # restored after: the driver process goes on with other stages
        for i, start in enumerate(range(0, table.num_rows, chunk)):
            out = serve.score_batch(table.slice(start, chunk), plan)
            pq.write_table(out, f"{staging}/part-{i:05d}.parquet")


def run_recommend(spark: SparkSession, lake_root: str, run_date: dt.date, registry: str | Path,
                  params: RecommendParams = RecommendParams()) -> RecommendSummary:
    """Score, check and publish the recommendations of ``run_date``."""
    from fashion_meta.tasks.job import task_files_path

    from .checks import check_recommendations

    params.validate()
    started = time.monotonic()
    folder = Path(task_files_path(lake_root, params.files_dir, run_date))
    manifest, articles, group_category, customer_files = _snapshot(folder)
    device = _resolve_device(params.device)
    engine = params.engine if params.engine != "auto" else ("driver" if device.startswith("cuda") else "spark")
    if engine == "spark":
        device = "cpu"  # executors score on their CPUs; the driver's GPU is used by engine = driver
    loaded = _load_model(Path(registry), params.model_version, device)
    summary = RecommendSummary(run_date.isoformat(), loaded.version, engine, device)

    t0 = time.monotonic()
    # one torch thread: adapted parameters and article vectors are then the same bits on every rerun, whatever the
    # driver's core count or an earlier stage of this process left set (the thread count moves a product's last bit)
    with torch_threads(1):
        param_sets, by_category, by_group, positives = _adapt_units(loaded, folder, manifest, params, device,
                                                                    summary)
        plan = build_plan(loaded, articles, group_category, param_sets, by_category, by_group, run_date, params,
                          device, positives)
    summary.seconds["adapt_and_plan"] = round(time.monotonic() - t0, 2)
    summary.categories = len(plan.categories)
    for category in plan.categories:
        summary.categories_by_mode.setdefault(category.mode, []).append(category.category)
    for group, (_, mode) in sorted(by_group.items()):
        summary.groups_by_mode.setdefault(mode, []).append(group)
    log.info("recommend %s: model %s, %d categories (%s), new groups %s, engine %s on %s", run_date, loaded.version,
             summary.categories, {m: len(c) for m, c in summary.categories_by_mode.items()},
             summary.groups_by_mode or "none", engine, device)

    customers = spark.read.parquet(*customer_files)
    spark_articles = spark.read.parquet(*[str(folder / f) for f in manifest["scoring"]["articles"]])
    bought = bought_pairs(spark, lake_root, run_date, customers, spark_articles, params.repeat_categories)
    with_bought = customers.join(
        bought.groupBy("customer_id").agg(F.array_sort(F.collect_list("article_id")).alias("bought")),
        on="customer_id", how="left",
    )
    staging = f"{lake.resolve_root(lake_root).rstrip('/')}/_staging/recommendations/run_date={run_date}-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    try:
        if engine == "spark":
            _score_spark(with_bought, plan, staging, max(1, spark.sparkContext.defaultParallelism))
        else:
            _score_driver(with_bought, plan, staging)
        summary.seconds["score"] = round(time.monotonic() - t0, 2)
        staged = spark.read.parquet(staging).select(*[F.col(f.name).cast(f.dataType) for f in schemas.RECOMMENDATIONS])

        t0 = time.monotonic()
        report = check_recommendations(
            staged, spark_articles, customers, bought, top_n=params.top_n,
            repeat_categories=params.repeat_categories, max_per_product=params.max_per_product or None,
        )
        summary.seconds["checks"] = round(time.monotonic() - t0, 2)
        report.raise_if_failed()
        summary.rows = report.rows
        summary.customers = customers.count()
        summary.rows_by_mode = {r[0]: int(r[1]) for r in staged.groupBy("serving_mode").count().collect()}

        t0 = time.monotonic()
        path = lake.table_path(lake_root, C.RECOMMENDATIONS)
        lake.ensure_table(spark, path, schemas.RECOMMENDATIONS, partition_by=("run_date",))
        lake.replace_where(staged, path, f"run_date = DATE'{run_date.isoformat()}'")
        summary.seconds["publish"] = round(time.monotonic() - t0, 2)
    finally:
        fs.delete(spark, staging)
    summary.seconds["total"] = round(time.monotonic() - started, 2)
    log.info("recommend: %s", json.dumps(asdict(summary), default=str))
    return summary
