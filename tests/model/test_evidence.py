"""Support evidence: counts, leave-one-out, the model term, meta-learning of its weight, rankers and serving."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from fashion_meta.model.data import Batch, Task, load_task_dataset, with_support_evidence
from fashion_meta.model.evidence import evidence_for, product_keys, support_evidence
from fashion_meta.model.meta import MetaConfig, meta_train
from fashion_meta.model.towers import ModelConfig, TwoTower, build_model

from .conftest import plans, write_task_dataset


def test_product_keys_use_the_hm_prefix_only_for_ten_digit_ids():
    keys = product_keys(["0108775015", "0108775044", "0200000001", "A-1", "12345"])
    assert list(keys) == ["108775", "108775", "200000", "A-1", "12345"]
    assert len(product_keys([])) == 0


def test_counts_pool_colour_variants_and_leave_one_out():
    positives = np.array(["0100000001", "0100000001", "0100000002", "0200000001"])
    ev = evidence_for(positives, np.array(["0100000001", "0100000003", "0300000001"]))
    np.testing.assert_allclose(np.expm1(ev), [[2, 3], [0, 3], [0, 0]], atol=1e-6)
    # support rows: a positive does not count itself; a negative row of a bought article counts every purchase
    ids = np.array(["0100000001", "0100000001", "0100000002", "0100000002"])
    labels = torch.tensor([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(np.expm1(support_evidence(ids, labels).numpy()), [[1, 2], [1, 2], [0, 2], [1, 3]],
                               atol=1e-5)
    with pytest.raises(ValueError, match="leave-one-out"):
        evidence_for(np.array(["a"]), np.array(["b"]), own=np.array([1.0]))


def test_loaded_tasks_carry_evidence_of_their_own_support(tmp_path):
    write_task_dataset(tmp_path / "t", plans(2, 1, 1))
    for task in load_task_dataset(tmp_path / "t").tasks:
        s, q = task.support, task.query
        positives = s.article_ids[s.labels.numpy() > 0.5]
        for i in range(len(q)):
            assert np.expm1(q.evidence[i, 0].item()) == pytest.approx((positives == q.article_ids[i]).sum(), abs=1e-4)
        for i in range(len(s)):
            own = float(s.labels[i] > 0.5)
            assert np.expm1(s.evidence[i, 0].item()) == pytest.approx(
                (positives == s.article_ids[i]).sum() - own, abs=1e-4)


def test_evidence_term_rides_in_the_bias_coordinate_and_vanishes_without_support():
    model = build_model(3, 4, ModelConfig(hidden=(8,), dim=4), seed=0)
    xc, xa = torch.randn(2, 3), torch.randn(5, 4)
    ev = torch.rand(5, 2)
    torch.testing.assert_close(model.score(None, xc, xa, torch.zeros(5, 2)), model.score(None, xc, xa))
    torch.testing.assert_close(model.score(None, xc, xa, ev), model.score(None, xc, xa) + 0.5 * ev.sum(1)[None, :])
    params = {n: p.detach() for n, p in model.named_parameters()}
    params["head.support_evidence.weight"] = torch.tensor([[0.7, 0.2]])
    shift = (ev @ torch.tensor([0.7, 0.2]))[None, :]
    torch.testing.assert_close(model.score(params, xc, xa, ev), model.score(params, xc, xa) + shift)
    pairs = torch.func.functional_call(model, params, (xc.repeat_interleave(5, 0), xa.repeat(2, 1), ev.repeat(2, 1)))
    torch.testing.assert_close(pairs.reshape(2, 5), model.score(params, xc, xa, ev))
    old = TwoTower.from_architecture({"kind": "two_tower/1", "customer_in": 3, "article_in": 4, "hidden": [8],
                                      "dim": 4, "bias": True})  # a card written before evidence existed
    assert not old.config.evidence and "head.support_evidence.weight" not in dict(old.named_parameters())
    assert old.score(None, xc, xa, ev).shape == (2, 5)  # ignored, not an error


def _hot_article_tasks(n: int, seed: int) -> list[Task]:
    """Tasks whose features carry no signal: each task has 3 "hot" articles (of 12) that most customers buy, in
    support and query alike, so only the support counts predict the query."""
    rng = np.random.default_rng(seed)
    tasks = []
    for t in range(n):
        hot = rng.choice(12, 3, replace=False)
        parts = {}
        for split, customers in (("support", 10), ("query", 8)):
            ids, labels = [], []
            for _ in range(customers):
                bought = rng.choice(hot) if rng.random() < 0.8 else rng.integers(12)
                offered = [bought, *rng.choice([a for a in range(12) if a != bought], 4, replace=False)]
                ids += [f"{t:03d}{a:04d}001" for a in offered]
                labels += [1.0] + [0.0] * 4
            m = len(ids)
            parts[split] = Batch(torch.randn(m, 2), torch.zeros(m, 2), torch.randn(m, 3), torch.zeros(m, 2),
                                 torch.tensor(labels), np.array([f"c{i // 5}" for i in range(m)], dtype=object),
                                 np.array(ids, dtype=object))
        support, query = with_support_evidence(parts["support"], parts["query"])
        tasks.append(Task(f"T{t}", f"T{t}", "*", "train", support, query))
    return tasks


def test_meta_training_learns_to_trust_support_counts(tmp_path):
    train, val = _hot_article_tasks(24, 1), _hot_article_tasks(6, 2)
    val = [Task(t.task_id, t.category, t.user_group, "validation", t.support, t.query) for t in val]
    model = build_model(4, 5, ModelConfig(hidden=(8,), dim=4), seed=0)
    with torch.no_grad():
        model.head["support_evidence"].weight.zero_()  # start from "ignore the counts": training must learn them
    meta_train(model, train, val, MetaConfig(method="fomaml", epochs=15, inner_steps=1, inner_lr=0.1,
                                             outer_lr=0.05, progress=False), log_dir=tmp_path)
    w = dict(model.named_parameters())["head.support_evidence.weight"].detach()
    assert (w > 0.2).all(), w
    # and it is what ranks a task's query: with the evidence the hot articles come first
    task = val[0]
    with torch.no_grad():
        with_ev = torch.func.functional_call(model, dict(model.named_parameters()),
                                             (task.query.customer_inputs, task.query.article_inputs,
                                              task.query.evidence))
        without = model(task.query.customer_inputs, task.query.article_inputs)
    labels = task.query.labels.numpy() > 0.5
    gap = lambda s: s.numpy()[labels].mean() - s.numpy()[~labels].mean()  # noqa: E731
    assert gap(with_ev) > gap(without) + 0.5


def test_adapting_ranker_and_serving_vectors_use_the_support_evidence():
    from fashion_meta.model.ranking import SupportSet, meta_ranker
    from fashion_meta.model.spec import FeatureSpec
    from fashion_meta.recommend.serve import article_vectors

    spec = FeatureSpec.fit(pa.table({"f": [1.0, 2.0], "g": [0.5, 1.5], "cv": [[0.1, 0.2], [0.3, 0.1]],
                                     "av": [[0.2, 0.2], [0.1, 0.4]]}),
                           customer_columns=["f"], article_columns=["g"], customer_vector="cv", article_vector="av",
                           vector_dim=2)
    model = build_model(spec.customer_input_dim, spec.article_input_dim, ModelConfig(hidden=(4,), dim=2), seed=0)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    params["head.support_evidence.weight"] = torch.tensor([[5.0, 0.0]])
    same = {"g": [1.0] * 3, "av": [[0.2, 0.3]] * 3}  # identical inputs: only the evidence can order them
    candidates = pa.table({"article_id": ["0100000001", "0100000002", "0200000001"], **same})
    support = pa.table({"customer_id": ["x", "y"], "article_id": ["0200000001", "0100000002"], "label": [1, 0],
                        "category": ["C", "C"], "user_group": ["g", "g"], "f": [1.0, 1.0], "cv": [[0.1, 0.1]] * 2,
                        "g": [1.0, 1.0], "av": [[0.2, 0.3]] * 2})
    ranker = meta_ranker(model, params, spec, method="maml", steps=0, lr=0.1).fit(
        SupportSet(interactions=support, candidates={"C": candidates}))
    customers = pa.table({"customer_id": ["z"], "user_group": ["g"], "f": [1.0], "cv": [[0.1, 0.1]]})
    ids, scores = ranker.recommend(customers, "C", 3)
    assert ids[0][0] == "0200000001" and scores[0][0] > scores[0][1]
    assert scores[0][1] == scores[0][2]  # no evidence: exact tie, broken by article_id
    inputs = spec.article_inputs(candidates)
    ev = evidence_for(np.array(["0200000001"]), np.array(["0100000001", "0100000002", "0200000001"]))
    v = article_vectors(model, params, inputs, "cpu", ev)
    np.testing.assert_allclose(v[:, -1] - article_vectors(model, params, inputs, "cpu")[:, -1],
                               5.0 * ev[:, 0], rtol=1e-5)


def test_a_new_user_group_gets_support_evidence_only_if_configured():
    from fashion_meta.model.ranking import SupportSet, meta_ranker
    from fashion_meta.model.spec import FeatureSpec

    spec = FeatureSpec.fit(pa.table({"f": [1.0, 2.0], "g": [0.5, 1.5], "cv": [[0.1, 0.2], [0.3, 0.1]],
                                     "av": [[0.2, 0.2], [0.1, 0.4]]}),
                           customer_columns=["f"], article_columns=["g"], customer_vector="cv", article_vector="av",
                           vector_dim=2)
    same = {"g": [1.0] * 3, "av": [[0.2, 0.3]] * 3}  # identical inputs: only the evidence can order them
    candidates = pa.table({"article_id": ["0100000001", "0100000002", "0200000001"], **same})
    support = pa.table({"customer_id": ["x", "y"], "article_id": ["0200000001", "0100000002"], "label": [1, 0],
                        "category": ["C", "D"], "user_group": ["g", "g"], "f": [1.0, 1.0], "cv": [[0.1, 0.1]] * 2,
                        "g": [1.0, 1.0], "av": [[0.2, 0.3]] * 2})
    customers = pa.table({"customer_id": ["z"], "user_group": ["g"], "f": [1.0], "cv": [[0.1, 0.1]]})
    top = {}
    for group_evidence in (False, True):
        config = ModelConfig(hidden=(4,), dim=2, group_evidence=group_evidence)
        model = build_model(spec.customer_input_dim, spec.article_input_dim, config, seed=0)
        params = {n: p.detach().clone() for n, p in model.named_parameters()}
        params["head.support_evidence.weight"] = torch.tensor([[5.0, 0.0]])
        for unit in ("category", "user_group"):
            ranker = meta_ranker(model, params, spec, method="maml", steps=1, lr=0.1).fit(
                SupportSet(interactions=support, candidates={"C": candidates}, unit=unit))
            ids, scores = ranker.recommend(customers, "C", 3)
            top[group_evidence, unit] = (ids[0][0], scores[0][0] - scores[0][1])
    assert top[False, "category"][0] == "0200000001" and top[False, "category"][1] > 1.0  # 5 x log(2) = 3.5
    assert top[False, "user_group"][1] == 0.0  # no evidence: the three identical articles tie exactly
    assert top[True, "user_group"] == top[True, "category"]  # the default: the group sees the counts too
    with pytest.raises(ValueError, match="unit must be one of"):
        SupportSet(interactions=support, candidates={}, unit="shop")


def test_group_evidence_in_model_cards():
    fresh = ModelConfig()
    assert fresh.evidence and fresh.group_evidence
    off = ModelConfig(group_evidence=False)
    assert ModelConfig.from_dict(off.to_dict()) == off and ModelConfig.from_dict(fresh.to_dict()) == fresh
    # a card written before the option existed: its model was trained and served with evidence for groups too
    old = ModelConfig.from_dict({"hidden": [8], "dim": 4, "bias": True, "evidence": True})
    assert old.uses_evidence(group_unit=True) and old.uses_evidence(group_unit=False)
    assert not off.uses_evidence(group_unit=True) and off.uses_evidence(group_unit=False)
    assert not ModelConfig(evidence=False, group_evidence=True).uses_evidence(group_unit=True)
