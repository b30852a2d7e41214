# Two commands are all a new machine needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: run test lint deps bench

deps: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

run: deps
	$(PY) -m tools.run

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

test: lint
	$(PY) -m pytest

bench: deps
	$(PY) -m bench.upload

# The browser test's headless Chromium (Debian's chromium, chromium-driver): installed when missing
# and we are root, as on CI; otherwise tools/chromium.py says how, and the test skips locally.
.PHONY: browser
test: browser
browser: deps
	$(PY) -m tools.chromium
