# lit_algos — everyday jobs. `make help` lists them.
# The environment is created on first use (.venv); a CPU build of torch is installed first so
# that no CUDA packages are pulled on a CPU machine. Override TORCH on a GPU box:
#   make setup TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/lit-algos
STAMP := $(VENV)/.installed

RECIPE ?= debug
ARGS ?=
TRACK ?= cpu-kjv
SEEDS ?= 3
RUNS ?=
REF ?= retro
NEW ?= modern
DESC ?=
CONTRIB ?=
ENTRY ?=
RUN ?=
FORMAT ?= safetensors
OUT ?= export
NAME ?= sanderson
QUICK ?=
DEVICE ?= auto
GPU_OUT ?= gpu-check
WHEELS ?=
# On a lent GPU machine there is no .venv: its own python3 (with torch) runs the check.
GPU_PY = $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: help setup test lint format run describe components recipes data speedrun submit leaderboard \
        ceg ab ablation scaling benchmark main verify sample export study clean gpu-check gpu-wheels slurm-up

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | expand -t 14

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install lit_algos with its dev tools

test: $(STAMP)  ## lint (ruff, the import floors) and run the test suite (CPU only; the SLURM tests need make slurm-up)
	$(VENV)/bin/ruff check lit_algos tests scripts
	$(VENV)/bin/ruff format --check lit_algos tests scripts
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)  ## ruff check and the import floors (lint-imports; contracts in pyproject.toml)
	$(VENV)/bin/ruff check lit_algos tests scripts
	$(VENV)/bin/lint-imports

format: $(STAMP)  ## apply ruff formatting and fixes
	$(VENV)/bin/ruff check --fix lit_algos tests scripts
	$(VENV)/bin/ruff format lit_algos tests scripts

run: $(STAMP)  ## train a recipe: make run RECIPE=retro ARGS="--seed 1 --set train.max_tokens=1e6"
	$(CLI) train $(RECIPE) $(ARGS)

describe: $(STAMP)  ## model, parameters and FLOPs of a recipe: make describe RECIPE=modern
	$(CLI) describe $(RECIPE) $(ARGS)

components: $(STAMP)  ## list every registry axis and its entries
	$(CLI) components

recipes: $(STAMP)  ## list the recipes
	$(CLI) recipes

data: $(STAMP)  ## prepare the data of a recipe's default corpus: make data ARGS="--corpus kjv --tokenizer bpe:4096"
	$(CLI) data prepare $(ARGS)

speedrun: $(STAMP)  ## run SEEDS seeds of RECIPE on TRACK and show where it would rank
	$(CLI) speedrun --track $(TRACK) --recipe $(RECIPE) --seeds $(SEEDS) $(ARGS)

submit: $(STAMP)  ## submit runs: make submit TRACK=cpu-kjv RUNS="runs/a runs/b" DESC="..." CONTRIB="me"
	$(CLI) submit $(RUNS) --track $(TRACK) --description "$(DESC)" --contributors "$(CONTRIB)" $(ARGS)

leaderboard: $(STAMP)  ## render leaderboard/README.md and print the board
	$(CLI) leaderboard --plots $(ARGS)

ceg: $(STAMP)  ## compute-equivalent gain of NEW over REF: make ceg REF=retro NEW=modern
	$(CLI) ceg --ref $(REF) --new $(NEW) $(ARGS)

ab: $(STAMP)  ## A/B over SEEDS seeds, then CEG: make ab REF=modern NEW=modern ARGS="--new-set model.attention.qk_norm=false --new-name modern-no-qk"
	$(CLI) sweep ab $(REF) $(NEW) --seeds $(SEEDS) $(ARGS)

ablation: $(STAMP)  ## add-one / remove-one component runs between retro and modern, then attribution
	$(CLI) sweep ablation --ref $(REF) --new $(NEW) $(ARGS)

scaling: $(STAMP)  ## REF and NEW over the size ladder, scaling fits and compute dependence
	$(CLI) sweep scaling --recipes $(REF) $(NEW) $(ARGS)

benchmark: $(STAMP)  ## print training throughput (tokens/s, FLOP/s) of recipes on this machine
	$(CLI) benchmark $(ARGS)

verify: $(STAMP)  ## re-run a seed of a board entry and mark it verified: make verify ENTRY=modern
	$(CLI) verify $(ENTRY) $(ARGS)

sample: $(STAMP)  ## generate text from a run's checkpoint: make sample RUN=runs/<id> ARGS="--prompt 'In the'"
	$(CLI) sample $(RUN) $(ARGS)

export: $(STAMP)  ## export a run's weights: make export RUN=runs/<id> FORMAT=hf OUT=export/
	$(CLI) export $(RUN) --format $(FORMAT) --out $(OUT) $(ARGS)

study: $(STAMP)  ## run a study and write its report: make study NAME=sanderson QUICK=1
	$(CLI) study $(NAME) $(if $(QUICK),--quick) $(ARGS)

main: $(STAMP)  ## the main job: retro vs modern on the CPU track, their CEG, and the board
	$(CLI) main $(ARGS)

gpu-check:  ## the GPU check, one table in gpu-check/summary.md: DEVICE=cpu runs it at tiny sizes, WHEELS=.whl installs carried wheels
	$(GPU_PY) scripts/gpu_check.py --device $(DEVICE) --out $(GPU_OUT) $(if $(WHEELS),--wheels $(WHEELS))

gpu-wheels: $(STAMP)  ## download into .whl/ the wheels a GPU machine without network needs for gpu-check
	PY=$(PY) scripts/gpu_wheels.sh

slurm-up:  ## start a one-node SLURM cluster on this host (root; apt installs slurm-wlm and munge)
	scripts/slurm-up.sh

clean:  ## remove runs and caches (keeps .venv)
	rm -rf runs .cache .pytest_cache .ruff_cache .import_linter_cache .grimp_cache
