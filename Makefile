# Two commands matter (README): `make demo` and `make test`. Both build .venv from the lock when
# missing or stale, and nothing else by hand. Every target exports the Keras/TF settings the TFX
# 1.16 stack needs before Python starts (see docs/design.md, "Why the stack is pinned").
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 1
export PYTHONWARNINGS := ignore::FutureWarning,ignore::DeprecationWarning

VENV       := .venv
PY         := $(VENV)/bin/python
INSTALLED  := $(VENV)/.installed
OUTPUT_ROOT ?= $(CURDIR)/out
DEMO_DATA  ?= $(OUTPUT_ROOT)/demo-data
DEMO_N     ?= 3000
PYTEST_ARGS ?=

TFX        := $(CURDIR)/$(VENV)/bin/tfx
PIPELINE_NAME ?= deep-emotion
# The tfx CLI keeps its pipeline registry here (its default is ~/tfx/beam).
export BEAM_HOME ?= $(OUTPUT_ROOT)/tfx-beam-home

.PHONY: help demo test kfp-dry-run venv bench demo-data pipeline-run schema-candidate clean

help:
	@echo "make demo   - set up .venv, generate the demo data and run the pipeline on it"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make kfp-dry-run - the compiled Kubeflow pipeline, three scheduled runs through deep-emotion kfp run-local"
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
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.2" "setuptools==70.3.0" "wheel==0.44.0"
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	$(PY) -m pip check
	@touch $@
	@echo "Environment ready: $(VENV)"

venv: $(INSTALLED)

# The Kubeflow dry run (three scheduled runs of the compiled pipeline through `deep-emotion kfp
# run-local`, ~6 min on 2 cores) has its own target, which .ci/run runs after this one.
test: $(INSTALLED)
	$(PY) -m pytest -m "not kfp_dry_run" $(PYTEST_ARGS)

# Prints each run's task table: time and peak memory per task, wall time and peak memory of the run.
kfp-dry-run: $(INSTALLED)
	$(PY) -m pytest -m kfp_dry_run -s tests/e2e/test_kfp_run_local.py $(PYTEST_ARGS)

# Generated once: rewriting identical files would change their mtimes and defeat the pipeline cache.
demo-data: $(OUTPUT_ROOT)/.demo-data-$(DEMO_N).complete
$(OUTPUT_ROOT)/.demo-data-$(DEMO_N).complete: | $(INSTALLED)
	$(VENV)/bin/deep-emotion demo-data --out $(DEMO_DATA) --n $(DEMO_N) --seed 0
	@touch $@

# The main job, as users run it: the tfx CLI with the beam engine (never --engine auto: with kfp
# installed it picks the Kubeflow handler). Settings travel as DEEP_EMOTION_* variables.
pipeline-run: $(INSTALLED)
	@if [ -d "$(BEAM_HOME)/$(PIPELINE_NAME)" ]; then verb=update; else verb=create; fi; \
	echo "tfx pipeline $$verb (registry: $(BEAM_HOME))"; \
	$(TFX) pipeline $$verb --engine beam --pipeline_path $(CURDIR)/runners/beam_runner.py
	$(TFX) run create --engine beam --pipeline_name $(PIPELINE_NAME)
	$(VENV)/bin/deep-emotion summary $(SUMMARY_ARGS)

demo: export DEEP_EMOTION_PIPELINE_NAME = $(PIPELINE_NAME)
demo: export DEEP_EMOTION_PROFILE = demo
demo: export DEEP_EMOTION_DATA_ROOT = $(DEMO_DATA)
demo: export DEEP_EMOTION_OUTPUT_ROOT = $(OUTPUT_ROOT)
demo: SUMMARY_ARGS = --min-test-accuracy 0.9
demo: demo-data
	@$(MAKE) --no-print-directory pipeline-run SUMMARY_ARGS="$(SUMMARY_ARGS)"
	$(VENV)/bin/deep-emotion report --out $(OUTPUT_ROOT)/report.html

# The schema the latest run's SchemaGen inferred, beside the curated one, for a maintainer to review
# before editing schema/schema.pbtxt (`tfx pipeline schema --engine beam` gives the raw file too).
schema-candidate: $(INSTALLED)
	$(VENV)/bin/deep-emotion schema-candidate

bench: $(INSTALLED)
	$(PY) -m bench

clean:
	rm -rf $(OUTPUT_ROOT) .pytest_cache
