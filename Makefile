# Quick start: `make demo` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: all venv test test-all demo bench clean-venv lint

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

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash demo.sh

bench: $(STAMP)
	$(PY) benchmarks/synth_speed.py

lint:
	shellcheck -x recipes/*.sh egs/*/*/*.sh egs/*/*/local/*.sh

clean-venv:
	rm -rf $(VENV)
