# Two commands do everything on a fresh machine: `make verify` and `make test`.
# Both create .venv on first use; later runs reuse it (the stamp file tracks pyproject.toml).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: verify test book clean-book bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: pip takes the local CPU wheel instead of resolving GBs of CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

verify: $(STAMP)
	$(VENV)/bin/grpo-proofs verify

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/symbolic.py

# every page is executed on every build (--all re-reads unchanged pages); HTML in book/_build/html
book: $(STAMP)
	$(VENV)/bin/jupyter-book build book --all -W -n --keep-going

clean-book:
	rm -rf book/_build
