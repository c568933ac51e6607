"""How far above popularity can a ranking of a new category go on this generator, and with which inputs?

The synthetic shop picks an article of a category by softmax of customer-article affinity (the customer's hidden
taste vector . the article's hidden latent) + the article's bias (log popularity, launch recency, age): see
``fashion_meta/synth/generator.py``. Ranking a customer's candidates by that logit is the best any recommender can
do in expectation. This script rebuilds the generator's hidden state for one seed (the same random streams as
``generate_shop``; it only reads the generator, never changes it), replays the evaluation's new-category protocol
in pandas (cutoff, the N categories with the latest first sale, launch ``launch_days`` before the cutoff, the
first K purchases after it as support, the query days' purchases as truth) and ranks each held-out category's
truth customers with:

- ``support``: purchases in the K support rows (the evaluation's "popularity in the support set"; ties by id);
- ``true_bias``: the generator's article bias on the middle query day (popularity known exactly);
- ``true_affinity``: hidden taste . article latent alone;
- ``oracle``: affinity + bias, the generator's own logit (the ceiling);
- ``support + X``: w * log(1 + support count) + X, with X one of
  - ``affinity``: the exact hidden affinity (a model that knew every taste, popularity from the K rows only);
  - ``history_latent``: the customer's purchases before the cutoff (outside the held-out categories) pooled over
    their exact hidden latents, dotted with the candidate's latent (perfect article representations);
  - ``probe_text`` / ``probe_bow``: the same with every latent replaced by a ridge regression from the article's
    inputs (fitted on the warm categories' articles against the hidden latents): the pretrained text vector the
    model uses (``text``), or a bag of the attribute values and the words of name and description (``bow``);
  - ``learnt_text`` / ``learnt_bow``: a bilinear taste model learnt from purchases alone (no hidden state):
    (pooled history inputs W1) . (article inputs W2) + a per-article bias, trained by softmax over the category's
    articles on the last 60 days of warm purchases before the cutoff (history leave-one-out), rank 32, 6 epochs,
    Adam 3e-3, seed 0; at ranking the bias is replaced by the support term.

  Every X is scaled to unit mean per-customer spread and ``w`` is picked from 0.5..16 on the held-out customers
  themselves, so these rows are optimistic bounds; the table of every weight is printed with ``--all-weights``.

Differences to ``fashion-meta evaluate``: the K support rows are drawn among the launch-period purchases by a
seeded shuffle within a day (the evaluation orders ties by a Spark xxhash64 of the row), so ``support`` is the
mean over ``--draws`` draws and differs a little from the evaluation's figure; candidates are the category's
articles on sale at the cutoff. Truth customers are the same set (3,703 on seed 7, as in the evaluation).

    .venv/bin/python benchmarks/evaluation/oracle.py --seed 7 [--k 50] [--draws 5] [--no-learn]

No Spark; about 3 minutes per seed on 2 cores (the learnt rows most of it). Development seeds only: the kept
quality-bar seeds are not for looking at.
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
LEARN_DAYS, LEARN_RANK, LEARN_EPOCHS, LEARN_LR, LEARN_BATCH = 60, 32, 6, 3e-3, 1024


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


def pooled_history(n_customers: int, customer: np.ndarray, article: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Mean of ``x`` over each customer's purchases (zeros without any)."""
    total = np.zeros((n_customers, x.shape[1]))
    np.add.at(total, customer, x[article])
    count = np.bincount(customer, minlength=n_customers)[:, None]
    return total / np.maximum(count, 1)


def learn_bilinear(x: np.ndarray, category: np.ndarray, customer: np.ndarray, article: np.ndarray,
                   recent: np.ndarray, n_customers: int, skip: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """(W1, W2) of a softmax-within-category bilinear taste model learnt from purchases (see the docstring)."""
    import torch

    torch.manual_seed(0)
    xt = torch.tensor(x, dtype=torch.float32)
    total = torch.zeros(n_customers, x.shape[1]).index_add_(0, torch.tensor(customer), xt[torch.tensor(article)])
    count = torch.bincount(torch.tensor(customer), minlength=n_customers).float()
    eu, ea = torch.tensor(customer[recent]), torch.tensor(article[recent])
    keep = count[eu] > 1
    eu, ea = eu[keep], ea[keep]
    history = (total[eu] - xt[ea]) / (count[eu] - 1)[:, None]  # leave the predicted purchase out
    w1 = torch.nn.Parameter(0.01 * torch.randn(x.shape[1], LEARN_RANK))
    w2 = torch.nn.Parameter(0.01 * torch.randn(x.shape[1], LEARN_RANK))
    bias = torch.nn.Parameter(torch.zeros(len(x)))
    opt = torch.optim.Adam([w1, w2, bias], lr=LEARN_LR)
    cat = torch.tensor(category)
    event_category = cat[ea]
    members = {c: torch.nonzero(cat == c).squeeze(1) for c in np.unique(category) if c not in skip}
    for epoch in range(LEARN_EPOCHS):
        order, loss_sum = torch.randperm(len(eu)), 0.0
        for c, m in members.items():
            events = order[event_category[order] == c]
            position = torch.full((len(x),), -1, dtype=torch.long)
            position[m] = torch.arange(len(m))
            for s in range(0, len(events), LEARN_BATCH):
                b = events[s: s + LEARN_BATCH]
                logits = (history[b] @ w1) @ (xt[m] @ w2).T + bias[m]
                loss = torch.nn.functional.cross_entropy(logits, position[ea[b]])
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_sum += loss.item() * len(b)
        print(f"    epoch {epoch + 1}/{LEARN_EPOCHS}: softmax loss {loss_sum / len(eu):.4f} ({len(eu):,} purchases)")
    return w1.detach().double().numpy(), w2.detach().double().numpy()


def run(seed: int, k: int, draws: int, holdout: int, learn: bool, work: Path,
        shape: dict[str, int] | None = None) -> tuple[pd.DataFrame, dict]:
    """Generate the shop into ``work`` and rank its new categories (``shape``: the evaluation shop by default).

    Returns the per-category table (support, true_bias, true_affinity, oracle) and {"facts", "curve"}: the
    probes' R^2 and the held-out categories, and NDCG@12 of every support + X blend per category and weight.
    """
    e = load_config(None)["evaluate"]
    shape = shape or {n: e[n] for n in ("customers", "articles", "categories", "days")}
    spec = G.ShopSpec(seed=seed, **shape)
    summary = G.generate_shop(spec, work)
    print(f"shop seed {seed}: {summary.transactions_rows:,} rows, generated in {summary.elapsed_seconds:.0f}s")
    catalog_rng, population_rng, purchases_rng = G._streams(seed)
    catalog = build_catalog(spec.articles, spec.categories, spec.days, catalog_rng)
    population = build_population(spec.customers, population_rng)
    sim = G._PurchaseSimulation(spec, catalog, population, purchases_rng, G.target_transactions(spec))

    articles = pd.read_csv(work / f"{constants.ARTICLES_FILE}.csv", dtype=str, keep_default_na=False)
    article_ids = articles["article_id"].to_numpy().astype(str)
    if not (article_ids == catalog.columns["article_id"].astype(str)).all():
        raise AssertionError("rebuilt catalog does not match articles.csv: the streams differ from generate_shop's")
    customer_ids = population.customer_id.astype(str)
    if not (pd.read_csv(work / f"{constants.CUSTOMERS_FILE}.csv", dtype=str, usecols=["customer_id"])
            ["customer_id"].to_numpy() == customer_ids).all():
        raise AssertionError("rebuilt population does not match customers.csv")
    tx = pd.read_csv(work / f"{constants.TRANSACTIONS_FILE}.csv", dtype=str,
                     usecols=["t_dat", "customer_id", "article_id"])
    tx["t_dat"] = pd.to_datetime(tx["t_dat"]).dt.date
    tx["category"] = tx["article_id"].map(dict(zip(article_ids, articles["product_type_name"])))
    tx["a"] = tx["article_id"].map({a: i for i, a in enumerate(article_ids)})
    tx["u"] = tx["customer_id"].map({c: i for i, c in enumerate(customer_ids)})

    last = spec.start_date + dt.timedelta(days=spec.days - 1)
    cutoff = last - dt.timedelta(days=e["query_days"])
    launch = cutoff - dt.timedelta(days=e["launch_days"] - 1)
    seen = tx[tx["t_dat"] <= cutoff]
    first_sale = seen.groupby("category")["t_dat"].min()
    held = sorted(sorted(first_sale.index, key=lambda c: (first_sale[c], c), reverse=True)[:holdout])
    print(f"cutoff {cutoff}, launch {launch}, held-out categories {', '.join(held)}")

    names = np.array(catalog.categories.names)
    category = catalog.category
    held_index = {int(np.flatnonzero(names == c)[0]) for c in held}
    warm = ~np.isin(category, list(held_index))
    latent = sim.article_latent
    history = seen[~seen["category"].isin(held)]
    h_u, h_a = history["u"].to_numpy(), history["a"].to_numpy()
    n_customers = len(customer_ids)
    inputs = {"text": text_vectors(articles), "bow": bag_of_words(articles)}
    article_repr = {"history_latent": latent}
    facts = {"seed": seed, "k": k, "cutoff": str(cutoff), "held_out": held}
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
            w1, w2 = learn_bilinear(x, category, h_u, h_a, recent, n_customers, held_index)
            article_repr[f"learnt_{name}"] = x @ w2
            customer_repr[f"learnt_{name}"] = pooled_history(n_customers, h_u, h_a, x) @ w1

    query_mid = (cutoff - spec.start_date).days + (e["query_days"] + 1) // 2
    bias = sim._article_bias(query_mid)
    at_cutoff = (cutoff - spec.start_date).days
    rng = np.random.default_rng(seed)
    rows, curves = [], {}
    for name in held:
        c = int(np.flatnonzero(names == name)[0])
        on_sale = sim.by_category[sim.category_start[c]: sim.category_start[c] + sim.on_sale[c, at_cutoff]]
        cand = article_ids[on_sale]
        query = tx[(tx["category"] == name) & (tx["t_dat"] > cutoff)
                   & (tx["t_dat"] <= cutoff + dt.timedelta(days=e["query_days"]))]
        truth = query.groupby("u")["article_id"].agg(set)
        customers, truths = truth.index.to_numpy(), list(truth.to_numpy())
        affinity = population.latent[customers] @ latent[on_sale].T
        b = np.broadcast_to(bias[on_sale], affinity.shape)
        launch_rows = seen[(seen["category"] == name) & (seen["t_dat"] >= launch)]
        support = []
        for _ in range(draws):
            drawn = launch_rows.assign(_u=rng.random(len(launch_rows))).sort_values(["t_dat", "_u"]).head(k)
            counts = drawn["article_id"].value_counts()
            support.append(np.log1p(np.array([counts.get(a, 0) for a in cand], dtype=np.float64)))
        result = {
            "support": np.mean([ndcg(np.broadcast_to(s, affinity.shape), cand, truths) for s in support]),
            "true_bias": ndcg(b, cand, truths), "true_affinity": ndcg(affinity, cand, truths),
            "oracle": ndcg(affinity + b, cand, truths),
        }
        personal = {"affinity": affinity}
        personal.update({n: customer_repr[n][customers] @ article_repr[n][on_sale].T for n in article_repr})
        for n, x in personal.items():
            x = x / max(x.std(axis=1).mean(), 1e-12)
            for w in WEIGHTS:
                curves[(name, n, w)] = np.mean([ndcg(w * s[None, :] + x, cand, truths) for s in support])
        rows.append({"category": name, "customers": len(truths), "candidates": len(cand),
                     "launch_rows": len(launch_rows), **result})
        print(f"  {name}: {len(truths)} customers, {len(cand)} candidates, {len(launch_rows)} launch-period rows")
    table = pd.DataFrame(rows)
    curve = pd.Series(curves).rename_axis(["category", "input", "weight"]).rename("ndcg").reset_index()
    return table, {"facts": facts, "curve": curve}


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
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--holdout-categories", type=int, default=6)
    p.add_argument("--no-learn", action="store_true", help="skip the bilinear models learnt from purchases")
    p.add_argument("--all-weights", action="store_true", help="print NDCG@12 for every support weight")
    args = p.parse_args()
    if args.seed in load_config(None)["evaluate"]["seeds"]:
        raise SystemExit(f"seed {args.seed} is a kept quality-bar seed: use a development seed")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oracle-shop-") as tmp:
        table, extra = run(args.seed, args.k, args.draws, args.holdout_categories, not args.no_learn, Path(tmp))
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
