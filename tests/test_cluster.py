"""A nightly on a real multi-process Spark cluster (loopback master + 2 workers) gives the same lists as local[*]."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_meta.spark import delta_jars

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "jobs" / "cluster.sh"
RUN_DATE = "2020-06-14"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.skipif(not any("delta-spark" in p.name for p in delta_jars()), reason="Delta jars not fetched"),
    pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="no Java"),
]


def _lists(lake: Path) -> dict:
    """(run_date, category, customer_id) -> ([(article_id, score), ...] best first, serving_mode)."""
    import deltalake

    table = deltalake.DeltaTable(str(lake / "recommendations")).to_pandas()
    return {
        (str(r.run_date), r.category, r.customer_id): ([(i["article_id"], float(i["score"])) for i in r.items],
                                                       r.serving_mode)
        for r in table.itertuples(index=False)
    }


def test_cluster_nightly_equals_local_nightly(tmp_path, tiny_nightly):
    """The session's local[*] nightly (``tiny_nightly``, a separate process) against the same run on the cluster."""
    env = {**os.environ, "CLUSTER_DIR": str(tmp_path / "cluster"), "PYTHON": sys.executable}
    env.pop("SPARK_MASTER", None)
    lake_cluster, lake_local = tmp_path / "lake_cluster", tiny_nightly.lake
    cluster = subprocess.Popen(["bash", str(CLUSTER_SCRIPT), *tiny_nightly.nightly_args(lake_cluster)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        cluster_out, _ = cluster.communicate(timeout=1800)
    finally:
        if cluster.poll() is None:  # the script's trap stops its driver, workers and master
            cluster.terminate()
            cluster.wait(timeout=60)
    assert cluster.returncode == 0, cluster_out[-4000:]
    # the driver really ran against the standalone master, with executors in other processes
    assert "(master spark://127.0.0.1:" in cluster_out, cluster_out[-4000:]
    assert "(master local[*])" in tiny_nightly.output

    manifests = [json.loads((lake / "task_files" / f"run_date={RUN_DATE}" / "manifest.json").read_text())
                 for lake in (lake_cluster, lake_local)]
    assert manifests[0]["rows"] == manifests[1]["rows"]

    on_cluster, on_local = _lists(lake_cluster), _lists(lake_local)
    assert on_cluster and on_cluster.keys() == on_local.keys()
    for key, (items, mode) in on_local.items():
        cluster_items, cluster_mode = on_cluster[key]
        assert cluster_mode == mode, key
        assert [a for a, _ in cluster_items] == [a for a, _ in items], key
        assert all(math.isclose(c, s, rel_tol=1e-5, abs_tol=1e-6) for (_, c), (_, s) in zip(cluster_items, items)), key
