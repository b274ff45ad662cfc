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
RUN         ?= runs/$(PRESET)-$(subst $(comma),+,$(POS))$(if $(RATIO),-$(RATIO))
EPOCHS      ?=
MAX_STEPS   ?=
# eval / report
TASKS       ?= retrieval,valse,vqa,probe
DATA        ?=
IMAGES      ?=
EVAL_ARGS   ?=
RUNS        ?= $(wildcard runs/*)
comma       := ,

.PHONY: install demo test bench tag-shards make-scenes pretrain eval report clean help

help:
	@echo "make demo | test | bench | tag-shards | pretrain POS=DET RATIO=0.7 | eval RUN=runs/NAME | report RUNS='runs/a runs/b'"

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
	$(POSMASK) tag-shards --format $(FORMAT) --src $(SRC) --out $(OUT) --workers $(WORKERS) --image-size $(IMAGE_SIZE)

pretrain: $(STAMP)
	$(POSMASK) pretrain --pos $(POS) $(if $(RATIO),--ratio $(RATIO)) --preset $(PRESET) --shards $(SHARDS) \
		--gpus $(GPUS) $(if $(NPROC),--nproc $(NPROC)) --run $(RUN) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(MAX_STEPS),--max-steps $(MAX_STEPS))

eval: $(STAMP)
	$(POSMASK) eval --run $(RUN) --tasks $(TASKS) $(if $(DATA),--data $(DATA)) $(if $(IMAGES),--images $(IMAGES)) $(EVAL_ARGS)

report: $(STAMP)
	$(POSMASK) report --runs $(RUNS) --out report

demo: $(STAMP)
	bash scripts/demo.sh

clean:
	rm -rf data runs report
