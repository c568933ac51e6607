"""One contract test over every ranker, plus hand-checked baselines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fashion_meta.model.checkpoint import load_model, save_model
from fashion_meta.model.meta import init_inner_lrs
from fashion_meta.model.ranking import (
    ContentRanker, FromScratchRanker, GroupPopularityRanker, ModelRanker, PopularityRanker, Ranker, SupportSet,
    adapted_ranker, meta_ranker, transfer_ranker,
)
from fashion_meta.model.towers import ModelConfig, build_model, parameter_names

from .conftest import ARTICLE_COLUMNS, ARTICLE_VECTOR, CUSTOMER_COLUMNS, CUSTOMER_VECTOR, first_rows, raw_rows

CONFIG = ModelConfig(hidden=(8,), dim=4)
TWINS = ("9000000000", "9000000001")  # two candidates with identical features: their scores tie


@pytest.fixture(scope="module")
def inputs(task_folder):
    raw = raw_rows(task_folder)
    holdout = raw.filter(pc.equal(raw.column("role"), "holdout"))
    task_ids = sorted(set(holdout.column("task_id").to_pylist()))
    rows = holdout.filter(pc.equal(holdout.column("task_id"), task_ids[0]))
    other = holdout.filter(pc.equal(holdout.column("task_id"), task_ids[1]))
    category = rows.column("category")[0].as_py()
    article_cols = ["article_id", *ARTICLE_COLUMNS, ARTICLE_VECTOR]
    cands = first_rows(rows, "article_id").select(article_cols)
    twin = cands.slice(0, 1)
    twins = pa.concat_tables([twin.set_column(0, "article_id", pa.array([t])) for t in TWINS])
    cands = pa.concat_tables([cands, twins])
    query = rows.filter(pc.equal(rows.column("split"), "query"))
    customers = first_rows(query, "customer_id").select(["customer_id", "user_group", *CUSTOMER_COLUMNS,
                                                         CUSTOMER_VECTOR])
    support = rows.filter(pc.equal(rows.column("split"), "support"))
    others = {other.column("category")[0].as_py(): first_rows(other, "article_id").select(article_cols)}
    return {"support": support, "candidates": {category: cands, **others}, "customers": customers,
            "category": category}


def _model(spec):
    return build_model(spec.customer_input_dim, spec.article_input_dim, CONFIG, seed=0)


def _meta(method):
    def make(spec):
        model = _model(spec)
        names = parameter_names(model, "head" if method == "anil" else "all")
        lrs = init_inner_lrs(model, names, 0.3) if method == "metasgd" else None
        return meta_ranker(model, None, spec, method=method, steps=2, lr=0.3, adapt_names=names, lrs=lrs)
    return make


FACTORIES = {
    "popularity": lambda spec: PopularityRanker(),
    "group_popularity": lambda spec: GroupPopularityRanker(),
    "content": lambda spec: ContentRanker(spec),
    "warm": lambda spec: ModelRanker(_model(spec), None, spec),
    "from_scratch": lambda spec: FromScratchRanker(spec, CONFIG, steps=5, lr=0.05),
    "transfer": lambda spec: transfer_ranker(_model(spec), None, spec, steps=2, lr=0.3),
    **{f"meta_{m}": _meta(m) for m in ("maml", "fomaml", "anil", "metasgd")},
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_ranker_honours_the_contract(name, inputs, dataset):
    ranker = FACTORIES[name](dataset.spec)
    assert isinstance(ranker, Ranker)
    with pytest.raises(RuntimeError, match="fit"):
        ranker.recommend(inputs["customers"], inputs["category"], 3)
    support = SupportSet(inputs["support"], inputs["candidates"])
    ranker.fit(support)
    customers, category = inputs["customers"], inputs["category"]
    candidates = set(inputs["candidates"][category].column("article_id").to_pylist())
    n_cust = customers.num_rows
    for n in (5, len(candidates), len(candidates) + 7):
        ids, scores = ranker.recommend(customers, category, n)
        assert ids.shape == scores.shape == (n_cust, min(n, len(candidates)))
        for row_ids, row_scores in zip(ids, scores):
            assert len(set(row_ids)) == len(row_ids)
            assert set(row_ids) <= candidates
            assert np.all(np.diff(row_scores) <= 0)
            for j in range(len(row_ids) - 1):  # ties break by article_id
                if row_scores[j] == row_scores[j + 1]:
                    assert row_ids[j] < row_ids[j + 1]
    full_ids, full_scores = ranker.recommend(customers, category, len(candidates))
    for row_ids, row_scores in zip(full_ids, full_scores):
        a, b = (list(row_ids).index(t) for t in TWINS)
        assert row_scores[a] == row_scores[b] and a < b
    # deterministic: a fresh ranker on the candidates in reverse order gives the same lists
    reversed_cands = {c: t.take(pa.array(np.arange(t.num_rows)[::-1])) for c, t in inputs["candidates"].items()}
    again_ids, again_scores = FACTORIES[name](dataset.spec).fit(
        SupportSet(inputs["support"], reversed_cands)).recommend(customers, category, len(candidates))
    assert (again_ids == full_ids).all()
    np.testing.assert_allclose(again_scores, full_scores, rtol=1e-6)
    assert ranker.recommend(customers, category, 0)[0].shape == (n_cust, 0)
    with pytest.raises(ValueError, match="no candidate articles"):
        ranker.recommend(customers, "No such category", 3)


def _toy_support():
    interactions = {"customer_id": ["p", "p", "q", "r", "r"], "article_id": ["a2", "a2", "a1", "a3", "a3"],
                    "label": [1, 1, 1, 1, 0], "category": ["C"] * 5, "user_group": ["g1", "g1", "g2", "g2", "g2"]}
    return SupportSet(interactions, {"C": {"article_id": ["a3", "a1", "a2", "a4"]}})


def test_popularity_counts_purchases_only_and_breaks_ties_by_id():
    ids, scores = PopularityRanker().fit(_toy_support()).recommend({"customer_id": ["x"]}, "C", 4)
    # a2 bought twice, a1 and a3 once each (a3's second row is a negative), a4 never: a1 before a3 by id
    assert ids.tolist() == [["a2", "a1", "a3", "a4"]]
    assert scores.tolist() == [[2.0, 1.0, 1.0, 0.0]]


def test_group_popularity_ranks_within_the_customers_group():
    customers = {"customer_id": ["x", "y"], "user_group": ["g1", "g2"]}
    ids, scores = GroupPopularityRanker(prior_weight=1.0).fit(_toy_support()).recommend(customers, "C", 4)
    # overall shares: a2 2/4, a1 1/4, a3 1/4, a4 0; g1 bought a2 twice; g2 bought a1 and a3 once each
    assert ids.tolist() == [["a2", "a1", "a3", "a4"], ["a1", "a3", "a2", "a4"]]
    np.testing.assert_allclose(scores, [[2.5, 0.25, 0.25, 0.0], [1.25, 1.25, 0.5, 0.0]])


def test_content_similarity_puts_the_matching_article_first(dataset):
    dim = dataset.spec.vector_dim
    vectors = np.eye(dim, dtype=np.float32)[:3]
    cands = {"article_id": ["a0", "a1", "a2"], ARTICLE_VECTOR: vectors}
    customers = {"customer_id": ["x", "y"], CUSTOMER_VECTOR: np.stack([vectors[2] * 3, -vectors[0]])}
    support = SupportSet({"label": [], "category": [], "article_id": []}, {"C": cands})
    ids, scores = ContentRanker(dataset.spec).fit(support).recommend(customers, "C", 3)
    assert ids.tolist() == [["a2", "a0", "a1"], ["a1", "a2", "a0"]]  # cosines [0, 0, 1] and [-1, 0, 0]
    np.testing.assert_allclose(scores, [[1, 0, 0], [0, 0, -1]], atol=1e-6)


def test_adaptation_changes_the_ranking_scores(inputs, dataset):
    support = SupportSet(inputs["support"], inputs["candidates"])
    warm = FACTORIES["warm"](dataset.spec).fit(support)
    adapted = FACTORIES["meta_maml"](dataset.spec).fit(support)
    args = (inputs["customers"], inputs["category"], 10)
    assert not np.allclose(warm.recommend(*args)[1], adapted.recommend(*args)[1])


def test_registry_model_ranks_with_its_card_recipe(inputs, dataset, tmp_path):
    model = _model(dataset.spec)
    names = parameter_names(model, "head")
    lrs = init_inner_lrs(model, names, 0.3)
    save_model(tmp_path, model, spec=dataset.spec, version="v1", inner_lrs=lrs, git_commit="unknown",
               adaptation={"kind": "meta", "method": "metasgd", "steps": 2, "lr": 0.3, "adapt_names": names})
    support = SupportSet(inputs["support"], inputs["candidates"])
    from_card = adapted_ranker(load_model(tmp_path, "v1")).fit(support)
    direct = meta_ranker(model, None, dataset.spec, method="metasgd", steps=2, lr=0.3, adapt_names=names,
                         lrs=lrs).fit(support)
    args = (inputs["customers"], inputs["category"], 10)
    np.testing.assert_array_equal(from_card.recommend(*args)[0], direct.recommend(*args)[0])
    np.testing.assert_allclose(from_card.recommend(*args)[1], direct.recommend(*args)[1], rtol=1e-6)


def test_top_n_breaks_ties_by_article_id_and_ranks_nan_last():
    from fashion_meta.model.scoring import top_n

    scores = np.array([[0.5, np.nan, 0.5, 0.9], [1.0, 1.0, 1.0, 1.0]])
    ids, best = top_n(scores, np.array(["c", "d", "a", "b"]), 3)
    # row 1: b (0.9), then the 0.5 tie a < c; row 2: all tied -> a, b, c
    assert ids.tolist() == [["b", "a", "c"], ["a", "b", "c"]]
    np.testing.assert_array_equal(best, [[0.9, 0.5, 0.5], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="unique"):
        top_n(scores, np.array(["a", "a", "b", "c"]), 2)
