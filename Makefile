# The two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# Real recordings for the tests live beside the checkout (never copied in).
ifneq ($(wildcard ../shared/data),)
export TRADELAB_TEST_DATA ?= $(abspath ../shared/data)
endif

.PHONY: demo test test-fast pytest lint typecheck format bench install clean-store help lab nightly browser

help:
	@echo "make demo       run the end-to-end demo on a synthetic market (fresh store under .demo/)"
	@echo "make test       run the whole test suite (slow end-to-end checks included)"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make lab        JupyterLab on 127.0.0.1 in the project's venv, notebooks/ open (demo store by default)"
	@echo "make nightly    run configs/nightly.yaml (reports/index.html)"
	@echo "make browser    install Debian's chromium for the browser test (root + apt needed)"
	@echo "make bench      run the benchmarks (JSON on stdout)"
	@echo "make lint       ruff check (pyflakes, pycodestyle, isort, bugbear, pyupgrade rules)"
	@echo "make typecheck  mypy over tradelab/ and runners/"
	@echo "make format     apply ruff's automatic fixes (imports, upgrades)"
	@echo "make clean-store  delete the demo store (.demo/); CONFIRM=1 also empties data/parquet/"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tradelab demo

# The habits are part of the suite: lint and types first, then pytest.
test: lint typecheck pytest

pytest: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff check --fix .

# The demo's store is disposable; the default store holds what you collected, so it needs CONFIRM=1.
clean-store:
	rm -rf .demo
	@if [ "$(CONFIRM)" = "1" ]; then \
		find data/parquet -mindepth 1 ! -name .gitkeep -delete && echo "emptied data/parquet"; \
	else \
		echo "kept data/parquet (make clean-store CONFIRM=1 empties it)"; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/store.py
	$(PY) benchmarks/signals.py
	$(PY) benchmarks/collector.py
	$(PY) benchmarks/sweep.py
	$(PY) benchmarks/synth_zi.py
	$(PY) benchmarks/validate_pbo.py
	$(PY) benchmarks/venue.py
	$(PY) benchmarks/live.py
	$(PY) benchmarks/distributed.py

# JupyterLab on the loopback only, in the project's venv, opened on notebooks/. The notebooks'
# `store = None` resolves to $$TRADELAB_STORE, else the demo store (.demo/store, `make demo`).
LAB_PORT ?= 8888
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) --no-browser \
		--ServerApp.root_dir=$(CURDIR) notebooks/

nightly: $(STAMP)
	$(VENV)/bin/tradelab nightly --config configs/nightly.yaml

# The browser test needs a headless Chromium: Debian's package (the test installs it itself
# when it runs as root with apt reachable; this target does the same ahead of time).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }
