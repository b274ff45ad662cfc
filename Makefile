# posmask — tag once with spaCy, pre-train many POS-masked models, evaluate, report.
# Every target installs the virtual environment first when needed.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
POSMASK     := $(VENV)/bin/posmask
STAMP       := $(VENV)/.installed

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
RUN         ?=# default: posmask names the run folder (runs/PRESET-POS-RATIO[-albef])
ALBEF       ?=
EPOCHS      ?=
MAX_STEPS   ?=
# the tiny preset's supervised image-encoder start (make vision-init); used by pretrain when it exists
VISION_INIT ?= runs/vision-tiny
VISION      ?= $(if $(filter tiny,$(PRESET)),$(wildcard $(VISION_INIT)/vision.safetensors))
# eval / report
TASKS       ?= retrieval,valse,vqa,probe
DATA        ?=
IMAGES      ?=
EVAL_ARGS   ?=
RUNS        ?= $(filter-out $(VISION_INIT),$(wildcard runs/*))

.PHONY: install demo test bench tag-shards make-scenes vision-init pretrain eval report clean help

help:
	@echo "make demo | test | bench | make-scenes | tag-shards | vision-init | pretrain POS=DET RATIO=0.7 | eval RUN=runs/NAME | report RUNS='runs/a runs/b'"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -e '.[dev]'
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/benchmarks -q

bench: $(STAMP)
	$(PY) -m pytest tests/benchmarks -q -s

make-scenes: $(STAMP)
	$(POSMASK) make-scenes --out $(SRC)

tag-shards: $(STAMP)
	$(if $(filter scenes,$(FORMAT)),$(if $(wildcard $(SRC)/scenes_manifest.json),,$(POSMASK) make-scenes --out $(SRC)))
	$(POSMASK) tag-shards --format $(FORMAT) --src $(SRC) --out $(OUT) --workers $(WORKERS) --image-size $(IMAGE_SIZE)

vision-init: $(STAMP)
	$(POSMASK) vision-init --scenes $(SRC) --out $(VISION_INIT)

pretrain: $(STAMP)
	$(POSMASK) pretrain --pos $(POS) $(if $(RATIO),--ratio $(RATIO)) --preset $(PRESET) --shards $(SHARDS) \
		--gpus $(GPUS) $(if $(NPROC),--nproc $(NPROC)) $(if $(RUN),--run $(RUN)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
		$(if $(MAX_STEPS),--max-steps $(MAX_STEPS)) $(if $(VISION),--vision-weights $(VISION)) $(if $(ALBEF),--albef)

eval: $(STAMP)
	$(if $(RUN),,$(error make eval needs RUN=runs/NAME))
	$(POSMASK) eval --run $(RUN) --tasks $(TASKS) $(if $(DATA),--data $(DATA)) $(if $(IMAGES),--images $(IMAGES)) $(EVAL_ARGS)

report: $(STAMP)
	$(POSMASK) report --runs $(RUNS) --out report

demo: $(STAMP)
	bash scripts/demo.sh

clean:
	rm -rf data runs report
