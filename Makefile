# Two commands do all the set-up on a fresh Debian machine (as root): `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test bench acceptance setup clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/mallsense demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --benchmark-disable -m "not acceptance"

# Issue-level accuracy against simulated ground truth over a busy hour (minutes of CPU).
acceptance: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -s -m acceptance

bench: $(STAMP)
	$(BIN)/python -m pytest -q tests/benchmarks --benchmark-enable

clean:
	rm -rf $(VENV) out .pytest_cache
