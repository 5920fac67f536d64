# One-command entry points. `make run` and `make test` install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PORT ?= 8501
# Local only unless you say otherwise: the server process holds your API token (README, Security).
STREAMLIT_SERVER_ADDRESS ?= localhost

.PHONY: install install-runtime run test lint bench chromium emulator clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamps make a second `make install` a no-op until a requirements file changes.
# The editable install puts `cfai` (and its `cfai` command) on the venv's path from any directory.
$(RUNTIME_STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(RUNTIME_STAMP) $@

install-runtime: $(RUNTIME_STAMP)
install: $(DEV_STAMP)

run: $(RUNTIME_STAMP)
	$(VENV)/bin/streamlit run app.py --server.address $(STREAMLIT_SERVER_ADDRESS) --server.port $(PORT) \
		--browser.gatherUsageStats false

emulator: $(RUNTIME_STAMP)
	$(PY) -m cfai.emulator

# Browser tests use Debian's Chromium (Playwright's own download cannot work offline).
chromium:
	@if [ -n "$$CHROMIUM_PATH" ] && [ -x "$$CHROMIUM_PATH" ]; then exit 0; fi; \
	if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "chromium is missing: run 'sudo apt-get install chromium' (browser tests need it)" >&2; exit 1; \
	fi

# ruff, then mypy over cfai/ (its files and settings are in pyproject.toml).
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(DEV_STAMP) chromium lint
	$(PY) -m pytest

bench: $(DEV_STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
