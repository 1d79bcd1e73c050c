# Two commands matter (README): `make demo` and `make test`. Both build .venv from the lock when
# missing or stale, and nothing else by hand. Every target exports the Keras/TF settings the TFX
# 1.16 stack needs before Python starts (see DESIGN.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONDONTWRITEBYTECODE := 1

VENV       := .venv
PY         := $(VENV)/bin/python
INSTALLED  := $(VENV)/.installed
OUTPUT_ROOT ?= $(CURDIR)/out
DEMO_DATA  ?= $(OUTPUT_ROOT)/demo-data
DEMO_N     ?= 3000
PYTEST_ARGS ?=

.PHONY: help demo test venv bench demo-data ingest clean

help:
	@echo "make demo   - set up .venv, generate the demo data and run the pipeline on it"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - benchmarks (slow; not part of make test)"

# A Python 3.10 interpreter: python3.10 on PATH if it really runs (a pyenv shim may not), else
# pyenv's 3.10.x. The TFX 1.16 wheels exist for 3.9-3.10 only.
$(PY):
	@py=""; \
	for cand in python3.10 $$(ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.10*/bin/python 2>/dev/null); do \
	  if "$$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then py="$$cand"; break; fi; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "error: Python 3.10 is required (TFX 1.16 ships no wheels for newer Pythons)." >&2; \
	  echo "       Install it (e.g. 'pyenv install 3.10' or 'apt install python3.10 python3.10-venv') and re-run." >&2; \
	  exit 1; \
	fi; \
	echo "Creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

# Reinstalls only when the lock or setup.py changed since the last install.
$(INSTALLED): requirements.lock setup.py | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.2" "setuptools<75" wheel
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	$(PY) -m pip check
	@touch $@
	@echo "Environment ready: $(VENV)"

venv: $(INSTALLED)

test: $(INSTALLED)
	$(PY) -m pytest $(PYTEST_ARGS)

demo-data: $(INSTALLED)
	$(VENV)/bin/deep-emotion demo-data --out $(DEMO_DATA) --n $(DEMO_N) --seed 0

demo: demo-data
	$(VENV)/bin/deep-emotion ingest --data-root $(DEMO_DATA) --out $(OUTPUT_ROOT)/demo-ingest

bench: $(INSTALLED)
	$(PY) -m bench

clean:
	rm -rf $(OUTPUT_ROOT) .pytest_cache
