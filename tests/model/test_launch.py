"""Launch mode and unit episodes: which rows hide their sales history, pooled episodes, and the card's recipe."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from fashion_meta.model.data import load_task_dataset
from fashion_meta.model.launch import LaunchRule, hidden_columns
from fashion_meta.model.meta import MetaConfig, hide_columns, launch_validation_tasks, unit_tasks
from fashion_meta.model.spec import FeatureSpec
from fashion_meta.model.towers import build_model

from .conftest import plans, write_task_dataset

COLUMNS = ["article_daily__sales_7d", "article_daily__price_level", "article_daily__days_since_first_seen",
           "category_daily__age_days", "category_daily__purchases_total"]


def _spec() -> FeatureSpec:
    fit = pa.table({"cv": [[0.0]] * 3, "av": [[0.0]] * 3, "f": [1.0, 2.0, 3.0],
                    **{c: [1.0, 50.0, 900.0] for c in COLUMNS}})
    return FeatureSpec.fit(fit, customer_columns=["f"], article_columns=COLUMNS, customer_vector="cv",
                           article_vector="av", vector_dim=1)


def test_hidden_columns_are_the_sales_and_category_history():
    assert hidden_columns(COLUMNS + ["article_daily__buyers_28d_le24", "article_daily__days_since_first_sale",
                                     "article_text__colour"]) == [
        "article_daily__sales_7d", "article_daily__price_level", "article_daily__days_since_first_seen",
        "category_daily__age_days", "category_daily__purchases_total", "article_daily__buyers_28d_le24",
        "article_daily__days_since_first_sale"]


def test_launching_rows_follow_the_new_category_rule_and_only_they_are_hidden():
    spec = _spec()
    rows = pa.table({"av": [[0.0]] * 5, "article_daily__sales_7d": [3.0, 40.0, 2.0, 5.0, 7.0],
                     "article_daily__price_level": [1.0, 1.1, None, 0.9, 1.0],
                     "article_daily__days_since_first_seen": [6.0, 300.0, 6.0, 200.0, 90.0],
                     "category_daily__age_days": [6.0, 300.0, None, 200.0, 100.0],
                     "category_daily__purchases_total": [50.0, 9000.0, 0.0, 150.0, 5000.0]})
    rule = LaunchRule(tuple(hidden_columns(COLUMNS)))
    x = spec.article_inputs(rows)
    # young (6 days), old and rich, no sale yet, old but thin (150 < 200 purchases), old and rich
    assert rule.launching(spec, x).tolist() == [True, False, True, True, False]
    hidden = rule.hide(spec, x)
    k = len(COLUMNS)
    for r in (0, 2, 3):  # every column of this spec is article or category history
        np.testing.assert_array_equal(hidden[r, :k], np.zeros(k))
        np.testing.assert_array_equal(hidden[r, k:2 * k], np.ones(k))
        np.testing.assert_array_equal(hidden[r, 2 * k:], x[r, 2 * k:])  # vector flag and text vector stay
    # the rule hides the very columns it reads (age, purchases) yet picks the same rows again: hiding is idempotent
    np.testing.assert_array_equal(rule.hide(spec, hidden), hidden)
    # a sales-only rule leaves the category and first-seen columns as they are
    sales_only = LaunchRule(("article_daily__sales_7d",)).hide(spec, x)
    np.testing.assert_array_equal(sales_only[[0, 2, 3], 1:k], x[[0, 2, 3], 1:k])
    np.testing.assert_array_equal(hidden[[1, 4]], x[[1, 4]])
    assert np.array_equal(x, spec.article_inputs(rows))  # a copy: the input is untouched
    # a spec without the category columns never launches
    plain = FeatureSpec.fit(pa.table({"cv": [[0.0]], "av": [[0.0]], "f": [1.0], "article_daily__sales_7d": [1.0]}),
                            customer_columns=["f"], article_columns=["article_daily__sales_7d"],
                            customer_vector="cv", article_vector="av", vector_dim=1)
    assert not LaunchRule(("article_daily__sales_7d",)).launching(plain, np.zeros((2, 4))).any()
    assert LaunchRule.from_dict(rule.to_dict()) == rule


def test_hide_columns_marks_values_missing(tmp_path):
    write_task_dataset(tmp_path / "t", plans(2, 1, 0))
    task = load_task_dataset(tmp_path / "t").tasks[0]
    out = hide_columns(task.support, [1], 2)
    assert (out.article_features[:, 1] == 0).all() and (out.article_features[:, 3] == 1).all()
    torch.testing.assert_close(out.article_features[:, [0, 2]], task.support.article_features[:, [0, 2]])
    assert hide_columns(task.support, [], 2) is task.support


def test_unit_tasks_pool_categories_and_groups(tmp_path):
    from .conftest import TaskPlan

    write_task_dataset(tmp_path / "t", [TaskPlan(c, g, "train", 0.0) for c in ("A", "B") for g in ("g1", "g2")]
                       + [TaskPlan("C", "g1", "train", 0.0)])
    tasks = load_task_dataset(tmp_path / "t").tasks
    units = {t.task_id: t for t in unit_tasks(tasks, support_rows=10_000, query_rows=10_000, seed=0)}
    assert sorted(units) == ["*|g1", "*|g2", "A|*", "B|*"]  # C has one group only: already an episode
    a = units["A|*"]
    members = [t for t in tasks if t.category == "A"]
    assert len(a.support) == sum(len(t.support) for t in members)
    assert len(units["*|g1"].query) == sum(len(t.query) for t in tasks if t.user_group == "g1")
    positives = a.support.article_ids[a.support.labels.numpy() > 0.5]
    expected = [(positives == i).sum() for i in a.query.article_ids]
    np.testing.assert_allclose(np.expm1(a.query.evidence[:, 0].numpy()), expected, atol=1e-4)
    small = unit_tasks(tasks, support_rows=7, query_rows=5, seed=0)
    assert all(len(t.support) == 7 and len(t.query) == 5 for t in small)
    # a group unit keeps its evidence unless told otherwise (ModelConfig.group_evidence = False)
    assert units["*|g1"].support.evidence is not None and units["*|g1"].query.evidence is not None
    plain = {t.task_id: t for t in unit_tasks(tasks, support_rows=10_000, query_rows=10_000, seed=0,
                                               group_evidence=False)}
    assert plain["*|g1"].support.evidence is None and plain["*|g1"].query.evidence is None
    torch.testing.assert_close(plain["A|*"].query.evidence, a.query.evidence)  # categories keep theirs


def test_train_records_the_launch_recipe_and_the_ranker_uses_it(tmp_path):
    from fashion_meta.model.checkpoint import load_model
    from fashion_meta.model.ranking import adapted_ranker
    from fashion_meta.model.train import train

    write_task_dataset(tmp_path / "t", plans(4, 2, 0))
    for cold, expected in ((0.5, True), (0.0, False)):
        version = f"v{int(cold * 10)}"
        train(tmp_path / "t", tmp_path / "reg", "fomaml", seed=0, version=version, promote=False, progress=False,
              meta_config=MetaConfig(epochs=1, cold_fraction=cold, unit_episodes=True))
        loaded = load_model(tmp_path / "reg", version)
        recipe = loaded.card["adaptation"]
        assert ("launch" in recipe) is expected
        assert (adapted_ranker(loaded).launch is not None) is expected
        if expected:
            assert recipe["launch"]["columns"] == ["article_daily__sales_7d", "article_daily__price_level"]


def test_launch_validation_plays_each_validation_category_as_a_launch(tmp_path):
    from .conftest import TaskPlan

    write_task_dataset(tmp_path / "t", [TaskPlan("A", g, "validation", 0.0, customers=12) for g in ("g1", "g2")]
                       + [TaskPlan("C", "g1", "validation", 0.0, customers=12), TaskPlan("T", "g1", "train", 0.0)])
    val = [t for t in load_task_dataset(tmp_path / "t").tasks if t.role == "validation"]
    n_features = val[0].support.article_features.shape[1] // 2  # values, then their missing flags
    launches = launch_validation_tasks(val, [0], n_features, support_rows=9, query_rows=10_000, seed=0)
    assert [t.task_id for t in launches] == ["launch:A|*", "launch:C|*"]  # A pooled over its groups, C one slice
    assert {t.role for t in launches} == {"validation"}
    a = launches[0]
    assert len(a.support) == 9 and len(a.query) == sum(len(t.query) for t in val if t.category == "A")
    for task in launches:
        for batch in (task.support, task.query):
            assert (batch.article_features[:, 0] == 0).all() and (batch.article_features[:, n_features] == 1).all()
            assert batch.evidence is not None  # recomputed on the subsampled support, as at serving
    # the evidence of the single slice counts its own (subsampled) support purchases
    c, slice_c = launches[1], next(t for t in val if t.category == "C")
    assert len(c.support) == 9 < len(slice_c.support)
    positives = c.support.article_ids[c.support.labels.numpy() > 0.5]
    np.testing.assert_allclose(np.expm1(c.query.evidence[:, 0].numpy()),
                               [(positives == i).sum() for i in c.query.article_ids], atol=1e-4)
    assert launch_validation_tasks(val, [], n_features, support_rows=9, query_rows=9, seed=0) == []


def test_early_stopping_selects_on_warm_and_launch_validation(tmp_path):
    import json

    from fashion_meta.model.train import train

    write_task_dataset(tmp_path / "t", plans(6, 4, 0))
    for flag in (True, False):
        result = train(tmp_path / "t", tmp_path / "reg", "fomaml", seed=0, version=f"v{flag}", promote=False,
                       progress=False, meta_config=MetaConfig(epochs=3, patience=3, validate_launches=flag))
        # epoch 0 validates the pretrained start; early stopping may keep it
        rows = json.loads((result.model_dir / "logs" / "metrics.json").read_text())["epochs"]
        card = json.loads((result.model_dir / "card.json").read_text())["metrics"]
        if flag:
            for r in rows:
                assert r["val_select_loss"] == pytest.approx((r["val_loss"] + r["val_launch_loss"]) / 2)
            best = min(rows, key=lambda r: r["val_select_loss"])
            assert card["val_launch_ndcg12"] == best["val_launch_ndcg12"]
        else:
            # off: the rows and the card are as before the option existed
            assert all(not {"val_launch_loss", "val_select_loss"} & set(r) for r in rows)
            best = min(rows, key=lambda r: r["val_loss"])
            assert not {"val_launch_loss", "val_launch_ndcg12", "val_select_loss"} & set(card)
        assert card["best_epoch"] == best["epoch"] and card["val_loss"] == best["val_loss"]


def test_the_epoch_is_selected_on_the_mean_of_warm_and_launch_validation(tmp_path, monkeypatch):
    """Scripted validation losses: warm keeps improving, launch gets worse from epoch 2; the selection loss
    (their mean) is best at epoch 2, the warm loss alone at epoch 4."""
    from fashion_meta.model import meta

    warm, launch = iter([0.50, 0.45, 0.40, 0.39, 0.38]), iter([0.50, 0.45, 0.41, 0.60, 0.70])
    real = meta.evaluate_tasks

    def scripted(model, params, tasks, **kwargs):
        out = real(model, params, tasks, **kwargs)
        is_launch = all(t.task_id.startswith("launch:") for t in tasks)
        return {**out, "loss": next(launch if is_launch else warm)}

    monkeypatch.setattr(meta, "evaluate_tasks", scripted)
    write_task_dataset(tmp_path / "t", plans(6, 4, 0))
    data = load_task_dataset(tmp_path / "t")
    model = build_model(data.spec.customer_input_dim, data.spec.article_input_dim, seed=0)
    tasks = {role: [t for t in data.tasks if t.role == role] for role in ("train", "validation")}
    n_features = len(data.spec.article.columns)
    result = meta.meta_train(model, tasks["train"], tasks["validation"],
                             MetaConfig(method="fomaml", epochs=4, patience=5, progress=False,
                                        validate_launches=True),
                             log_dir=tmp_path / "log", cold_columns=[0], article_features=n_features,
                             validate_start=True)
    assert [round(r["val_select_loss"], 3) for r in result.history] == [0.5, 0.45, 0.405, 0.495, 0.54]
    assert result.best_epoch == 2 and result.best["val_launch_loss"] == 0.41
    # without launch validation the same warm losses pick epoch 4
    warm = iter([0.50, 0.45, 0.40, 0.39, 0.38])
    model = build_model(data.spec.customer_input_dim, data.spec.article_input_dim, seed=0)
    plain = meta.meta_train(model, tasks["train"], tasks["validation"],
                            MetaConfig(method="fomaml", epochs=4, patience=5, progress=False),  # the default
                            log_dir=tmp_path / "log2", cold_columns=[0], article_features=n_features,
                            validate_start=True)
    assert plain.best_epoch == 4 and "val_launch_loss" not in plain.best
    # a non-finite launch loss leaves the warm loss to select on, rather than freezing the selection
    warm, launch = iter([0.50, 0.45, 0.40, 0.39, 0.38]), iter([math.nan] * 5)
    model = build_model(data.spec.customer_input_dim, data.spec.article_input_dim, seed=0)
    broken = meta.meta_train(model, tasks["train"], tasks["validation"],
                             MetaConfig(method="fomaml", epochs=4, patience=5, progress=False,
                                        validate_launches=True),
                             log_dir=tmp_path / "log3", cold_columns=[0], article_features=n_features,
                             validate_start=True)
    assert broken.best_epoch == 4 and broken.best["val_select_loss"] == 0.38
    # asked for but impossible (no hidden history columns): a warning, and the warm loss selects
    warm = iter([0.50, 0.45, 0.40, 0.39, 0.38])
    model = build_model(data.spec.customer_input_dim, data.spec.article_input_dim, seed=0)
    with pytest.warns(RuntimeWarning, match="validate_launches"):
        none = meta.meta_train(model, tasks["train"], tasks["validation"],
                               MetaConfig(method="fomaml", epochs=4, patience=5, progress=False,
                                          validate_launches=True),
                               log_dir=tmp_path / "log4", cold_columns=[], article_features=n_features,
                               validate_start=True)
    assert none.best_epoch == 4


def test_cold_fraction_is_checked():
    with pytest.raises(ValueError, match="cold_fraction"):
        MetaConfig(cold_fraction=1.5)
    with pytest.raises(ValueError, match="validate_launches needs launch episodes"):
        MetaConfig(cold_fraction=0.0, validate_launches=True)
