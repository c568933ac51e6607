"""Evaluation report: aggregation over seeds, the quality-bar lines, Markdown and PNG output (no Spark)."""

from __future__ import annotations

import json

from fashion_meta.evaluation.report import aggregate, quality_bar, write_report


def _record(set_name, method, k, seed, ndcg, low, high):
    return {"set": set_name, "method": method, "k": k, "seed": seed, "customers": 10, "units": 1,
            "metrics": {"ndcg@12": ndcg}, "ci": {"ndcg@12": [low, high]}, "per_category": {"Top": ndcg}}


def _records():
    out = []
    for seed, shift in ((1, 0.0), (2, 0.02)):
        for k, meta, pop, content in ((0, 0.30, 0.20, 0.31), (50, 0.50, 0.40, 0.35)):
            out += [_record("new_categories", "maml", k, seed, meta + shift, meta - 0.05, meta + 0.05),
                    _record("new_categories", "popularity", k, seed, pop + shift, pop - 0.05, pop + 0.05),
                    _record("new_categories", "content", k, seed, content + shift, content - 0.05, content + 0.05)]
        out += [_record("warm_categories", "maml", 0, seed, 0.45, 0.40, 0.50),
                _record("warm_categories", "popularity", 0, seed, 0.60, 0.55, 0.65)]
    return out


def test_aggregate_means_and_spread_over_seeds():
    agg = aggregate(_records())
    v = agg[("new_categories", "maml", 50)]
    assert abs(v["metrics"]["ndcg@12"] - 0.51) < 1e-12 and abs(v["spread"]["ndcg@12"] - 0.01) < 1e-12
    assert v["seeds"] == [1, 2]


def test_quality_bar_lines_judge_each_criterion():
    lines = quality_bar(aggregate(_records()))
    assert any("K=50" in l and "maml" in l and "1.24x" in l and "bar 1.10x: met" in l for l in lines)
    assert any("K=0" in l and "vs content" in l and "no worse" in l for l in lines)  # 0.31 >= 0.26 (mean over seeds)
    assert any(l.startswith("Warm categories") and "WORSE" in l for l in lines)  # 0.45 < 0.55


def test_write_report_files(tmp_path):
    paths = write_report(_records(), tmp_path, {"cutoff": "2020-09-21", "seeds": [1, 2]})
    assert json.loads(paths["json"].read_text())["meta"]["seeds"] == [1, 2]
    text = paths["markdown"].read_text()
    assert "## New categories" in text and "| maml |" in text and "new_categories_vs_k.png" in text
    assert paths["new_categories_vs_k"].stat().st_size > 1000
