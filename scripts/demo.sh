#!/usr/bin/env bash
# `make demo`: the whole study, end to end, on the built-in scenes sample (CPU, ~20 minutes on 2 cores).
# generate scenes -> tag with Ray + spaCy -> supervised start of the tiny image encoder (the stand-in for
# ImageNet weights) -> pre-train tiny models (no MLM, random 15 %, one POS class) -> evaluate each on
# held-out retrieval / VALSE-format / VQA-format sets + caption probe -> report.
set -euo pipefail
cd "$(dirname "$0")/.."

POSMASK=.venv/bin/posmask
SCENES=${SCENES:-data/scenes}
SHARDS=${SHARDS:-data/shards/scenes}
EVAL_TAGS=${EVAL_TAGS:-data/shards/scenes-eval}
VISION_INIT=${VISION_INIT:-runs/vision-tiny}
STEPS=${DEMO_STEPS:-400}
# name:POS:RATIO for each run
# small settings so the tiny model's evaluation fits the demo's time (see `posmask eval --help`)
EVAL_ARGS=${DEMO_EVAL_ARGS:-"--k 16 --vqa-epochs 2 --vqa-train-limit 1500 --vqa-lr 1e-3"}
RUN_SPECS=${DEMO_RUNS:-"none:none: random:random:0.15 noun:NOUN:0.7"}

started=$(date +%s)
step() { printf '\n==> [%s, %ds] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - started))" "$*"; }

step "1/6 generating the scenes sample into $SCENES"
$POSMASK make-scenes --out "$SCENES"

step "2/6 tagging captions into shards (Ray, 2 workers)"
$POSMASK tag-shards --format scenes --src "$SCENES" --out "$SHARDS" --workers 2
$POSMASK tag-shards --format coco --src "$SCENES/eval/captions.json" --images "$SCENES/eval/images" --out "$EVAL_TAGS" --workers 2

step "3/6 supervised start of the tiny image encoder (object kinds of the training scenes) into $VISION_INIT"
$POSMASK vision-init --scenes "$SCENES" --out "$VISION_INIT"

runs=()
for spec in $RUN_SPECS; do
    IFS=: read -r name pos ratio <<<"$spec"
    run=runs/demo-$name
    runs+=("$run")
    step "4/6 pre-training $run (POS=$pos${ratio:+ RATIO=$ratio}, tiny preset, $STEPS steps)"
    $POSMASK pretrain --preset tiny --pos "$pos" ${ratio:+--ratio "$ratio"} --shards "$SHARDS" --run "$run" \
        --max-steps "$STEPS" --vision-weights "$VISION_INIT/vision.safetensors"
    step "5/6 evaluating $run"
    $POSMASK eval --run "$run" --scenes "$SCENES/eval" --tasks retrieval,valse,vqa,probe \
        --probe-tags "$EVAL_TAGS" $EVAL_ARGS
done

step "6/6 writing the report"
$POSMASK report --runs "${runs[@]}" --out report --title "posmask demo (scenes, tiny preset)"
step "done: report/index.md"
sed -n '1,80p' report/index.md
