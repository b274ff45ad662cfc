#!/usr/bin/env bash
# The GPU figures (issue 13, part 3), in one run on a machine with a CUDA GPU and this repository's .venv:
#   1. the CUDA tests (tests/trainer/test_cuda.py);
#   2. the scenes shards, made once (make-scenes + tag-shards, all CPUs);
#   3. tests/benchmarks/gpu_thesis_step.py on those shards with WORKERS loader workers: fp32, bf16 + fused AdamW,
#      bf16 + fused + torch.compile, with --decode gpu, and the last one again with --decode cpu;
#   4. a 300-step `make pretrain PRESET=thesis` on the scenes shards (random ViT: no weights needed); its loss
#      must fall.
# Writes into OUT (default runs/gpu-check/): the logs, and benchmarks.md = docs/benchmarks.md with its `## GPU`
# section filled in (copy it over docs/benchmarks.md). About 6-8 minutes on one H100-class GPU; each step has
# its own time limit.
# Needs the project installed in .venv (`make install`); `make -o .venv/.installed` never reinstalls it here.
#     bash tests/benchmarks/gpu_check.sh            # OUT=... WORKERS=... STEPS=... to change
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/gpu-check}
WORKERS=${WORKERS:-8}
STEPS=${STEPS:-30}
PY=.venv/bin/python
mkdir -p "$OUT"
export OMP_NUM_THREADS=1

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU here; nothing to do" | tee "$OUT/summary.txt"
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

echo "== 1. CUDA tests"
timeout 300 $PY -m pytest tests/trainer/test_cuda.py -q -rs 2>&1 | tee "$OUT/cuda_tests.log"

echo "== 2. scenes shards"
timeout 300 make -o .venv/.installed tag-shards FORMAT=scenes SRC=data/scenes OUT=data/shards/scenes WORKERS="$(nproc)" \
    2>&1 | tail -3 | tee "$OUT/tag_shards.log"

echo "== 3. thesis step"
cp docs/benchmarks.md "$OUT/benchmarks.md"
POSMASK_BENCH_DOC="$OUT/benchmarks.md" timeout 900 $PY tests/benchmarks/gpu_thesis_step.py --steps "$STEPS" \
    --shards data/shards/scenes --workers "$WORKERS" --decode gpu --compare-decode --write-doc \
    2>&1 | tee "$OUT/thesis_step.log"

echo "== 4. 300 steps of make pretrain PRESET=thesis"
rm -rf "$OUT/thesis-300"
timeout 900 make -o .venv/.installed pretrain PRESET=thesis POS=DET RATIO=0.7 SHARDS=data/shards/scenes MAX_STEPS=300 VISION=random \
    RUN="$OUT/thesis-300" 2>&1 | tail -20 | tee "$OUT/pretrain.log"
$PY - "$OUT/thesis-300/metrics.jsonl" <<'EOF' | tee -a "$OUT/summary.txt"
import sys
from trainer.engine.metrics import read_metrics
records = read_metrics(sys.argv[1])
first, last = records[0], records[-1]
falls = last["loss"] < first["loss"]
print(f"thesis pretrain: step {first['step']} loss {first['loss']:.3f} -> step {last['step']} loss {last['loss']:.3f} "
      f"({'falls' if falls else 'DOES NOT FALL'}); {last.get('samples_per_s', 0):.0f} samples/s, "
      f"data wait {last.get('data_wait_share', 0):.1%}, peak {last.get('peak_mem_mb', 0):.0f} MiB")
sys.exit(0 if falls else 1)
EOF
echo "gpu_check: done; figures in $OUT/benchmarks.md (## GPU)"
