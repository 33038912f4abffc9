# Entry points of the artifact. `make test` and `make repro` work on a fresh clone: both set up
# the virtual environment in .venv first when it is missing or older than pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# DVC runs stage commands through /bin/sh with the caller's PATH: the venv must be on it, or
# `papermill: not found`.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup test rehearsal repro bench lab paper-config study-config default-config weights plan gpu-smoke gpu-hour gpu-wheels paper-parallel study-bandai infer

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v 'is ignored' || true
	set -o pipefail; $(PY) -m pip install --quiet -e '.[dev]' 2>&1 | { grep -v 'is ignored' || true; }
	touch $@

## Tests run offline: HF_HUB_OFFLINE=1 makes a request for pretrained weights fail at once.
test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not rehearsal"

## The paper preset rehearsed at a CPU size: every variant, seed, suite, cross-domain set and figure of
## the paper through `dvc repro`, on small VideoPose3D-layout files (6 minutes idle; CI runs it after make test).
rehearsal: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m rehearsal tests/test_rehearsal.py

## The whole pipeline on the embedded default (synthetic data, small model, offline text tower).
repro: setup
	dvc repro

## Speed and memory figures of the model (printed, not asserted).
bench: setup
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m poseprompt.tools.bench

## params.yaml <- the default + a preset's overrides (src/poseprompt/assets/presets/), or the default.
## paper: Human3.6M, T=243, ViT-B-32 'openai' (GPUs); study: the longer CPU study (3 seeds, < 3 h).
paper-config: setup
	$(PY) -m poseprompt.config.presets use paper

study-config: setup
	$(PY) -m poseprompt.config.presets use study

default-config: setup
	$(PY) -m poseprompt.config.presets use default

## What the configuration in params.yaml will cost on this machine (needs the prepared data).
plan: setup
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m poseprompt.tools.plan $(if $(GPUS),--gpus $(GPUS))

## The paper architecture for 50 steps on a few frames: speed, memory, bf16 vs fp32, resume.
## On a GPU machine without a registry: `make gpu-wheels` here, then PYTHONPATH=src python3 -m poseprompt.tools.smoke
gpu-smoke: setup
	HF_HUB_OFFLINE=1 $(PY) -m poseprompt.tools.smoke --out reports/gpu-smoke

## The first GPU hour in one script (< 10 min on one GPU): smoke, steps/s of gatfun and full at the
## paper batch, peak memory, the plan of the whole paper; one JSON in reports/gpu-hour/gpu_hour.json.
gpu-hour: setup
	HF_HUB_OFFLINE=1 $(PY) -m poseprompt.tools.gpu_hour --out reports/gpu-hour $(if $(TINY),--tiny)

## Wheels that a GPU machine without a package registry lacks (open_clip and its text dependencies).
gpu-wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux2014_x86_64 --platform any -d .whl open_clip_torch==3.3.0 ftfy wcwidth

## Train and evaluate the variants concurrently, one per GPU, then the rest of the pipeline.
paper-parallel: setup
	dvc repro prepare && $(PY) -m poseprompt.tools.parallel $(if $(GPUS),--gpus $(GPUS)) && dvc repro

## The equal-budget study on real motion capture (../shared/data/bandai-1), in reports/study-bandai/;
## its results without the models are copied to metrics/study-bandai/ (tracked by git).
## EPOCHS=9 and SEEDS=0,1,2,3,4 (the README's table) change the preset's budget; EVALUATE_ONLY=1
## evaluates and audits the models of an earlier run again (same EPOCHS and SEEDS), training nothing;
## POOL=metrics/study-bandai pools the SEEDS of this run with those of that record (other seeds, same study).
study-bandai: setup
	HF_HUB_OFFLINE=1 $(PY) -m poseprompt.tools.study --folder $${BANDAI:-../shared/data/bandai-1/bvh} \
		--record metrics/study-bandai $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(EVALUATE_ONLY),--evaluate-only) $(if $(POOL),--pool $(POOL))

## Download the pretrained text-encoder weights of the paper configuration (needs internet) into
## the Hugging Face cache (~/.cache/huggingface; copy it to an offline machine).
weights: setup
	$(PY) -c "import open_clip; open_clip.create_model('ViT-B-32', pretrained='openai', force_quick_gelu=True); print('ViT-B-32 openai weights cached')"

## JupyterLab on the notebooks, with the project's environment.
lab: setup
	$(VENV)/bin/jupyter lab notebooks/

## 3D poses from your own video's 2D keypoints (README, "Your own video"). KEYPOINTS (a COCO-17
## JSON, an OpenPose folder or a VideoPose3D npz) is required; CHECKPOINT defaults to the trained
## `full` model (models/full: its model.pt or seed*/model.pt), OUT to reports/infer; ARGS passes
## more options, e.g. ARGS='--width 1920 --height 1080 --fps 30 --text action=walk'.
CHECKPOINT ?= models/full
OUT ?= reports/infer
infer: setup
	@test -n "$(KEYPOINTS)" || { echo "usage: make infer KEYPOINTS=<file or folder> [CHECKPOINT=$(CHECKPOINT)] [OUT=$(OUT)] [ARGS='--width W --height H --fps F --text action=walk']" >&2; exit 2; }
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(PY) -m poseprompt.tools.infer "$(KEYPOINTS)" --checkpoint "$(CHECKPOINT)" --out "$(OUT)" $(ARGS)
