"""The evaluation report: metrics JSON, a Markdown table with the quality bar, and PNG plots."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRIC = "ndcg@12"
SET_TITLES = {"new_categories": "New categories", "new_groups": "New user groups", "warm_categories": "Warm categories"}
META = ("maml", "fomaml", "anil", "metasgd")
NON_META = ("popularity", "group_popularity", "content", "warm", "from_scratch", "transfer")


def aggregate(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(set, method, K) -> mean over seeds of each metric, the seeds' spread, and the mean interval."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["set"], r["method"], r["k"])].append(r)
    out = {}
    for key, rs in groups.items():
        metrics = {m: float(np.mean([r["metrics"][m] for r in rs])) for m in rs[0]["metrics"]}
        spread = {m: float(np.std([r["metrics"][m] for r in rs])) for m in rs[0]["metrics"]}
        ci = {m: [float(np.mean([r["ci"][m][0] for r in rs])), float(np.mean([r["ci"][m][1] for r in rs]))]
              for m in rs[0]["ci"]}
        out[key] = {"metrics": metrics, "spread": spread, "ci": ci, "seeds": sorted(r["seed"] for r in rs),
                    "customers": int(np.mean([r["customers"] for r in rs]))}
    return out


def quality_bar(agg: dict[tuple[str, str, int], dict[str, Any]]) -> list[str]:
    """The issue's bar, checked on the aggregated numbers; one line per criterion."""
    lines = []
    for set_name in ("new_categories", "new_groups"):
        ks = sorted({k for s, _, k in agg if s == set_name})
        if not ks:
            continue
        k_main = 50 if 50 in ks else ks[-1]
        at = {m: v for (s, m, k), v in agg.items() if s == set_name and k == k_main}
        meta = {m: v for m, v in at.items() if m in META}
        other = {m: v for m, v in at.items() if m in NON_META}
        if meta and other:
            bm, bv = max(meta.items(), key=lambda kv: kv[1]["metrics"][METRIC])
            om, ov = max(other.items(), key=lambda kv: kv[1]["metrics"][METRIC])
            ratio = bv["metrics"][METRIC] / ov["metrics"][METRIC] if ov["metrics"][METRIC] > 0 else math.inf
            lines.append(f"{SET_TITLES[set_name]}, K={k_main}: best meta {bm} NDCG@12 {bv['metrics'][METRIC]:.4f} "
                         f"(spread {bv['spread'][METRIC]:.4f}) vs best non-meta {om} {ov['metrics'][METRIC]:.4f}: "
                         f"{ratio:.2f}x (bar 1.10x: {'met' if ratio >= 1.10 else 'NOT met'})")
        zero = {m: v for (s, m, k), v in agg.items() if s == set_name and k == min(ks)}
        lines += _no_worse(f"{SET_TITLES[set_name]}, K={min(ks)}", zero, "content")
    warm = {m: v for (s, m, k), v in agg.items() if s == "warm_categories"}
    lines += _no_worse("Warm categories", warm, "popularity")
    return lines


def _no_worse(label: str, results: dict[str, dict[str, Any]], reference: str) -> list[str]:
    """"Best meta-learner no worse than ``reference``": its mean at least the low end of the reference's interval."""
    metas = [(m, v) for m, v in results.items() if m in META]
    if reference not in results or not metas:
        return []
    bm, bv = max(metas, key=lambda kv: kv[1]["metrics"][METRIC])
    ref = results[reference]
    low = ref["ci"][METRIC][0]
    return [f"{label}: {bm} {bv['metrics'][METRIC]:.4f} vs {reference} {ref['metrics'][METRIC]:.4f} (interval low "
            f"{low:.4f}): {'no worse' if bv['metrics'][METRIC] >= low else 'WORSE'}"]


def write_report(records: Sequence[dict[str, Any]], out: str | Path, meta: dict[str, Any]) -> dict[str, Path]:
    """metrics.json, report.md and one PNG per set (quality vs K) plus per-category bars; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "metrics.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps({"meta": meta, "records": list(records)}, indent=1, default=str) + "\n")
    agg = aggregate(records)
    lines = [f"# Cold-start evaluation (cutoff {meta.get('cutoff')})", "",
             f"Seeds {meta.get('seeds')}; held out categories {meta.get('new_categories')}, user groups "
             f"{meta.get('new_groups')}; query window {meta.get('query_days')} days; NDCG@12 (mean over seeds, "
             "± spread over seeds, [mean 95% bootstrap interval]).",
             *([f"Models: {meta['models']}."] if meta.get("models") else []), "", "## Quality bar", ""]
    lines += [f"- {line}" for line in quality_bar(agg)] or ["- not enough results"]
    for set_name, title in SET_TITLES.items():
        keys = [key for key in agg if key[0] == set_name]
        if not keys:
            continue
        ks = sorted({k for _, _, k in keys})
        methods = [m for m in (*NON_META, *META) if any(key[1] == m for key in keys)]
        lines += ["", f"## {title}", "", "| method | " + " | ".join(f"K={k}" for k in ks) + " |",
                  "|---|" + "---|" * len(ks)]
        for m in methods:
            cells = []
            for k in ks:
                v = agg.get((set_name, m, k))
                cells.append("-" if v is None else f"{v['metrics'][METRIC]:.4f} ± {v['spread'][METRIC]:.4f} "
                             f"[{v['ci'][METRIC][0]:.3f}, {v['ci'][METRIC][1]:.3f}]")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        fig, ax = plt.subplots(figsize=(7, 4))
        for m in methods:
            pts = [(k, agg[(set_name, m, k)]) for k in ks if (set_name, m, k) in agg]
            x = [k for k, _ in pts]
            y = [v["metrics"][METRIC] for _, v in pts]
            err = [[y_ - v["ci"][METRIC][0] for y_, (_, v) in zip(y, pts)],
                   [v["ci"][METRIC][1] - y_ for y_, (_, v) in zip(y, pts)]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=m)
        ax.set_xlabel("K (support interactions)")
        ax.set_ylabel("NDCG@12")
        ax.set_title(title)
        ax.legend(fontsize=7)
        paths[f"{set_name}_vs_k"] = out / f"{set_name}_vs_k.png"
        fig.tight_layout()
        fig.savefig(paths[f"{set_name}_vs_k"], dpi=100)
        plt.close(fig)
        lines += ["", f"![{title}: NDCG@12 vs K]({paths[f'{set_name}_vs_k'].name})"]
        k_bar = 50 if 50 in ks else ks[-1]
        per = [r for r in records if r["set"] == set_name and r["k"] == k_bar]
        if per:
            cats = sorted({c for r in per for c in r["per_category"]})
            fig, ax = plt.subplots(figsize=(max(6, len(cats) * 0.6), 4))
            width = 0.8 / max(1, len(methods))
            for i, m in enumerate(methods):
                vals = [np.mean([r["per_category"].get(c, np.nan) for r in per if r["method"] == m] or [np.nan])
                        for c in cats]
                ax.bar(np.arange(len(cats)) + i * width, vals, width, label=m)
            ax.set_xticks(np.arange(len(cats)) + 0.4)
            ax.set_xticklabels(cats, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(f"NDCG@12 at K={k_bar}")
            ax.legend(fontsize=6)
            paths[f"{set_name}_per_unit"] = out / f"{set_name}_per_unit.png"
            fig.tight_layout()
            fig.savefig(paths[f"{set_name}_per_unit"], dpi=100)
            plt.close(fig)
            lines += ["", f"![{title}: per unit at K={k_bar}]({paths[f'{set_name}_per_unit'].name})"]
    paths["markdown"].write_text("\n".join(lines) + "\n")
    return paths
