# ssp-revenue: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include
export GX_ANALYTICS_ENABLED := False

.PHONY: venv browser demo test lint typecheck unit integration dags airflow bench down clean

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium renders the HTML report in the tests (and takes the README screenshot).
browser:
	@command -v chromium >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends chromium; }; }

demo: venv
	$(BIN)/python -m ssp_revenue_airflow.demo

test: venv browser lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider tests

lint: venv
	$(BIN)/ruff check include plugins dags tests benchmarks
	$(BIN)/bandit -q -c pyproject.toml -r include plugins dags

typecheck: venv
	$(BIN)/mypy include/ssp_revenue plugins/ssp_revenue_airflow dags

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv
	$(BIN)/pytest -q tests/integration

dags: venv
	$(BIN)/pytest -q tests/dags

airflow: venv
	$(BIN)/python -m ssp_revenue_airflow.demo --standalone

bench: venv
	$(BIN)/python -m benchmarks

down: venv
	$(BIN)/ssp-revenue stack down

clean: down
	rm -rf .local
