# Two commands do all set-up on a fresh machine:
#   make up     install into .venv, then run the main job on embedded defaults
#   make test   install into .venv, then run lint, type check and the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export YDATA_PROFILING_NO_ANALYTICS := 1

.PHONY: install up test lint typecheck pytest bench clean browser haproxy labelstudio

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "AutoInspect needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/autoinspect up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

# The UI's browser test drives the system Chromium (Playwright cannot download its own browser here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The load-balancer test runs deploy/haproxy/haproxy.cfg with Debian's HAProxy.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq haproxy >/dev/null; }

# Label Studio gets its own virtual environment: its Django stack pins versions that must not meet ours. The
# round-trip test starts it on loopback. (label-studio 1.23.2 calls sentry_sdk.init with an option sentry-sdk 3 removed.)
LABELSTUDIO := .venv-labelstudio
$(LABELSTUDIO)/.installed:
	test -x $(LABELSTUDIO)/bin/python || $(PYTHON) -m venv $(LABELSTUDIO)
	$(LABELSTUDIO)/bin/python -m pip install --quiet 'label-studio==1.23.2' 'sentry-sdk<3'
	touch $@

labelstudio: $(LABELSTUDIO)/.installed

# Two pytest workers: the long tests mostly wait on servers and subprocesses, so two overlap well on 2 cores.
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
pytest: $(STAMP) browser haproxy labelstudio
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/validate_speed.py

clean:
	rm -rf $(VENV) $(LABELSTUDIO) .autoinspect .pytest_cache .mypy_cache .ruff_cache
