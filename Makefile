# Two commands are all a new machine needs: `make run` and `make test`.
# Python 3.13: `python3.13` on PATH, else the newest 3.13 that pyenv keeps (`make PYTHON=...` wins).
IS_313 := import sys; sys.exit(sys.version_info[:2] != (3, 13))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in "$$(command -v python3.13)" \
	$$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV); \
	do [ -n "$$p" ] && "$$p" -c '$(IS_313)' 2>/dev/null && echo "$$p" && break; done)
endif
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: run test lint deps bench

deps: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "make: Python 3.13 not found. Put python3.13 on PATH," \
		"install it with pyenv (pyenv install 3.13), or run make PYTHON=/path/to/python3.13" >&2; \
		exit 1; }
	$(PY) -c '$(IS_313)' 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
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
