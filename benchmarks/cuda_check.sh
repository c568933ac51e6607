#!/usr/bin/env bash
# The CUDA checks in one go, for a machine with a CUDA GPU and PyTorch (plus numpy, pandas, pyarrow, safetensors,
# tqdm, pytest, pytest-xdist) but without Spark, Feast or the project installed:
#
#   benchmarks/cuda_check.sh TASK_FOLDER [OUT_DIR]
#
# 1. the model and scoring unit tests (tests/model, tests/recommend/test_scoring.py, not slow) with CUDA visible,
#    which runs the CUDA-only ones (CUDA and CPU train the same model; CUDA and CPU give the same top-N);
# 2. benchmarks/recommend.py on CUDA, then benchmarks/train.py on TASK_FOLDER (a task-dataset folder, e.g.
#    lake/task_files/run_date=...; CPU with 2 threads as the reference and CUDA, in the same run);
# 3. benchmarks/recommend.py on CPU (2 threads), the same-machine reference for step 2.
# Each step's output goes to OUT_DIR/<step>.log (default: $OUT, else ./cuda_check_out); a failing step does not
# stop the later ones, and the script exits non-zero if any step failed.
set -uo pipefail
folder=${1:?usage: benchmarks/cuda_check.sh TASK_FOLDER [OUT_DIR]}
out=${2:-${OUT:-cuda_check_out}}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
failed=0
step() {  # step NAME TIMEOUT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date -u +%H:%M:%S), limit ${limit} s): $*" | tee "$out/$name.log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$out/$name.log"
    [ "$rc" -eq 0 ] || failed=1
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  # a copied work tree can carry a .git older than its files: HEAD plus the count of changed paths says which
  echo "git HEAD $(git rev-parse HEAD 2>/dev/null || echo none), $(git status --short 2>/dev/null | wc -l) paths differ from it"
  "$py" -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, \
'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), 'cpus', __import__('os').cpu_count())"
} 2>&1 | tee "$out/machine.log"
step tests 180 "$py" -m pytest -p no:cacheprovider -q -n 8 -m "not slow" -rs tests/model tests/recommend/test_scoring.py
step recommend_cuda 90 "$py" benchmarks/recommend.py --device cuda
step train 270 "$py" benchmarks/train.py --folder "$folder" --device auto --threads 2 --omp-wait-policy passive \
    --repeats 3 --adapt-repeats 20
step recommend_cpu 90 "$py" benchmarks/recommend.py --device cpu --threads 2
exit $failed
