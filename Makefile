# ssp-revenue: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-12)-pyc
UV_VERSION := 0.13.9
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include
export GX_ANALYTICS_ENABLED := False

.PHONY: bytecode bench-iceberg soak venv lock browser services demo test lint typecheck unit integration dags scheduler airflow bench down clean

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)
	# Exactly the lock: every transitive pin, nothing else left installed.
	# --compile-bytecode: this machine (and many CI images) set PYTHONDONTWRITEBYTECODE, so
	# without .pyc files every task process would recompile Airflow, GX and pandas (~6 s each).
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements-dev.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# The project's own modules compiled too (only what changed since the last time), for the same reason.
bytecode: venv
	@$(BIN)/python -m compileall -q -j 0 include plugins dags benchmarks >/dev/null

# Re-resolve every pin from requirements/*.in (AIRFLOW_CONSTRAINTS=<file> applies
# Airflow's official constraints for the pinned release on top).
lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q uv==$(UV_VERSION); }
	$(BIN)/uv pip compile -q requirements/runtime.in $(if $(AIRFLOW_CONSTRAINTS),-c $(AIRFLOW_CONSTRAINTS)) \
	  -o requirements.txt --python-version 3.11 --annotation-style line --custom-compile-command "make lock"
	$(BIN)/uv pip compile -q requirements/local-image.in $(if $(AIRFLOW_CONSTRAINTS),-c $(AIRFLOW_CONSTRAINTS)) \
	  -o requirements-local.txt --python-version 3.11 --annotation-style line --custom-compile-command "make lock"
	$(BIN)/uv pip compile -q requirements/dev.in $(if $(AIRFLOW_CONSTRAINTS),-c $(AIRFLOW_CONSTRAINTS)) \
	  -o requirements-dev.txt --python-version 3.11 --annotation-style line --custom-compile-command "make lock"

# Debian's Chromium renders the HTML report in the tests (and takes the README screenshot).
browser:
	@command -v chromium >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends chromium; }; }

# Debian's PostgreSQL and Redis for the production topology (`make airflow`, the scheduler tests).
services:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null; } || { \
	  export DEBIAN_FRONTEND=noninteractive; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q --no-install-recommends postgresql redis-server >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends postgresql redis-server; }; }

demo: venv bytecode
	$(BIN)/python -m ssp_revenue_airflow.demo

# Test processes side by side (pytest-xdist), each with a stack of its own; the
# production-topology tests keep to one of them. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3

test: venv bytecode browser services lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=15 tests

lint: venv
	$(BIN)/ruff check include plugins dags tests benchmarks
	$(BIN)/bandit -q -c pyproject.toml -r include plugins dags

typecheck: venv
	$(BIN)/mypy include/ssp_revenue include/ssp_emulator plugins/ssp_revenue_airflow dags

unit: venv bytecode
	$(BIN)/pytest -q tests/unit

integration: venv bytecode
	$(BIN)/pytest -q tests/integration

dags: venv bytecode
	$(BIN)/pytest -q tests/dags

scheduler: venv bytecode services
	$(BIN)/pytest -q tests/scheduler

# The production topology on this machine: PostgreSQL, Redis, api-server, scheduler,
# dag-processor, triggerer and a Celery worker, all on 127.0.0.1 (stopped by `make down`).
airflow: venv bytecode services
	$(BIN)/python -m ssp_revenue_airflow.topology up

bench: venv bytecode
	$(BIN)/python -m benchmarks $(ARGS)

# The table-format spike (Iceberg through PyIceberg + Glue vs the Hive switch), in its own venv.
bench-iceberg:
	test -x .venv-iceberg/bin/python || $(PYTHON) -m venv .venv-iceberg
	.venv-iceberg/bin/pip install -q uv==$(UV_VERSION)
	.venv-iceberg/bin/uv pip sync -q --python .venv-iceberg/bin/python requirements-dev.txt
	.venv-iceberg/bin/uv pip install -q --python .venv-iceberg/bin/python -r benchmarks/requirements-iceberg.txt
	.venv-iceberg/bin/uv pip install -q --python .venv-iceberg/bin/python --no-deps -e .
	.venv-iceberg/bin/python -m benchmarks.iceberg_spike

# The random-fault replay of tests/reliability/test_convergence.py for 30 days with
# production windows (refetch 7, adjustments 45); `make test` runs 4 days.
soak: venv
	SSP_REVENUE_SOAK_DAYS=30 $(BIN)/pytest -q -s -p no:cacheprovider --timeout 7200 \
		tests/reliability/test_convergence.py -k hiccups

down: venv
	$(BIN)/python -m ssp_revenue_airflow.topology down
	$(BIN)/ssp-revenue stack down

clean: down
	rm -rf .local
