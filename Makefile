# Every target runs in .venv, built from the lock: requirements/lock.txt (exact versions of every
# dependency, transitive ones included) and requirements/peers-nodeps.txt (the verl, OpenRLHF and
# unsloth_zoo releases, installed without their CUDA-only dependencies). The venv is rebuilt from scratch
# whenever the lock or pyproject.toml changes, so it never carries a stale package.
#
#   make verify        set up, then run every claim (grpo-proofs verify, one worker per core)
#   make test          set up, then the whole test suite (what CI runs)
#   make book          set up, then build the executed Jupyter Book into book/_build/html
#   make bench         set up, then every speed and memory figure with its goal (benchmarks/all.py)
#   make lock          re-resolve the lock from pyproject.toml's ranges (needs the registry)
#   make test-latest   the same suite in .venv-latest, built from the newest releases allowed
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt
NODEPS := requirements/peers-nodeps.txt
LATEST := .venv-latest
PIP_QUIET := --quiet --quiet --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: verify test book clean-book bench lock test-latest

$(STAMP): $(LOCK) $(NODEPS) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r $(LOCK)
	$(PY) -m pip install $(PIP_QUIET) --no-deps --require-hashes -r $(NODEPS)
	$(PY) -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	touch $(STAMP)

verify: $(STAMP)
	$(VENV)/bin/grpo-proofs verify

# two or more workers (pytest-xdist, one per core), each test file on one worker so a file's
# fixtures are built once; the book build (one test) runs beside the rest of the suite
PYTEST_PARALLEL := -n auto --dist loadfile

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_PARALLEL)

bench: $(STAMP)
	$(PY) benchmarks/all.py

# every page is executed on every build (--all re-reads unchanged pages); HTML in book/_build/html.
# IPYTHONDIR: the page kernel's own settings (book/_ipython), so its start-up log stays quiet.
book: $(STAMP)
	IPYTHONDIR=$(CURDIR)/book/_ipython $(VENV)/bin/jupyter-book build book --all -W -n --keep-going

clean-book:
	rm -rf book/_build

# Refresh the lock: the newest releases that pyproject.toml's ranges and requirements/pins.in allow.
# The local-version suffix of the CPU torch wheel (+cpu) is dropped, so the pin also matches PyPI.
# `make lock LOCK_UPGRADE=` adds what pyproject.toml gained and keeps every other pin as it is.
LOCK_UPGRADE ?= --upgrade
lock:
	test -x .venv-lock/bin/pip-compile || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install $(PIP_QUIET) pip-tools; }
	.venv-lock/bin/pip-compile --quiet $(LOCK_UPGRADE) --strip-extras --extra test --extra book --extra peers \
	    --no-emit-index-url --no-emit-find-links -o $(LOCK) pyproject.toml requirements/pins.in
	sed -i -E 's/^(torch==[0-9.]+)\+cpu$$/\1/' $(LOCK)

# The same suite against the newest releases the registry serves (torch stays the pinned CPU wheel,
# verl, OpenRLHF and unsloth_zoo stay the releases the project models): an upstream deprecation shows up here first.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install $(PIP_QUIET) torch==2.13.0
	$(LATEST)/bin/pip install $(PIP_QUIET) -e ".[test,book,peers]"
	$(LATEST)/bin/pip install $(PIP_QUIET) --no-deps --require-hashes -r $(NODEPS)
	$(LATEST)/bin/pip freeze --exclude-editable > $(LATEST)/freeze.txt
	$(LATEST)/bin/python -m pytest $(PYTEST_PARALLEL)
