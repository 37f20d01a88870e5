# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
# uv from PATH, else as a module of the machine's Python (installed from PyPI on first use).
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY_SRC := src connectors

.PHONY: demo test check lint typecheck unit slow bench install clean

.venv/.installed: pyproject.toml uv.lock connectors/*/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || { echo "uv not found: installing it from PyPI"; \
	  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --user --break-system-packages uv; }
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
	$(UV) run --frozen python -m bench.bench_scheduler
	$(UV) run --frozen python -m bench.bench_startup

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
