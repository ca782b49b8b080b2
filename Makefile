# Two commands do everything: `make run` (set up, then train on the embedded digits data)
# and `make test` (set up, then run the whole test suite). Every recipe stops at the first error.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision releases that pip finds on this project's machines (CUDA build, runs on CPU).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
RUN_ARGS ?= --model vgg16 --width 0.25 --dataset digits --method ecs --density 0.05 --epochs 15 --step 10

.PHONY: setup run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/ecs run $(RUN_ARGS)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check ecs_core ecs_tui tests bench
	$(BIN)/ruff format --check ecs_core ecs_tui tests bench

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) runs
