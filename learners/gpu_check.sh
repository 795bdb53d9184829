#!/usr/bin/env bash
# One short GPU check (about 8 minutes on an H100/H200), for a machine that has torch, numpy
# and pillow but not the kit's venv, no internet, and the Omniglot cache carried along as
# cache/omniglot/omniglot28.npz (no zips needed).
#
#   bash learners/gpu_check.sh OUT_FOLDER [TRAIN_SECONDS] [SETTINGS]
#
# 1. measures training speed of the attention learner (fp32, bf16 autocast, autocast +
#    torch.compile) and keeps --compile only if it is >= 10% faster;
# 2. trains it on each setting of SETTINGS (default 5w1s,20w1s: 5-way and 20-way 1-shot) for
#    TRAIN_SECONDS each (default 150) and evaluates each on 1000 meta-test tasks (the `lake`
#    setting also needs Lake's all_runs.zip: set LAKE_RUNS=/path/to/all_runs.zip).
# DEVICE=cpu and TQDM_SHIM=1 in the environment rehearse the script on a machine without a GPU.
# Writes OUT_FOLDER/{environment.txt,speed.json,benchmark.json,table.md,*.log}. Every stage
# has its own time limit, so a slow stage cannot eat the results of the others.
set -uo pipefail
OUT=${1:?usage: bash learners/gpu_check.sh OUT_FOLDER [TRAIN_SECONDS]}
SECONDS_PER_TASK=${2:-150}
SETTINGS=${3:-5w1s,20w1s}
DEVICE=${DEVICE:-cuda}
LAKE_ARGS=()
[ -n "${LAKE_RUNS:-}" ] && LAKE_ARGS=(--lake-runs "$LAKE_RUNS")
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
PY=${PYTHON:-$(command -v python3 || command -v python)}
unset OMNIGLOT_SOURCE  # the cache alone must do: there are no zips on the GPU machine

# tqdm is the kit's only other runtime import; where it is missing, a silent stand-in will do.
if [ -n "${TQDM_SHIM:-}" ] || ! "$PY" -c "import tqdm" 2>/dev/null; then
  SHIM=$(mktemp -d)
  mkdir -p "$SHIM/tqdm"
  cat > "$SHIM/tqdm/__init__.py" <<'PYEOF'
"""Stand-in for tqdm on machines without it: iterates, draws nothing."""
class tqdm:
    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable, self.n = iterable, 0
    def __iter__(self):
        return iter(self.iterable)
    def update(self, n=1):
        self.n += n
    def set_postfix(self, *args, **kwargs):
        pass
    def close(self):
        pass
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.close()
PYEOF
  mkdir -p "$SHIM/tqdm/auto" && echo "from tqdm import tqdm" > "$SHIM/tqdm/auto/__init__.py"
  export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
  echo "tqdm missing: using a silent stand-in" >> "$OUT/environment.txt"
fi

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c "import torch, numpy, PIL; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'pillow', PIL.__version__)"
  "$PY" -c "from data import load_omniglot; d = load_omniglot(progress=False); print('omniglot from cache:', d.images.shape)"
} >> "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

timeout 150 "$PY" -m learners.speed --learner attention --task 5w1s --device "$DEVICE" --seconds 10 \
  --out "$OUT/speed.json" > "$OUT/speed.log" 2>&1
cat "$OUT/speed.log"
COMPILE=$("$PY" - "$OUT/speed.json" <<'PYEOF'
import json, sys
try:
    speed = json.load(open(sys.argv[1]))
    amp, compiled = speed["amp"], speed["amp+compile"]
    print("--compile" if isinstance(compiled, float) and compiled >= 1.1 * amp else "")
except Exception:
    print("")
PYEOF
)
echo "compile flag: '${COMPILE}'" | tee -a "$OUT/environment.txt"

COUNT=$(echo "$SETTINGS" | tr ',' '\n' | grep -c .)
LIMIT=$(( COUNT * (SECONDS_PER_TASK + 60) + 60 ))
AMP=$([ "$DEVICE" = cuda ] && echo on || echo off)
timeout "$LIMIT" "$PY" -m learners.benchmark --learners attention \
  --tasks "$SETTINGS" --seconds "$SECONDS_PER_TASK" --device "$DEVICE" --amp "$AMP" $COMPILE \
  --test-tasks 1000 --no-progress "${LAKE_ARGS[@]}" --out "$OUT/benchmark.json" > "$OUT/benchmark.log" 2>&1
echo "benchmark exit status: $?" | tee -a "$OUT/environment.txt"
tail -n 30 "$OUT/benchmark.log"
"$PY" -m learners.benchmark --table "$OUT/benchmark.json" > "$OUT/table.md" 2>&1 || true
