# Two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APP_STAMP := $(VENV)/.app-installed
DEV_STAMP := $(VENV)/.dev-installed
PORT ?= 8501

.PHONY: run test setup lint format bench screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(APP_STAMP): requirements.txt | $(PY)
	@echo "==> installing app packages into $(VENV)"
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt $(APP_STAMP)
	@echo "==> installing test packages into $(VENV)"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

setup: $(APP_STAMP)
	$(PY) -m core setup

run: setup
	$(PY) -m streamlit run app.py --server.address localhost --server.port $(PORT)

test: $(DEV_STAMP)
	$(PY) -m pytest
	@if [ -n "$$LIKELY_TEST_POSTGRES" ]; then \
		echo "==> the suite again, every database on PostgreSQL ($$LIKELY_TEST_POSTGRES)"; \
		$(PY) -m pytest -m "not browser"; \
	else \
		echo "==> LIKELY_TEST_POSTGRES is not set: the PostgreSQL run is skipped (.ci/run sets it)"; \
	fi
	$(PY) -m ruff check .

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(DEV_STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
