"""Diagnosis of the new-category rankings of one finished evaluation: what the meta-learners are up against.

    .venv/bin/python benchmarks/evaluation/diagnose.py --work OUT/work/seed=S [--k 50] [--weights 0.5,1,2,4,8]

Reads what `fashion-meta evaluate --keep-work` left in its work folder for one seed: the source lake (for the truth after the
cutoff and the customers' user groups, recomputed with Spark exactly as the evaluation does), the K lake's task
files (support rows of each held-out category and the scoring snapshot at the cutoff) and the models trained for
that seed (the smallest K lake's registry). Then, on the held-out categories only, prints NDCG@12 (mean over the
(customer, category) truths, per category in braces) of:

- ``popularity``: purchases of each article in the support set (the evaluation's baseline);
- ``feature:<column>``: one article feature at the cutoff, alone (sales_7d counts the support purchases made in
  the last 7 days, so it shows how much of popularity the model's inputs already carry);
- ``warm``: the first meta-learner's model without adaptation (as in the evaluation), and each trained method
  with its serving adaptation;
- ``warm + w*log1p(count)``: the warm model's score plus w times log(1 + support purchases of the article), for
  each w of ``--weights``. The best w is picked here on the held-out categories themselves, so these rows are an
  optimistic bound on what blending support popularity into the model could give, not a method;
- the support rows: how many, how many positives, and the share of rows whose article features are missing.

Development aid: run it on development seeds only, never on the seeds of the quality bar.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="an evaluation's work folder of one seed (OUT/work/seed=S)")
    parser.add_argument("--k", type=int, default=50, help="which K lake to rank on")
    parser.add_argument("--weights", default="0.5,1,2,4,8", help="blend weights w of warm + w*log1p(count)")
    parser.add_argument("--features", default="article_daily__sales_7d,article_daily__sales_28d",
                        help="article feature columns to rank by alone")
    parser.add_argument("--query-days", type=int, default=7)
    parser.add_argument("--category-column", default="product_type_name")
    return parser.parse_args(argv)


def truth_and_groups(work: Path, cutoff: dt.date, query_days: int, category_column: str):
    """The evaluation's truth table and customer -> user group at the cutoff, from the work folder's source lake."""
    from fashion_meta import constants as C
    from fashion_meta import lake
    from fashion_meta.evaluation.run import groups_at, truth_table
    from fashion_meta.features.job import article_categories
    from fashion_meta.spark import get_spark

    source = str(work / "source")
    spark = get_spark("fashion-meta-diagnose", master="local[2]", shuffle_partitions=4, ui=False)
    try:
        tx = lake.read_table(spark, lake.table_path(source, C.BRONZE_TRANSACTIONS))
        cats = article_categories(lake.read_table(spark, lake.table_path(source, C.BRONZE_ARTICLES)),
                                  category_column).select("article_id", "category")
        customers = lake.read_table(spark, lake.table_path(source, C.BRONZE_CUSTOMERS))
        group_of = {r[0]: r[1] for r in groups_at(tx, customers, cutoff).collect()}
        truth = truth_table(tx, cats, cutoff, query_days)
    finally:
        spark.stop()
    return truth, group_of


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work)
    holdout_file = work / "holdout.json"
    if not holdout_file.is_file():
        print(f"error: {holdout_file} not found: --work must be OUT/work/seed=S of a finished evaluation",
              file=sys.stderr)
        return 2
    if not (work / "source").is_dir():
        print(f"error: {work} holds no lakes: `fashion-meta evaluate` removes a finished seed's lakes unless run "
              f"with --keep-work; delete {work / 'records.json'} (else the seed's records are reused and nothing is "
              "rebuilt) and run the same evaluate command with --keep-work", file=sys.stderr)
        return 2
    hold = json.loads(holdout_file.read_text())
    cutoff = dt.date.fromisoformat(hold["cutoff"])
    folders = sorted((work / f"k={args.k}" / "task_files").glob("run_date=*"))
    lakes = sorted((p for p in work.glob("k=*") if (p / "models").is_dir()), key=lambda p: int(p.name[2:]))
    if not folders or not lakes:
        print(f"error: no task files under {work}/k={args.k} or no models under {work}/k=*", file=sys.stderr)
        return 2
    weights = [float(w) for w in args.weights.split(",") if w.strip()]

    import torch

    from fashion_meta.evaluation.run import new_category_units, read_scoring, score_unit, task_rows
    from fashion_meta.model.checkpoint import list_versions, load_model
    from fashion_meta.model.ranking import ModelRanker, PopularityRanker, _BaseRanker, _count, _ids, _positives
    from fashion_meta.model.ranking import adapted_ranker
    from fashion_meta.model.spec import numeric_column

    torch.set_num_threads(2)
    truth, group_of = truth_and_groups(work, cutoff, args.query_days, args.category_column)
    registry = lakes[0] / "models"
    models = {v: load_model(registry, v) for v in list_versions(registry)}
    # the evaluation's "warm" is the first meta-learner of its methods, in this order by default
    metas = [v for v, m in models.items() if (m.card.get("adaptation") or {}).get("kind") == "meta"]
    meta = min(metas, key=lambda v: (("maml", "fomaml", "anil", "metasgd") + (v,)).index(v))
    warm = models[meta]

    folder = folders[-1]
    snapshot = read_scoring(folder)
    candidates = snapshot.candidates
    held = json.loads((folder / "manifest.json").read_text())["holdout"]["categories"]  # those with K lake purchases
    units = new_category_units(hold["categories"], held, truth, snapshot, task_rows(folder), group_of)

    print(f"# {work} K={args.k}: held-out categories {[u.name for u in units]}, models from {registry}")
    for u in units:
        labels = u.support.column("label").to_numpy() if u.support.num_rows else np.empty(0)
        missing = (np.isnan(numeric_column(u.support, "article_daily__sales_7d")).mean()
                   if u.support.num_rows else float("nan"))
        print(f"- {u.name}: {u.support.num_rows} support rows, {int(labels.sum())} positive, article features "
              f"missing on {missing:.0%}; {len(candidates[u.name])} candidate articles")

    class FeatureRanker(_BaseRanker):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column, self.name = column, f"feature:{column}"

        def _scores(self, customers_t, category, cands):
            x = np.nan_to_num(numeric_column(cands, self.column), nan=-1.0)
            return np.broadcast_to(x, (customers_t.num_rows, len(x)))

    class Blend(ModelRanker):
        def __init__(self, w: float) -> None:
            super().__init__(warm.model, warm.params(), warm.spec, name=f"warm + {w}*log1p(count)")
            self.w = w

        def _fit(self, interactions, unit):
            self._pos = _positives(interactions, ("category", "article_id"))

        def _scores(self, customers_t, category, cands):
            counts = _count(self._pos["article_id"][self._pos["category"] == category], _ids(cands, "article_id"))
            return super()._scores(customers_t, category, cands) + self.w * np.log1p(counts)

    makers = {"popularity": PopularityRanker}
    makers.update({f"feature:{c}": (lambda c=c: FeatureRanker(c)) for c in args.features.split(",") if c})
    makers[f"warm ({meta}, not adapted)"] = lambda: ModelRanker(warm.model, warm.params(), warm.spec, name="warm")
    makers.update({v: (lambda m=m: adapted_ranker(m)) for v, m in models.items()})
    makers.update({f"warm + {w}*log1p(count)": (lambda w=w: Blend(w)) for w in weights})
    print("\n| ranking | NDCG@12 | per category |\n|---|---:|---|")
    for name, make in makers.items():
        values, per = [], {}
        for unit in units:
            for key, v in score_unit(make, unit, candidates, 12).items():
                if key.endswith("\tndcg@12"):
                    values += v
                    per[key.split("\t")[0]] = round(float(np.mean(v)), 3)
        print(f"| {name} | {np.mean(values):.4f} | {per} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
