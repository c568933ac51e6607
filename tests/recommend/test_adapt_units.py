"""The recommend stage's adaptation of new units: which adapted sets carry support evidence (model/evidence.py)."""

from __future__ import annotations

import json

import pytest
import torch

from fashion_meta.model.meta import MetaConfig
from fashion_meta.model.towers import ModelConfig

from ..model.conftest import TaskPlan, plans, write_task_dataset

pytest.importorskip("pyspark")  # recommend.job imports Spark at module level


@pytest.mark.parametrize("group_evidence", [False, True])
def test_new_group_adapts_with_support_evidence_only_if_configured(tmp_path, group_evidence):
    from fashion_meta.model.checkpoint import load_model
    from fashion_meta.model.data import load_task_dataset
    from fashion_meta.model.train import train
    from fashion_meta.recommend import job

    folder = tmp_path / "t"
    manifest = write_task_dataset(folder, plans(4, 2, 0) + [TaskPlan("NewCat", "*", "holdout", 0.0),
                                                           TaskPlan("*", "g9", "holdout", 0.0)])
    manifest["holdout"] = {"categories": ["NewCat"], "user_groups": ["g9"]}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    train(folder, tmp_path / "reg", "fomaml", seed=0, version="v", promote=False, progress=False,
          model_config=ModelConfig(hidden=(8,), dim=4, group_evidence=group_evidence),
          meta_config=MetaConfig(epochs=1, cold_fraction=0.0))
    loaded = load_model(tmp_path / "reg", "v")
    assert loaded.model.config.group_evidence is group_evidence  # the card keeps the choice
    summary = job.RecommendSummary(run_date="2020-09-28", model_version="v", engine="driver", device="cpu")
    param_sets, by_category, by_group, bought = job._adapt_units(loaded, folder, manifest, job.RecommendParams(),
                                                                 "cpu", summary)
    assert by_category == {"NewCat": ("NewCat|*", "meta_adapted")} and by_group == {"g9": ("*|g9", "meta_adapted")}
    assert sorted(bought) == (["*|g9", "NewCat|*"] if group_evidence else ["NewCat|*"])
    # the group's adapted parameters are those of adapting on its support without (or with) the evidence
    unit = {t.task_id: t for t in load_task_dataset(folder, roles=job.UNIT_ROLES, spec=loaded.spec).tasks}["*|g9"]
    assert unit.support.evidence is not None  # loaded tasks carry it; serving drops it for a group by default
    adapter, _ = job._adapter(loaded, job.RecommendParams())
    support = unit.support if group_evidence else unit.support.with_evidence(None)
    expected = adapter(loaded.model, loaded.params(), support)
    for name, value in expected.items():
        torch.testing.assert_close(torch.from_numpy(param_sets["*|g9"][name]), value.detach().float())
