"""benchmarks/evaluation/oracle.py: the ceiling analysis rebuilds the generator's hidden state and ranks honestly."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_meta.model.metrics import ndcg_at_k
from fashion_meta.synth import generator as G

ROOT = Path(__file__).resolve().parents[2]
TINY = {"customers": 1500, "articles": 400, "categories": 12, "days": 60}


@pytest.fixture(scope="module")
def oracle():
    spec = importlib.util.spec_from_file_location("oracle_bench", ROOT / "benchmarks" / "evaluation" / "oracle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ndcg_ranks_by_score_and_breaks_ties_by_article_id(oracle):
    ids = np.array(["0300", "0100", "0200", "0400"])
    truths = [{"0200"}, {"0100", "0400"}]
    ties = np.zeros((2, 4))
    expected = np.mean([ndcg_at_k(["0100", "0200", "0300", "0400"], t, 12) for t in truths])
    assert oracle.ndcg(ties, ids, truths) == pytest.approx(expected)
    best = np.array([[0, 0, 1, 0], [0, 1, 0, 1]], dtype=float)  # each customer's truth on top
    assert oracle.ndcg(best, ids, truths) == pytest.approx(1.0)
    worst = -best
    assert oracle.ndcg(worst, ids, truths, n=2) == 0.0


def test_within_category_r2_ignores_the_category_means(oracle):
    rng = np.random.default_rng(0)
    category = np.repeat([0, 1, 2], 50)
    true = rng.normal(size=(150, 4)) + 10.0 * category[:, None]
    assert oracle.within_category_r2(true, true, category) == pytest.approx(1.0)
    means = np.vstack([true[category == c].mean(0) for c in category])
    assert oracle.within_category_r2(means, true, category) == pytest.approx(0.0, abs=1e-12)
    # a prediction off by a constant per category is still perfect within each category
    assert oracle.within_category_r2(true + 3.0 * category[:, None], true, category) == pytest.approx(1.0)


def test_ridge_recovers_a_linear_map(oracle):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6))
    w = rng.normal(size=(6, 3))
    y = x @ w + 5.0
    np.testing.assert_allclose(oracle.ridge(x, y, alpha=1e-6), w, atol=1e-6)


def test_bag_of_words_has_one_column_per_attribute_value_and_word(oracle):
    row = {c: "x" for c in oracle.BOW_COLUMNS}
    articles = pd.DataFrame([{**row, "prod_name": "Malibu trousers", "detail_desc": "Soft trousers."},
                             {**row, "colour_group_name": "Black", "prod_name": "Top", "detail_desc": ""}])
    bow = oracle.bag_of_words(articles)
    # 8 attribute columns: 7 shared values + 2 colours; words: malibu, soft, top, trousers
    assert bow.shape == (2, 7 + 2 + 4)
    assert bow.sum(axis=1).tolist() == [8 + 3, 8 + 1]
    assert set(np.unique(bow)) == {0.0, 1.0}


def test_event_histories_leave_out_every_purchase_of_the_events_article(oracle):
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [4.0, 0.0]])
    # customer 0 bought article 1 twice and articles 2 and 3 once; customer 1 bought article 0 only
    customer = np.array([0, 0, 0, 0, 1])
    article = np.array([1, 1, 2, 3, 0])
    events, history = oracle.event_histories(x, customer, article, np.array([0, 2, 4]), n_customers=2)
    assert events.tolist() == [0, 2]  # customer 1 has nothing else: dropped
    np.testing.assert_allclose(history[0], (x[2] + x[3]) / 2)  # neither copy of article 1
    np.testing.assert_allclose(history[1], (2 * x[1] + x[3]) / 3)


def test_a_rebuilt_state_that_does_not_match_the_shop_is_refused(oracle, spark, tmp_path, monkeypatch):
    real = G.generate_shop  # the shop on disk comes from other streams than the state the script rebuilds
    monkeypatch.setattr(oracle.G, "generate_shop",
                        lambda spec, out: real(G.ShopSpec(**{**spec.__dict__, "seed": 6}), out))
    with pytest.raises(AssertionError, match="rebuilt catalog does not match"):
        oracle.run(spark, 5, k=20, holdout=1, holdout_groups=0, learn=False, work=tmp_path, shape=TINY)


@pytest.mark.slow
def test_run_on_a_tiny_shop_replays_the_protocol_and_keeps_held_out_data_out(oracle, spark, tmp_path, monkeypatch):
    fitted, learnt = [], []
    real_ridge, real_learn = oracle.ridge, oracle.learn_bilinear
    monkeypatch.setattr(oracle, "ridge", lambda x, y, alpha=1.0: fitted.append(len(x)) or real_ridge(x, y, alpha))
    monkeypatch.setattr(oracle, "learn_bilinear",
                        lambda x, category, customer, article, recent, n: learnt.append(set(article[recent]))
                        or real_learn(x, category, customer, article, recent, n))
    k = 20
    table, extra = oracle.run(spark, 11, k=k, holdout=2, holdout_groups=1, learn=True, work=tmp_path, shape=TINY)
    articles = pd.read_csv(tmp_path / "shop" / "articles.csv", dtype=str)
    category_of = dict(zip(articles["article_id"], articles["product_type_name"]))
    tx = pd.read_csv(tmp_path / "shop" / "transactions_train.csv", dtype=str)
    tx["t_dat"] = pd.to_datetime(tx["t_dat"]).dt.date
    tx["category"] = tx["article_id"].map(category_of)
    cutoff = dt.date(2020, 6, 1) + dt.timedelta(days=TINY["days"] - 1 - 7)
    launch = cutoff - dt.timedelta(days=6)
    # the held-out categories are the two with the latest first sale up to the cutoff, as the evaluation picks them
    first = tx[tx["t_dat"] <= cutoff].groupby("category")["t_dat"].min()
    held = sorted(sorted(first.index, key=lambda c: (first[c], c), reverse=True)[:2])
    assert extra["facts"]["held_out"] == held and sorted(table["category"]) == held
    assert len(extra["facts"]["groups"]) == 1
    replay = extra["replay"]
    # support: at most K rows per held-out category, all from the launch period
    support = replay["support"]
    assert set(support["category"]) <= set(held)
    assert support["t_dat"].between(launch, cutoff).all()
    assert (support.groupby("category").size() <= k).all() and len(support) > 0
    # history: nothing of the held-out categories, nothing after the cutoff, and the held-out group's members
    # keep only launch-period rows (their earlier purchases are dropped as the evaluation drops them)
    history = replay["history"]
    assert not history["category"].isin(held).any() and (history["t_dat"] <= cutoff).all()
    members = replay["members"]
    assert members and history["customer_id"].isin(members).any()
    kept = history[history["customer_id"].isin(members)]
    assert kept["t_dat"].between(launch, cutoff).all() and len(kept) <= k
    assert (history.loc[~history["customer_id"].isin(members), "t_dat"] < launch).any()
    # probes are fitted on the warm articles only; learnt models train on warm purchases only
    warm_articles = int((~articles["product_type_name"].isin(held)).sum())
    assert fitted == [warm_articles, warm_articles]
    article_ids = articles["article_id"].to_numpy()
    assert len(learnt) == 2 and all(not any(category_of[article_ids[a]] in held for a in seen) for seen in learnt)
    # truth customers: every buyer of the category in the 7 query days
    query = tx[(tx["t_dat"] > cutoff) & (tx["t_dat"] <= cutoff + dt.timedelta(days=7))]
    for name, customers in zip(table["category"], table["customers"]):
        assert customers == query.loc[query["category"] == name, "customer_id"].nunique() > 0
    methods = ["support", "true_bias", "true_affinity", "oracle"]
    assert ((table[methods] >= 0) & (table[methods] <= 1)).all().all()
    curve = extra["curve"]
    inputs = {"affinity", "history_latent", "probe_text", "probe_bow", "learnt_text", "learnt_bow"}
    assert set(curve["input"]) == inputs and set(curve["weight"]) == set(oracle.WEIGHTS)
    assert len(curve) == len(held) * len(inputs) * len(oracle.WEIGHTS)
    pooled, by_weight = oracle.pool(table, curve)
    share = table["customers"] / table["customers"].sum()
    assert pooled["oracle"] == pytest.approx(float((table["oracle"] * share).sum()))
    for name in inputs:
        assert pooled[f"support + {name}"] == pytest.approx(by_weight.loc[name].max())
    # the generator's own logit ranks its own purchases better than counting 20 support rows
    assert pooled["oracle"] > pooled["support"]
