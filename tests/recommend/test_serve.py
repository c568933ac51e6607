"""Per-batch scoring of the recommend job against a brute-force reference (no Spark)."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pyarrow as pa
import pytest
import torch

from fashion_meta.model.spec import FeatureSpec
from fashion_meta.model.towers import ModelConfig, build_model
from fashion_meta.recommend import serve

DIM = 4
C_COLS = ("customer_daily__purchases_7d", "group_category_daily__affinity")
A_COLS = ("article_daily__sales_7d",)
C_VEC, A_VEC = "customer_daily__history_vector", "article_text_embedding__embedding"
GROUPS = ("25-34|online", "55+|store", "unknown|store")


def _vectors(rng, n):
    return pa.array([rng.normal(size=DIM).astype(np.float32).tolist() for _ in range(n)], pa.list_(pa.float32()))


@pytest.fixture(scope="module")
def shop():
    rng = np.random.default_rng(7)
    n_c, n_a = 70, 30
    fit_rows = pa.table({
        C_COLS[0]: rng.poisson(3, 200).astype(float), C_COLS[1]: rng.uniform(0, 1, 200),
        A_COLS[0]: rng.poisson(9, 200).astype(float), C_VEC: _vectors(rng, 200), A_VEC: _vectors(rng, 200),
    })
    spec = FeatureSpec.fit(fit_rows, customer_columns=C_COLS, article_columns=A_COLS, customer_vector=C_VEC,
                           article_vector=A_VEC, vector_dim=DIM)
    customers = pa.table({
        "customer_id": [f"c{i:03d}" for i in range(n_c)],
        "user_group": [GROUPS[i % 3] for i in range(n_c)],
        C_COLS[0]: pa.array([None if i % 11 == 0 else float(i % 5) for i in range(n_c)], pa.float64()),
        C_VEC: _vectors(rng, n_c),
        "bought": pa.array([[f"{(i * 7) % n_a:010d}", f"{(i * 3) % n_a:010d}"] if i % 4 else None
                            for i in range(n_c)], pa.list_(pa.string())),
    })
    articles = pa.table({
        "article_id": [f"{j:010d}" for j in range(n_a)],
        "category": ["Top" if j % 2 else "Shoe" for j in range(n_a)],
        A_COLS[0]: pa.array([float(j % 4) for j in range(n_a)]),  # repeats: identical inputs, exact ties
        A_VEC: pa.array([[0.5] * DIM if j % 5 == 0 else rng.normal(size=DIM).astype(np.float32).tolist()
                         for j in range(n_a)], pa.list_(pa.float32())),
        "product_code": pa.array([j // 3 for j in range(n_a)], pa.int64()),
    })
    gc = pa.table({"user_group": ["25-34|online", "55+|store", "25-34|online"], "category": ["Top", "Top", "Shoe"],
                   C_COLS[1]: [0.9, 0.1, 0.4]})
    model = build_model(spec.customer_input_dim, spec.article_input_dim, ModelConfig(hidden=(8,), dim=DIM), seed=3)
    base = {n: p.detach() for n, p in model.named_parameters()}
    moved = {n: p + 0.3 * torch.randn_like(p, generator=torch.Generator().manual_seed(1)) for n, p in base.items()}
    return spec, model, customers, articles, gc, base, moved


def _plan(shop, *, top_n=5, repeat=(), cap=None, new_groups=None) -> serve.ServingPlan:
    spec, model, _, articles, gc, base, moved = shop
    params = {serve.BASE: serve.to_numpy_params(base), "*|55+|store": serve.to_numpy_params(moved)}
    slots = serve.gc_slots(spec)
    cats = []
    segments = serve.resolve_segments(["Shoe", "Top"], {}, new_groups or {})
    for category in ("Shoe", "Top"):
        rows = articles.filter(pa.compute.equal(articles["category"], category))
        key, mode, overrides = segments[category]
        gcc = gc.filter(pa.compute.equal(gc["category"], category))
        inputs = spec.article_inputs(rows)
        cats.append(serve.CategoryPlan(
            category=category, article_ids=rows["article_id"].to_numpy(zero_copy_only=False).astype(object),
            product_codes=rows["product_code"].to_numpy(), repeat=category in repeat, key=key, mode=mode,
            group_overrides=overrides,
            vectors={k: serve.article_vectors(model, {n: torch.from_numpy(a) for n, a in params[k].items()}, inputs)
                     for k in {key} | {k for k, _ in overrides.values()}},
            gc_groups=gcc["user_group"].to_pylist(), gc_inputs=serve.encode_group_features(spec, gcc, slots)))
    return serve.ServingPlan(plan_id=uuid.uuid4().hex, run_date=dt.date(2020, 9, 28), model_version="v1",
                             architecture=model.architecture(), spec=spec.to_dict(), params=params, categories=cats,
                             gc_slots=slots, top_n=top_n, max_per_product=cap)


def _brute(shop, plan, category, customer_row, params_key):
    """Reference: full scores of one customer, exclusions, sort by (score desc, article_id), cap."""
    spec, model, customers, articles, gc, base, moved = shop
    params = {"base": base, "*|55+|store": moved}[params_key]
    row = customers.slice(customer_row, 1)
    group = row["user_group"][0].as_py()
    match = gc.filter(pa.compute.and_(pa.compute.equal(gc["category"], category),
                                      pa.compute.equal(gc["user_group"], group)))
    value = match[C_COLS[1]][0].as_py() if match.num_rows else None
    row = row.append_column(C_COLS[1], pa.array([value], pa.float64()))
    x = model.encode_customers(params, torch.from_numpy(spec.customer_inputs(row)))
    cand = articles.filter(pa.compute.equal(articles["category"], category))
    y = model.encode_articles(params, torch.from_numpy(spec.article_inputs(cand)))
    scores = (x @ y.T).detach().numpy()[0].astype(np.float64)
    ids = cand["article_id"].to_pylist()
    codes = cand["product_code"].to_pylist()
    bought = set(customers["bought"][customer_row].as_py() or [])
    cat_plan = next(c for c in plan.categories if c.category == category)
    order = sorted(range(len(ids)), key=lambda j: (-round(float(scores[j]), 4), ids[j]))
    picked, per_code = [], {}
    for j in order:
        if not cat_plan.repeat and ids[j] in bought:
            continue
        if plan.max_per_product and per_code.get(codes[j], 0) >= plan.max_per_product:
            continue
        per_code[codes[j]] = per_code.get(codes[j], 0) + 1
        picked.append(ids[j])
    return picked[:plan.top_n], scores


def _lists(table: pa.Table) -> dict:
    return {(r["category"], r["customer_id"]): ([i["article_id"] for i in r["items"]], [i["score"] for i in r["items"]],
                                                 r["serving_mode"]) for r in table.to_pylist()}


@pytest.mark.parametrize("repeat,cap", [((), None), (("Top",), None), ((), 1)])
def test_batch_matches_brute_force(shop, repeat, cap):
    plan = _plan(shop, repeat=repeat, cap=cap)
    out = serve.score_batch(shop[2], plan)
    assert out.schema == serve.OUTPUT_SCHEMA and out.num_rows == shop[2].num_rows * 2
    lists = _lists(out)
    for i in range(0, shop[2].num_rows, 3):
        cid = shop[2]["customer_id"][i].as_py()
        for category in ("Shoe", "Top"):
            expected, _ = _brute(shop, plan, category, i, "base")
            got, scores, mode = lists[(category, cid)]
            assert mode == "warm"
            assert scores == sorted(scores, reverse=True)
            # scores of tied articles agree bit for bit; the reference rounds to compare orders robustly
            assert got == expected, (category, cid)


def test_new_group_uses_its_own_parameters_and_mode(shop):
    plan = _plan(shop, new_groups={"55+|store": ("*|55+|store", "meta_adapted"), "unknown|store": ("base", "fallback")})
    lists = _lists(serve.score_batch(shop[2], plan))
    for i in range(0, shop[2].num_rows, 5):
        cid, group = shop[2]["customer_id"][i].as_py(), shop[2]["user_group"][i].as_py()
        got, _, mode = lists[("Top", cid)]
        assert mode == {"55+|store": "meta_adapted", "unknown|store": "fallback"}.get(group, "warm")
        key = "*|55+|store" if group == "55+|store" else "base"
        assert got == _brute(shop, plan, "Top", i, key)[0]


def test_same_rows_whatever_the_batch(shop):
    plan = _plan(shop, cap=2)
    whole = _lists(serve.score_batch(shop[2], plan))
    parts = {}
    for start, stop in ((0, 1), (1, 33), (33, 70)):
        parts.update(_lists(serve.score_batch(shop[2].slice(start, stop - start), plan)))
    assert parts == whole  # scores bit-identical too: padding makes every product take the same kernel


def test_excluded_articles_never_appear_and_short_lists_are_allowed(shop):
    plan = _plan(shop, top_n=15)  # more than a category's 15 articles minus purchases
    out = _lists(serve.score_batch(shop[2], plan))
    for i in range(shop[2].num_rows):
        cid = shop[2]["customer_id"][i].as_py()
        bought = set(shop[2]["bought"][i].as_py() or [])
        for category in ("Shoe", "Top"):
            got = out[(category, cid)][0]
            assert not bought & set(got) and len(got) == len(set(got))
            assert len(got) == 15 - len({b for b in bought if (int(b) % 2 == 1) == (category == "Top")})
