# catalogmark — `make demo` runs the pipeline on sample_images/, `make test` runs lint, types and the test suite.
# Needs only Python 3.11+ and make; everything else is installed into .venv from pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := demo-out

.PHONY: setup demo test lint typecheck check bench robustness bench-trace false-positives sysdeps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "catalogmark needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(STAMP)

# System tools used as independent readers by the tests: exiftool (metadata) and chromium (HTML rendering).
sysdeps:
	@bash scripts/ensure-sysdeps.sh

demo: setup
	@mkdir -p $(DEMO)
	@test -f $(DEMO)/demo.key || $(BIN)/catalogmark keygen --key-file $(DEMO)/demo.key
	$(BIN)/catalogmark run sample_images --preset amazon --preset shopify --preset ebay \
		--out $(DEMO) --ledger $(DEMO)/ledger.sqlite --key-file $(DEMO)/demo.key \
		--config demo/catalogmark.toml --report $(DEMO)/report.html
	$(BIN)/catalogmark ledger verify --ledger $(DEMO)/ledger.sqlite
	@echo
	@echo "outputs: $(DEMO)/<preset>/   ledger: $(DEMO)/ledger.sqlite   report: $(DEMO)/report.html"
	@echo "try:     $(BIN)/catalogmark verify --key-file $(DEMO)/demo.key $(DEMO)/amazon/*.jpg"
	@echo "         $(BIN)/catalogmark trace --ledger $(DEMO)/ledger.sqlite --key-file $(DEMO)/demo.key \\"
	@echo "             --config demo/catalogmark.toml $(DEMO)/ebay --report $(DEMO)/evidence.html"

# The README's test command: lint, types and the whole suite (CI runs exactly this).
test: setup sysdeps lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: setup
	$(BIN)/ruff check pipeline tests bench tools

typecheck: setup
	$(BIN)/mypy

check: test

bench: setup
	$(BIN)/python bench/pipeline_bench.py

# The attack suites (in-house and AugLy) against the invisible mark and trace; ROBUSTNESS_ARGS is passed on
# (e.g. ROBUSTNESS_ARGS="--quick --jobs 2"). AugLy's python-magic needs the system's libmagic (libmagic1).
ROBUSTNESS_ARGS ?=
robustness: setup
	$(BIN)/python -m pip install -q -c constraints.txt -r bench/requirements-robustness.txt
	$(BIN)/python -m pip install -q --no-deps invisible-watermark==0.2.0
	$(BIN)/python bench/robustness.py $(ROBUSTNESS_ARGS)

bench-trace: setup
	$(BIN)/python bench/trace_bench.py

false-positives: setup
	$(BIN)/python bench/false_positives.py $(FP_ARGS)

clean:
	rm -rf $(DEMO) bench-out .pytest_cache .mypy_cache .ruff_cache
