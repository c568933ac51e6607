#!/usr/bin/env bash
# A real multi-process Spark cluster on loopback: a standalone master and two 1-core workers from the installed
# pyspark, one spark-submit of a job against it (jobs/nightly.py unless the first argument names another .py file),
# then everything stopped again, also on failure. Exits with the job's exit code.
#
#   jobs/cluster.sh --input data/shop --lake "$PWD/lake" --run-date 2020-09-28 [--config FILE] [nightly options]
#   jobs/cluster.sh jobs/ingest.py --input data/shop --lake "$PWD/lake"
#
# Environment: PYTHON (default .venv/bin/python), CLUSTER_DIR (logs, worker dirs, the package zip; default a new
# .cache/cluster.XXXXXX), WORKER_MEMORY (default 1536m), EXECUTOR_MEMORY (1g), DRIVER_MEMORY (2g),
# FASHION_META_JARS_DIR (Delta's jars, default .cache/jars), KEEP_CLUSTER_DIR=1 keeps the folder after a success.
#
# How the code reaches the executors: the package is zipped and shipped with --archives (unpacked in each
# executor's working folder and put on the Python workers' PYTHONPATH). --py-files would zip-import it, and
# fashion_meta.config reads defaults.toml through Path(__file__), which does not work inside a zip; the driver
# runs the installed package, as on a cluster's edge node.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
JOB="$ROOT/jobs/nightly.py"
if [[ $# -gt 0 && "$1" == *.py ]]; then JOB="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; shift; fi

SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
mkdir -p "$ROOT/.cache"
WORK="${CLUSTER_DIR:-$(mktemp -d "$ROOT/.cache/cluster.XXXXXX")}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
JARS_DIR="${FASHION_META_JARS_DIR:-$ROOT/.cache/jars}"
JARS="$(ls "$JARS_DIR"/*.jar 2>/dev/null | paste -sd, -)"
if [[ "$JARS" != *delta-spark* ]]; then
    echo "cluster: no Delta jars in $JARS_DIR; run \`python -m fashion_meta.bootstrap setup\` once" >&2
    exit 2
fi

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
log() { echo "cluster: $*" >&2; }

export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=localhost SPARK_LOG_DIR="$WORK/logs" SPARK_DAEMON_MEMORY=512m
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"
mkdir -p "$SPARK_LOG_DIR"
PIDS=()
cleanup() {
    local code=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ $code -eq 0 && -z "${CLUSTER_DIR:-}" && -z "${KEEP_CLUSTER_DIR:-}" ]]; then rm -rf "$WORK"; else log "logs kept in $WORK"; fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MASTER_PORT="$(free_port)"; MASTER_UI="$(free_port)"
MASTER="spark://127.0.0.1:$MASTER_PORT"
"$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI" >"$SPARK_LOG_DIR/master.log" 2>&1 &
PIDS+=($!)
for i in 1 2; do
    mkdir -p "$WORK/worker$i"
    "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
        --host 127.0.0.1 --port "$(free_port)" --webui-port "$(free_port)" --cores 1 \
        --memory "${WORKER_MEMORY:-1536m}" --work-dir "$WORK/worker$i" "$MASTER" >"$SPARK_LOG_DIR/worker$i.log" 2>&1 &
    PIDS+=($!)
done

# Both workers registered and ALIVE, per the master's JSON status page (at most 120 s: the JVMs start slowly
# on a busy machine).
"$PY" - "$MASTER_UI" <<'PY' || { log "workers did not register; see $SPARK_LOG_DIR"; exit 1; }
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/json/"
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        state = json.load(urllib.request.urlopen(url, timeout=5))
        if sum(w.get("state") == "ALIVE" for w in state.get("workers", [])) >= 2:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit(1)
PY
log "master $MASTER (UI http://127.0.0.1:$MASTER_UI) with 2 workers x 1 core; logs in $SPARK_LOG_DIR"

# The package, shipped to the executors (see the header for why an archive rather than --py-files).
PKG="$WORK/fashion_meta.zip"
(cd "$ROOT" && "$PY" - "$PKG" <<'PY'
import pathlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as zf:
    for path in sorted(pathlib.Path("fashion_meta").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            zf.write(path)
PY
)

"$SPARK_HOME/bin/spark-submit" \
    --master "$MASTER" \
    --name "fashion-meta $(basename "$JOB" .py) (loopback cluster)" \
    --driver-memory "${DRIVER_MEMORY:-2g}" \
    --executor-memory "${EXECUTOR_MEMORY:-1g}" \
    --total-executor-cores 2 --executor-cores 1 \
    --jars "$JARS" \
    --archives "$PKG#fashion_meta_pkg" \
    --conf spark.executorEnv.PYTHONPATH=fashion_meta_pkg \
    --conf spark.pyspark.python="$PY" \
    --conf spark.pyspark.driver.python="$PY" \
    --conf spark.executorEnv.OMP_NUM_THREADS=1 \
    --conf "spark.driver.extraJavaOptions=-Duser.timezone=UTC -Dlog4j.configurationFile=$ROOT/fashion_meta/log4j2.properties" \
    --conf spark.executor.extraJavaOptions=-Duser.timezone=UTC \
    --conf spark.ui.showConsoleProgress=false \
    --conf spark.databricks.delta.snapshotPartitions=2 \
    "$JOB" "$@" &
SUBMIT=$!
PIDS=("$SUBMIT" "${PIDS[@]}")  # stopped first by the cleanup, then the workers and the master
code=0
wait "$SUBMIT" || code=$?
log "$(basename "$JOB") exited with $code"
exit "$code"
