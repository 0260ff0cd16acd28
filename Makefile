# arrears: `make demo` and `make test` do all their own set-up (idempotent, cached).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

find_python = $(shell for c in python$(1) $$HOME/.pyenv/versions/$(1)*/bin/python$(1) /usr/bin/python$(1) /usr/local/bin/python$(1); do $$c -c 'import sys' >/dev/null 2>&1 && { echo $$c; break; }; done)
PY311 ?= $(call find_python,3.11)
PY310 ?= $(call find_python,3.10)

APP_HASH  := $(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
RASA_HASH := $(shell sha256sum dialogues/rasa-constraints.txt | cut -c1-16)
APP_STAMP  := .venv/.installed-$(APP_HASH)
RASA_STAMP := .venv-rasa/.installed-$(RASA_HASH)
PIP_QUIET  := 2>&1 | { grep -v '^WARNING: Location' || true; }

.PHONY: help setup model demo test lint bench lock clean nlu-eval

help:
	@echo "make demo   set up, train if needed, seed, start everything, print the URLs"
	@echo "make test   set up, train if needed, run the test suite"
	@echo "make model  train the Rasa model if dialogues/ changed"
	@echo "make bench  benchmarks, each with its figure and target"
	@echo "make lint   ruff + mypy"

$(APP_STAMP): requirements.lock pyproject.toml
	@test -n "$(PY311)" || { echo "python3.11 not found"; exit 1; }
	@echo "== app environment (.venv, $(PY311))"
	rm -rf .venv
	$(PY311) -m venv .venv
	.venv/bin/pip install -q --upgrade pip $(PIP_QUIET)
	.venv/bin/pip install -q -r requirements.lock $(PIP_QUIET)
	.venv/bin/pip install -q --no-deps -e . $(PIP_QUIET)
	touch $@

$(RASA_STAMP): dialogues/rasa-constraints.txt
	@test -n "$(PY310)" || { echo "python3.10 not found (Rasa 3.6 needs Python <= 3.10)"; exit 1; }
	@echo "== rasa environment (.venv-rasa, $(PY310))"
	rm -rf .venv-rasa
	$(PY310) -m venv .venv-rasa
	.venv-rasa/bin/pip install -q --upgrade pip wheel 'setuptools<70' $(PIP_QUIET)
	.venv-rasa/bin/pip install -q rasa==3.6.21 -c dialogues/rasa-constraints.txt $(PIP_QUIET)
	touch $@

# Debian's chromium for the browser tests (Playwright's own download cannot work here).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@echo "== chromium (Debian package) and a CJK font for the Chinese pages"
	apt-get install -y -q chromium fonts-wqy-microhei >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; }

# Chinese text renders as boxes in Chromium without a CJK font (~1.6 MB download).
CJK_FONT ?= /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
$(CJK_FONT):
	@echo "== CJK font (Debian fonts-wqy-microhei)"
	apt-get install -y -q fonts-wqy-microhei >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q fonts-wqy-microhei >/dev/null; }

setup: $(APP_STAMP) $(RASA_STAMP)

model: setup
	.venv/bin/arrears model

demo: model
	.venv/bin/arrears demo

test: model $(CHROMIUM) $(CJK_FONT)
	.venv/bin/pytest

bench: setup
	.venv/bin/arrears bench

# Cross-validation F1 per intent, then ../shared/eval/external_nlu.tsv per language.
nlu-eval: model
	.venv/bin/arrears nlu eval

lint: setup
	.venv/bin/ruff check bot channels scheduler dialogues tests
	.venv/bin/mypy bot channels scheduler

# Regenerate the app lock from a fresh resolve of pyproject's dependencies.
lock:
	rm -rf /tmp/arrears-lock && $(PY311) -m venv /tmp/arrears-lock
	/tmp/arrears-lock/bin/pip install -q '.[test]' $(PIP_QUIET)
	{ echo "# App environment (Python 3.11), fully pinned. Regenerate: make lock"; \
	  /tmp/arrears-lock/bin/pip freeze --exclude arrears; } > requirements.lock

clean:
	rm -rf .venv .venv-rasa models
