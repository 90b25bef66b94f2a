# RadioCore build and test plumbing (GNU make).
#
#   make demo    run the server with an embedded default (SQLite, one node, simulated station)
#   make test    install what the tests need, then ruff, mypy --strict, tsc --checkJs, pytest
#
# Variables: VENV, PYTHON, PYTEST_ARGS, DEMO_ARGS, BENCH_ARGS.

VENV ?= .venv
PY = $(VENV)/bin/python
# python3.11 if present, else python3; the venv recipe checks the version.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)

PYTEST_ARGS ?=
DEMO_ARGS ?= --host 127.0.0.1 --port 8080 --data-dir .demo
BENCH_ARGS ?= --listeners 100 --seconds 20 --json

VENV_STAMP = $(VENV)/.stamp
# the compiled forwarding lane (media/_lane.c; media/lane.py has the pure-Python fallback)
# (named by the interpreter the venv is made with: the venv may not exist yet)
LANE_EXT = media/_lane$(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
NODE_STAMP = node_modules/.stamp
WEB_BUNDLE = web/dist/console.js
# Everything under web/ except the build output: a change rebuilds the bundle.
WEB_SOURCES = $(shell find web -path web/dist -prune -o -type f ! -name '*.pyc' -print 2>/dev/null)

# Steps depend on each other's side effects (packages before venv, venv before lint): keep order.
.NOTPARALLEL:
.DEFAULT_GOAL := help

.PHONY: help venv web system-packages lint typecheck test demo bench clean

help:
	@echo "make demo             run the server on an embedded default (SQLite, simulated station)"
	@echo "make test             system packages, venv, web bundle, ruff, mypy, pytest"
	@echo "make venv | web | system-packages | lint | typecheck | bench | clean"

venv: $(VENV_STAMP) $(LANE_EXT)

$(VENV_STAMP): setup.cfg pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: no python3 found; RadioCore needs Python >= 3.11" >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); RadioCore needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[server,agent,test]'
	@touch $@

# pip builds it too; this rebuilds it in place when the C source changes (and fails loudly if it
# cannot: make test requires the compiled lane, tests/media/test_lane.py)
$(LANE_EXT): media/_lane.c setup.py $(VENV_STAMP)
	$(PY) setup.py --quiet build_ext --inplace
	@test -f $@ || { echo "error: the compiled lane $@ was not built" >&2; exit 1; }

web: $(WEB_BUNDLE)

$(NODE_STAMP): package-lock.json package.json
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

$(WEB_BUNDLE): $(NODE_STAMP) $(WEB_SOURCES)
	npm run build
	@test -f $@ || { echo "error: npm run build did not produce $@" >&2; exit 1; }
	@touch $@

system-packages:
	PYTHON="$(PYTHON)" bash deploy/install-system-packages.sh

lint: venv web
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	npm test --silent
	npm run typecheck --silent

typecheck: venv
	$(VENV)/bin/mypy

test: system-packages venv web lint typecheck
	# a component that cannot start fails its tests here (tests/support/components.py)
	# the system tests (two groups) and the rest side by side (tests/run.sh); PYTEST_ARGS: one pytest
	TESTS_REQUIRE_COMPONENTS=1 PY=$(PY) bash tests/run.sh $(PYTEST_ARGS)

demo: venv web
	$(VENV)/bin/radiocore demo $(DEMO_ARGS)

bench: venv
	$(VENV)/bin/radiocore bench sfu $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules web/dist build *.egg-info .mypy_cache .ruff_cache .pytest_cache .demo
	rm -f media/_lane*.so
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
