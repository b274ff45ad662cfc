# posmask — tag once with spaCy, pre-train many POS-masked models, evaluate, report.
# Every target installs the virtual environment first when needed.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
POSMASK     := $(VENV)/bin/posmask
STAMP       := $(VENV)/.installed
# byte-code is compiled on first import and cached in .venv (install_env.py skips compiling all ~19,900 modules);
# with the cache turned off, every process would compile all its imports again (docs/demo.md)
unexport PYTHONDONTWRITEBYTECODE

# tag-shards
FORMAT      ?= scenes
SRC         ?= data/scenes
OUT         ?= data/shards/$(notdir $(patsubst %/,%,$(SRC)))
WORKERS     ?= 2
IMAGE_SIZE  ?= 256
# pretrain
POS         ?= DET
RATIO       ?=
PRESET      ?= tiny
SHARDS      ?= data/shards/scenes
GPUS        ?= 1
NPROC       ?=
# several machines (torchrun's static rendezvous): the same command on each, NODE_RANK 0..NNODES-1
NNODES      ?=
NODE_RANK   ?=
MASTER_ADDR ?=
MASTER_PORT ?=
RUN         ?=# default: posmask names the run folder (runs/PRESET-POS-RATIO[-albef])
ALBEF       ?=
# masking beyond the thesis (trainer/README.md, "Masking spec")
WHOLE_WORD  ?=
BUDGET      ?=
FALLBACK    ?=
CURRICULUM  ?=
LOSS_WEIGHTS ?=
EPOCHS      ?=
MAX_STEPS   ?=
REPORT_TO   ?=# tensorboard: TensorBoard events beside each metrics.jsonl (pretrain, the VQA fine-tune of eval, study)
# the tiny preset's supervised image-encoder start (make vision-init); used by pretrain when it exists
VISION_INIT ?= runs/vision-tiny
# the committed start that scenes-data (and so the demo) copies when it was made with today's settings, else it
# trains one (4-5 min on 2 cores); VISION_REUSE= trains it anyway
VISION_REUSE ?= scenes/vision-tiny
VISION      ?= $(if $(filter tiny,$(PRESET)),$(wildcard $(VISION_INIT)/vision.safetensors))
# eval / report
TASKS       ?= retrieval,valse,vqa,probe
DATA        ?=
IMAGES      ?=
EVAL_ARGS   ?=
RUNS        ?= $(filter-out $(VISION_INIT),$(wildcard runs/*))
# study (OUT, GPUS and TASKS are passed only when given on the command line)
GRID        ?= thesis
SEEDS       ?= 1
SEED_FROM   ?=# a study in parts: seeds number SEED_FROM.. (runs NAME-seedK); merge with make report FROM=A,B
GPUS_PER_RUN ?= 1
PARALLEL    ?= 1
REFERENCE   ?=
WITH_THESIS ?=
FULL_LAYOUT ?=# 1: every row of the thesis's Tables 4.1-4.5 (a study of the thesis grid does it by itself)
ADJUST      ?=# each table's correction: holm (default) | bh | none
ALPHA       ?=# the tests' level (default 0.05)
PLAN        ?=# 1: print the study's jobs and their cost, train nothing
SAMPLES_PER_S ?=# samples/s per GPU for PLAN's projection
FROM        ?=# make report FROM=STUDY/evidence: rebuild a report from a study's evidence
EVIDENCE    ?=# make report EVIDENCE=DIR: also write the runs' (or the merged parts') evidence there
given        = $(filter command line environment,$(origin $(1)))
# probe-scst (issue 14): RUN may name several runs, each gets its SCST captioner; SCORERS only score
REWARD      ?= itm
SCORERS     ?=
SCST_ARGS   ?=
# vizer (issue 15): RUN is a run probed by probe-scst (its CE captioner, SCST captioner and ITC scorer)
VARIANT     ?= gt g
WIDTH       ?= 256
MAP_SAMPLES ?= 40000
UNLABELED   ?= data/scenes/eval/images
LORA_TARGETS ?= text
VIZER_ARGS  ?=

.PHONY: install demo test test-fast bench gpu-prepare gpu-rehearse tag-shards make-scenes vision-init scenes-data pretrain eval report study probe-scst vizer clean help

help:
	@echo "make demo | test | test-fast | bench | make-scenes | tag-shards | vision-init | pretrain POS=DET RATIO=0.7 | eval RUN=runs/NAME | report RUNS='runs/a runs/b' | study GRID=thesis PRESET=tiny SEEDS=3 | probe-scst RUN=runs/NAME [REWARD=itm|itc] | vizer RUN=runs/NAME [VARIANT=gt|g] [WIDTH=256] [MAP_SAMPLES=40000] [UNLABELED=DIR] [LORA_TARGETS=text|all]"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PYTHON) install_env.py $(VENV) '.[dev]'  # uv with pip's indexes and constraints, else pip
	touch $@

install: $(STAMP)

# the full suite (what CI runs) in TEST_WORKERS pytest-xdist processes, a test module per process at a time
# (its module fixtures built once); tests/conftest.py hands out the modules with slow tests first. Timings:
# docs/demo.md, "The tests". test-fast leaves out the tests marked slow (training, torchrun, Ray, studies). Both fail
# when pytest collects nothing (its exit status 5).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/benchmarks -q --durations=30 -n $(TEST_WORKERS) --dist loadscope

test-fast: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/benchmarks -q -m "not slow"

bench: $(STAMP)
	$(PY) -m pytest tests/benchmarks -q -s

# the GPU check (tests/benchmarks/README.md): the folder that travels to the lent CUDA machine, and a CPU rehearsal
gpu-prepare: $(STAMP)
	PREP_PY=$(PY) bash tests/benchmarks/gpu_check.sh --prepare

gpu-rehearse:
	bash tests/benchmarks/gpu_check.sh --rehearse

make-scenes: $(STAMP)
	$(POSMASK) make-scenes --out $(SRC)

tag-shards: $(STAMP)
	$(if $(filter scenes,$(FORMAT)),$(if $(wildcard $(SRC)/scenes_manifest.json),,$(POSMASK) make-scenes --out $(SRC)))
	$(POSMASK) tag-shards --format $(FORMAT) --src $(SRC) --out $(OUT) --workers $(WORKERS) --image-size $(IMAGE_SIZE)

vision-init: $(STAMP)
	$(POSMASK) vision-init --scenes $(SRC) --out $(VISION_INIT)

pretrain: $(STAMP)
	$(POSMASK) pretrain $(if $(CURRICULUM),--curriculum '$(CURRICULUM)',--pos $(POS)) $(if $(RATIO),--ratio $(RATIO)) \
		$(if $(filter 1 yes true,$(WHOLE_WORD)),--whole-word) $(if $(BUDGET),--budget $(BUDGET)) \
		$(if $(FALLBACK),--fallback $(FALLBACK)) $(if $(LOSS_WEIGHTS),--loss-weights '$(LOSS_WEIGHTS)') \
		--preset $(PRESET) --shards $(SHARDS) \
		--gpus $(GPUS) $(if $(NPROC),--nproc $(NPROC)) $(if $(RUN),--run $(RUN)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
		$(if $(MAX_STEPS),--max-steps $(MAX_STEPS)) $(if $(VISION),--vision-weights $(VISION)) $(if $(ALBEF),--albef) \
		$(if $(REPORT_TO),--report-to $(REPORT_TO)) \
		$(if $(NNODES),--nnodes $(NNODES)) $(if $(NODE_RANK),--node-rank $(NODE_RANK)) \
		$(if $(MASTER_ADDR),--master-addr $(MASTER_ADDR)) $(if $(MASTER_PORT),--master-port $(MASTER_PORT))

eval: $(STAMP)
	$(if $(RUN),,$(error make eval needs RUN=runs/NAME))
	$(POSMASK) eval --run $(RUN) --tasks $(TASKS) $(if $(DATA),--data $(DATA)) $(if $(IMAGES),--images $(IMAGES)) \
		$(if $(REPORT_TO),--report-to $(REPORT_TO)) $(EVAL_ARGS)

report_flags = $(if $(REFERENCE),--reference "$(REFERENCE)") $(if $(WITH_THESIS),--with-thesis) $(if $(FULL_LAYOUT),--full-layout) \
	$(if $(ADJUST),--adjust $(ADJUST)) $(if $(ALPHA),--alpha $(ALPHA))

report: $(STAMP)
	$(POSMASK) report $(if $(FROM),--from-items $(FROM),--runs $(RUNS)) --out $(if $(call given,OUT),$(OUT),report) \
		$(if $(EVIDENCE),--evidence $(EVIDENCE)) $(report_flags)

probe-scst: $(STAMP)
	$(if $(RUN),,$(error make probe-scst needs RUN=runs/NAME (one or more runs)))
	$(POSMASK) probe-scst --run $(RUN) --reward $(REWARD) $(if $(SCORERS),--scorers $(SCORERS)) \
		$(if $(call given,OUT),--out $(OUT)) $(SCST_ARGS)

vizer: $(STAMP)
	$(if $(RUN),,$(error make vizer needs RUN=runs/NAME (a run probed by make probe-scst)))
	$(POSMASK) vizer --run $(RUN) --variant $(VARIANT) --width $(WIDTH) --map-samples $(MAP_SAMPLES) \
		--unlabeled $(UNLABELED) --lora-targets $(LORA_TARGETS) $(if $(call given,OUT),--out $(OUT)) $(VIZER_ARGS)

# the built-in scenes sample, tagged (training captions, and evaluation captions for the probe), and the tiny
# preset's image-encoder start; every step reuses what is already complete
scenes-data: $(STAMP)
	$(POSMASK) make-scenes --out data/scenes
	$(POSMASK) tag-shards --format scenes --src data/scenes --out data/shards/scenes --workers $(WORKERS)
	# the 1,000 evaluation captions make one shard: one worker, tagged in this process (no Ray cluster to start)
	$(POSMASK) tag-shards --format coco --src data/scenes/eval/captions.json --images data/scenes/eval/images \
		--out data/shards/scenes-eval --workers 1
	$(POSMASK) vision-init --scenes data/scenes --out $(VISION_INIT) $(if $(VISION_REUSE),--reuse $(VISION_REUSE))

study: $(STAMP) $(if $(filter data/shards/scenes,$(SHARDS)),scenes-data)
	$(POSMASK) study --grid $(GRID) --preset $(PRESET) --shards $(SHARDS) --seeds $(SEEDS) --parallel $(PARALLEL) \
		$(if $(SEED_FROM),--seed-from $(SEED_FROM)) --gpus-per-run $(GPUS_PER_RUN) $(if $(call given,GPUS),--gpus $(GPUS)) $(if $(MAX_STEPS),--max-steps $(MAX_STEPS)) \
		$(if $(call given,TASKS),--tasks $(TASKS)) $(if $(DATA),--data "$(DATA)") $(if $(IMAGES),--images "$(IMAGES)") \
		$(if $(call given,OUT),--out $(OUT)) $(report_flags) $(if $(filter 1 yes true,$(PLAN)),--plan) \
		$(if $(SAMPLES_PER_S),--samples-per-s $(SAMPLES_PER_S)) $(if $(REPORT_TO),--report-to $(REPORT_TO)) $(if $(NNODES),--nnodes $(NNODES)) $(if $(NODE_RANK),--node-rank $(NODE_RANK)) \
		$(if $(MASTER_ADDR),--master-addr $(MASTER_ADDR)) $(if $(MASTER_PORT),--master-port $(MASTER_PORT))

demo: $(STAMP)
	$(MAKE) study GRID=demo PRESET=tiny PARALLEL=3  # its 3 runs at once, one thread each: no core idles

clean:
	rm -rf data runs report studies
