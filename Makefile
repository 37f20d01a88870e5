# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
# uv from PATH, else as a module of the machine's Python (installed from PyPI on first use).
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PY_SRC := src connectors

.PHONY: demo test check lint typecheck unit slow bench install clean browser

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

# Both cores: the suite in two processes (pytest-xdist), then the timing-bound tests alone (several
# worker processes against tick deadlines: tests/scheduling), so they never share the CPU with it.
unit: install
	$(UV) run --frozen pytest -q -m "not slow and not serial" -n 2
	$(UV) run --frozen pytest -q -m "serial and not slow"

# The report's browser test needs a real Chromium and CJK fonts (Japanese names): installed with
# apt-get on Debian/Ubuntu when missing (as root, else through sudo); nothing happens when present.
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser:
	@if { command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 \
	    && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(BROWSER_PACKAGES) for the report's browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); \
	else echo "no apt-get: install Chromium and Noto CJK fonts yourself, or the browser test skips"; fi

test: browser check unit

slow: install
	$(UV) run --frozen pytest -q -m slow

bench: install
	$(UV) run --frozen python -m bench.bench_rules
	$(UV) run --frozen python -m bench.bench_hubspot
	$(UV) run --frozen python -m bench.bench_salesforce
	$(UV) run --frozen python -m bench.bench_zoho
	$(UV) run --frozen python -m bench.bench_scheduler
	$(UV) run --frozen python -m bench.bench_startup
	$(UV) run --frozen python -m bench.bench_report
	$(UV) run --frozen python -m bench.bench_usage

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
