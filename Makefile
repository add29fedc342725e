# Two commands: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APP_STAMP := $(VENV)/.app-installed
DEV_STAMP := $(VENV)/.dev-installed
# The real public purchase log (CDNOW) that tests/test_backtest.py checks predictions on: it ships
# inside a PyPI wheel, fetched once; without it (offline) those tests skip and say so.
CDNOW_WHEEL := $(VENV)/datasets/Lifetimes-0.11.3-py3-none-any.whl
PORT ?= 8501

.PHONY: run test setup lint format bench screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(APP_STAMP): requirements.txt | $(PY)
	@echo "==> installing app packages into $(VENV) (about 1.5 minutes the first time)"
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt $(APP_STAMP)
	@echo "==> installing test packages into $(VENV)"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(CDNOW_WHEEL): | $(PY)
	-$(PY) -m pip download --quiet --no-deps lifetimes==0.11.3 -d $(VENV)/datasets

setup: $(APP_STAMP)
	$(PY) -m core setup

# The app and the campaign worker together; Ctrl-C stops both.
run: setup
	$(PY) -m core serve --address localhost --port $(PORT)

test: $(DEV_STAMP) $(CDNOW_WHEEL)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		echo "==> Chromium is not installed: the browser journeys are skipped (apt-get install chromium; .ci/run does)"
	@# The first pass is SQLite: the tests pick PostgreSQL whenever LIKELY_TEST_POSTGRES is set
	@# (.ci/run exports it), and no test may reach whatever database DATABASE_URL names.
	env -u LIKELY_TEST_POSTGRES -u DATABASE_URL $(PY) -m pytest
	@if [ -n "$$LIKELY_TEST_POSTGRES" ]; then \
		echo "==> the suite again, every database on PostgreSQL ($$LIKELY_TEST_POSTGRES)"; \
		env -u DATABASE_URL $(PY) -m pytest -m "not browser"; \
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

# Refresh the README's images: the browser journeys save them while they run.
screenshots: $(DEV_STAMP)
	LIKELY_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/browser/test_prediction_journey.py tests/browser/test_lapsed_users_journey.py tests/browser/test_layout_widths.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
