#!/usr/bin/env bash
# The GPU figures, in one command on the lent CUDA machine as it is (tests/benchmarks/README.md, "The GPU check").
#
#   bash tests/benchmarks/gpu_check.sh --prepare    # here, once (CPU, the project's .venv with spaCy): the wheels of
#                                                   # what that machine lacks + a 224-px scenes shard set, in .gpu-carry/
#   bash tests/benchmarks/gpu_check.sh --rehearse   # here: every step on the CPU, tiny sizes, in a venv that holds
#                                                   # only what that machine has (tests/benchmarks/gpu_machine.txt)
#   bash tests/benchmarks/gpu_check.sh              # there: python3 + PYTHONPATH=the checkout; .gpu-carry carried
#
# Steps, each with its own time limit inside a 7-minute budget: 0. versions and packages (a missing one stops here,
# in one line); 1. the CUDA tests; 2. the thesis step (fp32; bf16 + fused AdamW; bf16 + fused + torch.compile) on a
# batch already on the GPU; 3. the loader feeding it from the carried shards, --decode gpu and --decode cpu; 4. a
# 300-step `posmask pretrain --preset thesis` (random ViT) whose loss must fall. Writes into OUT (default
# runs/gpu-check, 8 files): env.txt, cuda_tests.log, thesis_step.log, loader.log, pretrain.log,
# pretrain_metrics.jsonl, summary.txt and benchmarks.md (docs/benchmarks.md with its GPU sections filled in: copy it
# over docs/benchmarks.md). Exit status: 0 when every step passed, 1 when one failed, 2 when it could not start.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
MODE=run
case "${1:-}" in
    --prepare) MODE=prepare ;; --rehearse) MODE=rehearse ;; "") ;;
    *) echo "usage: bash tests/benchmarks/gpu_check.sh [--prepare | --rehearse]" >&2; exit 2 ;;
esac
CARRY=${CARRY:-.gpu-carry}                # what travels beside the checkout: wheels/ and shards/
SAMPLES=${SAMPLES:-4096}                  # the shard set: 4,096 scenes captions at 224 px in 8 tars (~35 MB)
TRAVEL_LIMIT=$((64 * 1024 * 1024))        # the device tool's limit on what travels
BLOCK=spacy,ray                           # never imported on the train path (the rehearsal enforces it)

fail() { echo "gpu_check: $*" >&2; exit 2; }

travel_bytes() {  # tracked and untracked-not-ignored files, plus the carried folder
    local tree carry
    tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    carry=$(du -sb "$CARRY" 2>/dev/null | cut -f1)
    echo $((tree + ${carry:-0}))
}

prepare() {
    local py=${PREP_PY:-.venv/bin/python} src=${SCENES:-data/scenes}
    [ -x "$py" ] || fail "--prepare needs the project's virtual environment with spaCy ($py; make install), or PREP_PY=..."
    mkdir -p "$CARRY/wheels"
    echo "== wheels of what the CUDA machine lacks (tests/benchmarks/gpu_wheels.txt), for CPython 3.12"
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRY/wheels" -r tests/benchmarks/gpu_wheels.txt || fail "pip download failed (is PyPI reachable?)"
    ls "$CARRY/wheels"
    echo "== $SAMPLES scenes captions tagged at 224 px into $CARRY/shards"
    [ -f "$src/scenes_manifest.json" ] || "$py" -m posmask_cli make-scenes --out "$src" || fail "make-scenes failed"
    "$py" -m posmask_cli tag-shards --format scenes --src "$src" --out "$CARRY/shards" --image-size 224 \
        --limit "$SAMPLES" --shard-size $((SAMPLES / 8)) --workers "${WORKERS:-2}" --no-progress \
        || fail "tag-shards failed"
    local size; size=$(travel_bytes)
    echo "gpu_check --prepare: $CARRY holds $(du -sh "$CARRY" | cut -f1); what travels: $((size / 1024 / 1024)) MiB" \
         "of $((TRAVEL_LIMIT / 1024 / 1024)) MiB; carry '$CARRY' with the device run"
    [ "$size" -lt "$TRAVEL_LIMIT" ] || fail "what would travel is over 64 MiB; lower SAMPLES"
}

rehearse_venv() {  # a clean venv of what the CUDA machine has, built once under /tmp
    local venv=${REHEARSE_VENV:-/tmp/gpu-rehearse-venv}
    if [ ! -x "$venv/bin/python" ]; then
        echo "== building $venv from tests/benchmarks/gpu_machine.txt (a few minutes)"
        "${REHEARSE_PYTHON:-python3}" -m venv "$venv" || fail "could not create $venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/benchmarks/gpu_machine.txt \
        >"$venv.install.log" 2>&1 || fail "pip install into $venv failed: see $venv.install.log"
    local extra
    extra=$("$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(spacy|ray|webdataset|braceexpand)==' | tr '\n' ' ')
    [ -z "$extra" ] || fail "$venv is not clean: it holds $extra(the CUDA machine has none of them); remove it"
    PY=$venv/bin/python
}

if [ "$MODE" = prepare ]; then prepare; exit; fi

OUT=${OUT:-runs/gpu-$([ "$MODE" = rehearse ] && echo rehearse || echo check)}
SITE=${SITE:-/tmp/posmask-gpu-site}
RUNDIR=${RUNDIR:-/tmp/posmask-gpu-check/pretrain}
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/env.txt "$OUT"/summary.txt "$OUT"/pretrain_metrics.jsonl "$OUT"/benchmarks.md
if [ "$MODE" = rehearse ]; then
    DEVICE=cpu BUDGET=${BUDGET:-1500} WORKERS=${WORKERS:-2}
    THESIS_ARGS=(--device cpu --preset tiny --steps 2 --batch 8)
    PRETRAIN_ARGS=(--preset tiny --cpu --max-steps 30 --log-every 10 --batch-size 16)
    CAPS=(300 600 300 300)
    rehearse_venv
    export PYTHONPATH_EXTRA=$REPO/tests/benchmarks/import_block POSMASK_BLOCK_IMPORTS=$BLOCK
else
    DEVICE=cuda BUDGET=${BUDGET:-420} WORKERS=${WORKERS:-8} PY=${PY:-python3}
    THESIS_ARGS=(--device cuda --preset thesis --steps "${STEPS:-30}" --batch 64)
    PRETRAIN_ARGS=(--preset thesis --max-steps 300 --log-every 25)
    CAPS=(90 170 80 130)  # CUDA tests, thesis step, loader, pre-training: 470 s of caps inside the 420-s budget
    PYTHONPATH_EXTRA=
fi
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH=$REPO:$SITE${PYTHONPATH_EXTRA:+:$PYTHONPATH_EXTRA}
STATUS=0
step_limit() {  # seconds a step may run: its cap, or what is left of the budget
    local left=$((BUDGET - SECONDS - 10))
    [ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}
record() { echo "$*" | tee -a "$OUT/summary.txt"; }
run_step() {  # run_step NAME CAP LOG COMMAND...: one step under its limit; its status and time go to summary.txt
    local name=$1 cap=$2 log=$3 limit start rc
    shift 3
    limit=$(step_limit "$cap")
    if [ "$limit" -lt 20 ]; then record "$name: SKIPPED (the ${BUDGET}-s budget is spent)"; STATUS=1; return; fi
    echo "== $name (limit ${limit} s)"
    start=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then record "$name: ok, $((SECONDS - start)) s"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then record "$name: TIMED OUT after ${limit} s"; STATUS=1
    else record "$name: FAILED (exit $rc), $((SECONDS - start)) s; see $(basename "$log")"; STATUS=1; fi
}

# 0. versions and packages, first; the carried wheels installed beside the checkout
{
    echo "gpu_check ($MODE) $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(getconf _NPROCESSORS_ONLN) CPUs, python: $PY"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} | tee "$OUT/env.txt"
if [ ! -d "$CARRY/wheels" ] || [ ! -f "$CARRY/shards/manifest.json" ]; then
    fail "no prepared $CARRY/ (wheels/ and shards/) here: run 'bash tests/benchmarks/gpu_check.sh --prepare' on a" \
         "CPU machine with the project's .venv, then carry '$CARRY' with this checkout"
fi
rm -rf "$SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$CARRY"/wheels/*.whl \
    >>"$OUT/env.txt" 2>&1 || fail "pip install --no-index of $CARRY/wheels failed (see $OUT/env.txt)"
"$PY" - "$DEVICE" <<'EOF' 2>&1 | tee -a "$OUT/env.txt"
import importlib, sys
need = ["torch", "torchvision", "timm", "transformers", "tokenizers", "safetensors", "numpy", "PIL", "yaml",
        "matplotlib", "webdataset", "braceexpand", "pytest"]
found, missing = [], []
for name in need:
    try:
        module = importlib.import_module(name)
        found.append(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as err:  # one line naming it, not a traceback later
        missing.append(f"{name} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
print(f"python {sys.version.split()[0]}; " + ", ".join(found))
if missing:
    print("gpu_check: missing package " + "; ".join(missing) + " (carry its wheel in .gpu-carry/wheels)")
    sys.exit(3)
import torch
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: " +
      (f"{torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)"
       if cuda else "none"))
if sys.argv[1] == "cuda" and not cuda:
    print("gpu_check: no CUDA GPU here; nothing measured (--rehearse runs the steps on the CPU)")
    sys.exit(4)
EOF
case ${PIPESTATUS[0]} in 0) ;; 4) exit 0 ;; *) exit 2 ;; esac
if [ "$MODE" = rehearse ]; then
    size=$(travel_bytes)
    record "travel: $((size / 1024)) KiB of the checkout and $CARRY ($(du -sh "$CARRY" | cut -f1) carried), limit 64 MiB"
    [ "$size" -lt "$TRAVEL_LIMIT" ] || { record "travel: OVER 64 MiB"; STATUS=1; }
fi
cp docs/benchmarks.md "$OUT/benchmarks.md"
export POSMASK_BENCH_DOC=$OUT/benchmarks.md

run_step "1. CUDA tests" "${CAPS[0]}" "$OUT/cuda_tests.log" \
    "$PY" -m pytest tests/trainer/test_cuda.py -q -rs -p no:cacheprovider
run_step "2. thesis step" "${CAPS[1]}" "$OUT/thesis_step.log" \
    "$PY" tests/benchmarks/gpu_thesis_step.py "${THESIS_ARGS[@]}" --configs fp32,bf16,compile --write-doc
run_step "3. loader, --decode gpu and cpu" "${CAPS[2]}" "$OUT/loader.log" \
    "$PY" tests/benchmarks/gpu_thesis_step.py "${THESIS_ARGS[@]}" --configs bf16 --shards "$CARRY/shards" \
    --workers "$WORKERS" --decode gpu --compare-decode --write-doc --section "GPU data"
rm -rf "$RUNDIR"
run_step "4. pre-training" "${CAPS[3]}" "$OUT/pretrain.log" \
    "$PY" -m posmask_cli pretrain "${PRETRAIN_ARGS[@]}" --pos DET --ratio 0.7 --vision-weights random \
    --shards "$CARRY/shards" --workers "$WORKERS" --run "$RUNDIR"
cp "$RUNDIR/metrics.jsonl" "$OUT/pretrain_metrics.jsonl" 2>/dev/null
"$PY" tests/benchmarks/gpu_pretrain_check.py "$OUT/pretrain_metrics.jsonl" "$MODE" 2>&1 | tee -a "$OUT/summary.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || STATUS=1
record "gpu_check ($MODE): $([ $STATUS -eq 0 ] && echo 'every step passed' || echo 'NOT every step passed'), ${SECONDS} s;" \
       "figures in $OUT/benchmarks.md (## GPU, ## GPU data, ## GPU pre-training)"
exit $STATUS
