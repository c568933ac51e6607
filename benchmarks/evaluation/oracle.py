"""How far above popularity can a ranking of a new category go on this generator, and with which inputs?

The synthetic shop picks an article of a category by softmax of customer-article affinity (the customer's hidden
taste vector . the article's hidden latent) + the article's bias (log popularity, launch recency, age): see
``fashion_meta/synth/generator.py``. Ranking a customer's candidates by that logit is the best any recommender can
do in expectation (up to re-purchases). This script rebuilds the generator's hidden state for one seed (the same
random streams as ``generate_shop``, checked against the written files; it only reads the generator), and runs the
evaluation's own protocol functions on the shop (``replay_protocol``: ingest, the held-out categories and user
groups, ``launched_recently``, ``truncate_for_holdout``, the query truth), so the support rows, the truth customers
and what each customer's history keeps are the evaluation's. It then ranks each held-out category's truth
customers over every article of the category with:

- ``support``: purchases in the K support rows, one per customer, article and day (the evaluation's "popularity in
  the support set"; ties by article id);
- ``true_bias``: the generator's article bias on the middle query day (popularity known exactly);
- ``true_affinity``: hidden taste . article latent alone;
- ``oracle``: affinity + bias, the generator's own logit;
- ``support + X``: w * log(1 + support count) + X, with X one of
  - ``affinity``: the exact hidden affinity (every taste known, popularity from the K rows only);
  - ``history_latent``: the customer's purchases that the K lake keeps outside the held-out categories, pooled
    over their exact hidden latents, dotted with the candidate's latent (perfect article representations);
  - ``probe_text`` / ``probe_bow``: the same with every latent replaced by a ridge regression from the article's
    inputs (fitted on the warm categories' articles against their hidden latents): the pretrained text vector the
    model uses (``text``), or a bag of the attribute values and the words of name and description (``bow``);
  - ``learnt_text`` / ``learnt_bow``: one bilinear taste model learnt from purchases alone (no hidden state):
    (pooled history inputs W1) . (article inputs W2) + a per-article bias, trained by softmax over the category's
    articles on the history rows of the last 60 days before the cutoff (the event's article left out of its
    history), rank 32, 10 epochs, Adam 3e-3, seed 0; at ranking the bias is replaced by the support term. One
    small model, not a bound on what can be learnt.

  Every X is scaled to unit mean per-customer spread and ``w`` is picked from 0.5..16 on the held-out customers
  themselves, so these rows are optimistic for their inputs; ``--all-weights`` prints every weight.

    .venv/bin/python benchmarks/evaluation/oracle.py --seed 7 [--k 50] [--holdout-groups 2] [--no-learn]

Local Spark for the protocol; about 3 minutes a seed on 2 cores. Development seeds only: it refuses the kept
quality-bar seeds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fashion_meta import constants  # noqa: E402
from fashion_meta.config import load_config  # noqa: E402
from fashion_meta.model.metrics import ndcg_at_k  # noqa: E402
from fashion_meta.synth import generator as G  # noqa: E402
from fashion_meta.synth.catalog import build_catalog  # noqa: E402
from fashion_meta.synth.population import build_population  # noqa: E402

WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
BOW_COLUMNS = ("graphical_appearance_name", "colour_group_name", "perceived_colour_value_name",
               "perceived_colour_master_name", "department_name", "index_name", "section_name", "garment_group_name")
LEARN_DAYS, LEARN_RANK, LEARN_EPOCHS, LEARN_LR, LEARN_BATCH = 60, 32, 10, 3e-3, 1024


def text_vectors(articles: pd.DataFrame) -> np.ndarray:
    """The articles' text vectors as the features stage encodes them (the default text model)."""
    from fashion_meta.features.text_encoder import article_text, get_encoder

    texts = [article_text({k: (v or None) for k, v in row.items()}) for row in articles.to_dict("records")]
    return get_encoder().encode(texts).astype(np.float64)


def bag_of_words(articles: pd.DataFrame) -> np.ndarray:
    """One-hot attribute values plus the words of name and description (0/1 per article)."""
    tokens = [[f"{c}={row[c]}" for c in BOW_COLUMNS]
              + [f"w={w}" for w in set(re.findall(r"[a-z]+", f"{row['prod_name']} {row['detail_desc']}".lower()))]
              for row in articles.to_dict("records")]
    vocab = {t: i for i, t in enumerate(sorted({t for ts in tokens for t in ts}))}
    out = np.zeros((len(tokens), len(vocab)))
    for i, ts in enumerate(tokens):
        out[i, [vocab[t] for t in ts]] = 1.0
    return out


def ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge weights on centred data (the intercept is one constant per latent dimension: no effect on a ranking)."""
    xc = x - x.mean(0)
    return np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - y.mean(0)))


def within_category_r2(pred: np.ndarray, true: np.ndarray, category: np.ndarray) -> float:
    """R^2 of a latent prediction after removing each category's mean (what a within-category ranking uses)."""
    def centred(v: np.ndarray) -> np.ndarray:
        out = v.copy()
        for c in np.unique(category):
            out[category == c] -= v[category == c].mean(0)
        return out
    p, t = centred(pred), centred(true)
    return float(1 - ((p - t) ** 2).sum() / (t ** 2).sum())


def ndcg(scores: np.ndarray, article_ids: np.ndarray, truths: list[set[str]], n: int = 12) -> float:
    """Mean NDCG@n of per-customer score rows (higher first, ties by article id) against the truth sets."""
    by_id = np.argsort(article_ids, kind="stable")
    ids, s = article_ids[by_id], scores[:, by_id]
    top = np.argsort(-s, axis=1, kind="stable")[:, :n]
    return float(np.mean([ndcg_at_k(list(ids[row]), truth, n) for row, truth in zip(top, truths)]))


def _history_sums(n_customers: int, customer: np.ndarray, article: np.ndarray,
                  x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: the sum of ``x`` over her history rows, and how many rows."""
    total = np.zeros((n_customers, x.shape[1]))
    np.add.at(total, customer, x[article])
    return total, np.bincount(customer, minlength=n_customers).astype(np.float64)


def pooled_history(n_customers: int, customer: np.ndarray, article: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Mean of ``x`` over each customer's purchases (zeros without any)."""
    total, count = _history_sums(n_customers, customer, article, x)
    return total / np.maximum(count, 1)[:, None]


def event_histories(x: np.ndarray, customer: np.ndarray, article: np.ndarray, events: np.ndarray,
                    n_customers: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept events, their pooled history): the mean of ``x`` over the customer's other purchases.

    ``customer``/``article``: history rows; ``events``: indices of the rows to predict. "Other" leaves out every
    row of the event's own article (a customer who bought it twice must not see it in her history: a held-out
    article never is); events with nothing else in the history are dropped.
    """
    total, count = _history_sums(n_customers, customer, article, x)
    same = (pd.Series(1, index=pd.MultiIndex.from_arrays([customer, article]))
            .groupby(level=[0, 1]).transform("sum").to_numpy().astype(np.float64))  # this customer's rows of it
    eu, ea, es = customer[events], article[events], same[events]
    keep = count[eu] > es
    history = (total[eu[keep]] - es[keep, None] * x[ea[keep]]) / (count[eu[keep]] - es[keep])[:, None]
    return events[keep], history


def learn_bilinear(x: np.ndarray, category: np.ndarray, customer: np.ndarray, article: np.ndarray,
                   recent: np.ndarray, n_customers: int) -> tuple[np.ndarray, np.ndarray]:
    """(W1, W2) of a softmax-within-category bilinear taste model learnt from purchases (see the docstring).

    ``customer``/``article``: the history rows (row indices into the customers and ``x``); ``recent``: which of
    them are training events. An event's history leaves out every purchase of the event's own article (a held-out
    article is never in anybody's history, so training must not learn to match an article with itself).
    """
    import torch

    torch.manual_seed(0)
    events, history = event_histories(x, customer, article, np.flatnonzero(recent), n_customers)
    xt = torch.tensor(x, dtype=torch.float32)
    history = torch.tensor(history, dtype=torch.float32)
    ea = torch.tensor(article[events])
    w1 = torch.nn.Parameter(0.01 * torch.randn(x.shape[1], LEARN_RANK))
    w2 = torch.nn.Parameter(0.01 * torch.randn(x.shape[1], LEARN_RANK))
    bias = torch.nn.Parameter(torch.zeros(len(x)))
    opt = torch.optim.Adam([w1, w2, bias], lr=LEARN_LR)
    cat = torch.tensor(category)
    event_category = cat[ea]
    n_events = len(events)
    members = {int(c): torch.nonzero(cat == c).squeeze(1) for c in torch.unique(event_category)}
    position = torch.full((len(x),), -1, dtype=torch.long)
    for m in members.values():
        position[m] = torch.arange(len(m))
    for epoch in range(LEARN_EPOCHS):
        batches = []
        order = torch.randperm(n_events)
        for c in members:
            mine = order[event_category[order] == c]
            batches += [(c, mine[s: s + LEARN_BATCH]) for s in range(0, len(mine), LEARN_BATCH)]
        loss_sum = 0.0
        for i in torch.randperm(len(batches)).tolist():  # categories interleaved, not one block after another
            c, b = batches[i]
            m = members[c]
            logits = (history[b] @ w1) @ (xt[m] @ w2).T + bias[m]
            loss = torch.nn.functional.cross_entropy(logits, position[ea[b]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(b)
        print(f"    epoch {epoch + 1}/{LEARN_EPOCHS}: softmax loss {loss_sum / n_events:.4f} ({n_events:,} purchases)")
    return w1.detach().double().numpy(), w2.detach().double().numpy()


def replay_protocol(spark, shop: Path, lake_root: Path, params) -> dict:
    """The evaluation's own protocol functions on the generated shop: held-out slices, K rows, history and truth.

    Returns pandas frames: ``support`` (the held-out categories' K rows, one per customer, article and day, as the
    task builder keeps them), ``history`` (what the K lake keeps outside the held-out categories: the held-out user
    groups' members keep only their K rows), ``truth`` (customer, category, truth) of the held-out categories,
    the held-out category and group names, and the held-out groups' members (customer ids).
    """
    from pyspark.sql import functions as F

    from fashion_meta import lake
    from fashion_meta.evaluation import protocol
    from fashion_meta.evaluation.run import _pick_groups, groups_at, launched_recently, pick_new_categories
    from fashion_meta.features.job import article_categories
    from fashion_meta.ingest.job import run_ingest

    root = str(lake_root)
    run_ingest(spark, str(shop), root, as_of=params.cutoff)
    tx = lake.read_table(spark, lake.table_path(root, constants.BRONZE_TRANSACTIONS))
    cats = article_categories(lake.read_table(spark, lake.table_path(root, constants.BRONZE_ARTICLES)),
                              params.category_column).select("article_id", "category")
    new_categories = pick_new_categories(tx, cats, params.cutoff, params.holdout_categories)
    customers = lake.read_table(spark, lake.table_path(root, constants.BRONZE_CUSTOMERS))
    groups = groups_at(tx, customers, params.cutoff).persist()  # read three times below, as the evaluation does
    new_groups = _pick_groups(groups, params)
    members = groups.where(F.col("user_group").isin(new_groups)) if new_groups else None
    member_ids = set() if members is None else {r[0] for r in members.select("customer_id").collect()}
    kept = protocol.truncate_for_holdout(launched_recently(tx, cats, params, new_categories, members), cats,
                                         params.cutoff, params.ks[0], params.seed, new_categories, members)
    kept = (kept.select("customer_id", "article_id", "t_dat").dropDuplicates()
            .join(cats, on="article_id").toPandas())
    groups.unpersist()
    held = kept["category"].isin(new_categories)
    truth = (protocol.query_truth(tx, cats, params.cutoff, params.query_days)
             .where(F.col("category").isin(new_categories)).orderBy("category", "customer_id").toPandas())
    return {"support": kept[held], "history": kept[~held], "truth": truth, "categories": new_categories,
            "groups": new_groups, "members": member_ids}


def run(spark, seed: int, k: int, holdout: int, holdout_groups: int, learn: bool, work: Path,
        shape: dict[str, int] | None = None) -> tuple[pd.DataFrame, dict]:
    """Generate the shop under ``work`` and rank its new categories (``shape``: the evaluation shop by default).

    Returns the per-category table (support, true_bias, true_affinity, oracle) and {"facts", "curve", "replay"}:
    the held-out slices and the probes' R^2, NDCG@12 of every support + X blend per category and weight, and the
    protocol's frames (``replay_protocol``).
    """
    from fashion_meta.evaluation.run import EvalParams

    e = load_config(None)["evaluate"]
    shape = shape or {n: e[n] for n in ("customers", "articles", "categories", "days")}
    spec = G.ShopSpec(seed=seed, **shape)
    shop = work / "shop"
    summary = G.generate_shop(spec, shop)
    print(f"shop seed {seed}: {summary.transactions_rows:,} rows, generated in {summary.elapsed_seconds:.0f}s")
    catalog_rng, population_rng, purchases_rng = G._streams(seed)
    catalog = build_catalog(spec.articles, spec.categories, spec.days, catalog_rng)
    population = build_population(spec.customers, population_rng)
    sim = G._PurchaseSimulation(spec, catalog, population, purchases_rng, G.target_transactions(spec))
    articles = pd.read_csv(shop / f"{constants.ARTICLES_FILE}.csv", dtype=str, keep_default_na=False)
    article_ids = articles["article_id"].to_numpy().astype(str)
    if not (article_ids == catalog.columns["article_id"].astype(str)).all():
        raise AssertionError("rebuilt catalog does not match articles.csv: the streams differ from generate_shop's")
    customer_ids = population.customer_id.astype(str)
    if not (pd.read_csv(shop / f"{constants.CUSTOMERS_FILE}.csv", dtype=str, usecols=["customer_id"])
            ["customer_id"].to_numpy() == customer_ids).all():
        raise AssertionError("rebuilt population does not match customers.csv")

    last = spec.start_date + dt.timedelta(days=spec.days - 1)
    cutoff = last - dt.timedelta(days=e["query_days"])
    params = EvalParams(cutoff=cutoff, holdout_categories=str(holdout), holdout_groups=str(holdout_groups or ""),
                        ks=(k,), query_days=e["query_days"], window_days=e["window_days"],
                        launch_days=e["launch_days"], seed=seed)
    replay = replay_protocol(spark, shop, work / "lake", params)
    held, support, history = replay["categories"], replay["support"], replay["history"]
    print(f"cutoff {cutoff}, launch {params.launch_date}, held-out categories {', '.join(held)}; "
          f"user groups {', '.join(replay['groups']) or 'none'}; {len(history):,} history rows")
    row_of_customer = {c: i for i, c in enumerate(customer_ids)}
    row_of_article = {a: i for i, a in enumerate(article_ids)}
    h_u = history["customer_id"].map(row_of_customer).to_numpy()
    h_a = history["article_id"].map(row_of_article).to_numpy()

    names = np.array(catalog.categories.names)
    category = catalog.category
    warm = ~np.isin(names[category], held)
    latent = sim.article_latent
    n_customers = len(customer_ids)
    inputs = {"text": text_vectors(articles), "bow": bag_of_words(articles)}
    article_repr = {"history_latent": latent}
    facts = {"seed": seed, "k": k, "cutoff": str(cutoff), "held_out": held, "groups": replay["groups"]}
    for name, x in inputs.items():
        probe = x @ ridge(x[warm], latent[warm])
        facts[f"probe_{name}_r2"] = within_category_r2(probe[~warm], latent[~warm], category[~warm])
        print(f"  {name} ({x.shape[1]} inputs): linear probe of the hidden latent, within-category R^2 "
              f"{facts[f'probe_{name}_r2']:.3f} on the held-out categories' articles")
        article_repr[f"probe_{name}"] = probe
    customer_repr = {n: pooled_history(n_customers, h_u, h_a, v) for n, v in article_repr.items()}
    if learn:
        recent = (history["t_dat"] > cutoff - dt.timedelta(days=LEARN_DAYS)).to_numpy()
        for name, x in inputs.items():
            print(f"  learning the bilinear taste model on {name} inputs")
            w1, w2 = learn_bilinear(x, category, h_u, h_a, recent, n_customers)
            article_repr[f"learnt_{name}"] = x @ w2
            customer_repr[f"learnt_{name}"] = pooled_history(n_customers, h_u, h_a, x) @ w1

    query_mid = (cutoff - spec.start_date).days + (e["query_days"] + 1) // 2
    bias = sim._article_bias(query_mid)
    rows, curves = [], {}
    for name in held:
        candidates = np.flatnonzero(names[category] == name)  # every article of a held-out category is listed
        cand = article_ids[candidates]
        truth = replay["truth"][replay["truth"]["category"] == name]
        customers = truth["customer_id"].map(row_of_customer).to_numpy()
        truths = [set(t) for t in truth["truth"]]
        affinity = population.latent[customers] @ latent[candidates].T
        b = np.broadcast_to(bias[candidates], affinity.shape)
        counts = support.loc[support["category"] == name, "article_id"].value_counts()
        s = np.log1p(np.array([counts.get(a, 0) for a in cand], dtype=np.float64))
        result = {"support": ndcg(np.broadcast_to(s, affinity.shape), cand, truths),
                  "true_bias": ndcg(b, cand, truths), "true_affinity": ndcg(affinity, cand, truths),
                  "oracle": ndcg(affinity + b, cand, truths)}
        personal = {"affinity": affinity}
        personal.update({n: customer_repr[n][customers] @ article_repr[n][candidates].T for n in article_repr})
        for n, x in personal.items():
            x = x / max(x.std(axis=1).mean(), 1e-12)
            for w in WEIGHTS:
                curves[(name, n, w)] = ndcg(w * s[None, :] + x, cand, truths)
        rows.append({"category": name, "customers": len(truths), "candidates": len(cand),
                     "support_rows": int(counts.sum()), **result})
        print(f"  {name}: {len(truths)} customers, {len(cand)} candidates, {int(counts.sum())} support rows")
    table = pd.DataFrame(rows)
    curve = pd.Series(curves).rename_axis(["category", "input", "weight"]).rename("ndcg").reset_index()
    return table, {"facts": facts, "curve": curve, "replay": replay}


def pool(table: pd.DataFrame, curve: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """NDCG@12 pooled over every held-out category's customers (as the evaluation pools them).

    Returns {method: NDCG}, with each blend at its best weight ("support + X"), and the blends by weight
    (rows X, columns w).
    """
    share = dict(zip(table["category"], table["customers"] / table["customers"].sum()))
    pooled = {m: float((table[m] * table["category"].map(share)).sum())
              for m in ("support", "true_bias", "true_affinity", "oracle")}
    weighted = curve.assign(pooled=curve["ndcg"] * curve["category"].map(share))
    by_weight = weighted.groupby(["input", "weight"], sort=False)["pooled"].sum().unstack()
    for name, row in by_weight.iterrows():
        pooled[f"support + {name}"] = float(row.max())
    return pooled, by_weight


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--holdout-categories", type=int, default=6)
    p.add_argument("--holdout-groups", type=int, default=2, help="as the evaluation run it is compared with")
    p.add_argument("--no-learn", action="store_true", help="skip the bilinear models learnt from purchases")
    p.add_argument("--all-weights", action="store_true", help="print NDCG@12 for every support weight")
    args = p.parse_args()
    if args.seed in load_config(None)["evaluate"]["seeds"]:
        raise SystemExit(f"seed {args.seed} is a kept quality-bar seed: use a development seed")
    started = time.monotonic()
    from fashion_meta.spark import get_spark

    spark = get_spark("oracle", master="local[2]", shuffle_partitions=4, driver_memory="4g", ui=False)
    with tempfile.TemporaryDirectory(prefix="oracle-shop-") as tmp:
        table, extra = run(spark, args.seed, args.k, args.holdout_categories, args.holdout_groups,
                           not args.no_learn, Path(tmp))
    pooled, by_weight = pool(table, extra["curve"])
    print(f"\nseed {args.seed}, K={args.k}: NDCG@12 pooled over {int(table['customers'].sum()):,} customers of "
          f"{len(table)} new categories ({time.monotonic() - started:.0f}s)")
    for m, v in pooled.items():
        weight = f"  (w {by_weight.loc[m[10:]].idxmax():g})" if m.startswith("support + ") else ""
        print(f"  {m:28s} {v:.4f}  {v / pooled['support']:.3f}x support{weight}")
    if args.all_weights:
        print("\nsupport + X by weight w (ratio to support):")
        print((by_weight / pooled["support"]).round(3).to_string())


if __name__ == "__main__":
    main()
