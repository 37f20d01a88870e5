# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY_SRC := src connectors

.PHONY: demo test check lint typecheck unit slow bench install clean

$(UV):
	@echo "uv not found: installing it from PyPI into ~/.local"
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --user --break-system-packages uv

.venv/.installed: $(UV) pyproject.toml uv.lock connectors/*/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.installed

demo: install
	$(UV) run --frozen crm-upsell demo

lint: install
	$(UV) run --frozen ruff check $(PY_SRC) tests bench
	$(UV) run --frozen ruff format --check $(PY_SRC) tests bench

typecheck: install
	$(UV) run --frozen mypy $(PY_SRC)

check: lint typecheck

unit: install
	$(UV) run --frozen pytest -q -m "not slow"

test: check unit

slow: install
	$(UV) run --frozen pytest -q -m slow

bench: install
	$(UV) run --frozen python -m bench.bench_rules
	$(UV) run --frozen python -m bench.bench_hubspot
	$(UV) run --frozen python -m bench.bench_salesforce
	$(UV) run --frozen python -m bench.bench_zoho

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
