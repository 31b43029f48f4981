# Quick start: `make demo` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: all venv test test-all demo demo-debug bench clean-venv lint

all: test

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
	# setuptools<81: pyworld 0.3.5 imports pkg_resources, removed in setuptools 81.
	$(PIP) install --quiet torch==2.13.0 "setuptools<81" wheel
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# Fast default set (what CI runs); slow tests are marked and skipped here.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-all: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

# The embedded mini recipe end to end: data prep, features, training of a speech and a
# music model, synthesis, evaluation against WORLD copy-synthesis, HTML report.
demo: $(STAMP)
	cd egs/mini/voc1 && ./run.sh

# The same recipe with tiny debug configs (a minute or two; what CI runs).
demo-debug: $(STAMP)
	cd egs/mini/voc1 && ./run.sh --debug true

bench: $(STAMP)
	$(PY) benchmarks/synth_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/world_synth.py
	$(PY) benchmarks/extract_speed.py

lint:
	shellcheck -x recipes/utils/*.sh recipes/templates/*.sh
	set -e; for f in egs/*/*/run.sh egs/*/local/*.sh; do (cd $$(dirname $$f) && shellcheck -x $$(basename $$f)); done

clean-venv:
	rm -rf $(VENV)
