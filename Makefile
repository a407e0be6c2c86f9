# kefu: the Makefile is the interface. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
RASA := $(BIN)/rasa
MODEL := models/kefu.tar.gz
SETUP_STAMP := $(VENV)/.setup-done
# Inputs of the model: training runs again only when one of these changed.
MODEL_INPUTS := config.yml domain.yml policy/faq.yml policy/shorthand.yml kefu/domain/script.py kefu/rasa/escalation_policy.py kefu/rasa/ted_policy.py \
  kefu/domain/char_linear.py $(shell find data kefu/rasa/nlu -type f \( -name '*.yml' -o -name '*.txt' -o -name '*.py' \) 2>/dev/null)

export TF_CPP_MIN_LOG_LEVEL := 3
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: help setup train run run-scaled test test-fast screenshots doctor validate lint eval bench bench-nlu soak clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(SETUP_STAMP): scripts/setup.sh pyproject.toml requirements.txt requirements-dev.txt constraints.txt
	@scripts/setup.sh
	@touch $@

setup: $(SETUP_STAMP) ## create .venv with Python 3.10 and install pinned dependencies (idempotent)

$(MODEL): $(MODEL_INPUTS) | $(SETUP_STAMP)
	@mkdir -p models
	@start=$$(date +%s); \
	if ! $(RASA) train --fixed-model-name kefu --out models --quiet; then \
	  rm -f $@; echo "train: failed (no model kept)" >&2; exit 1; fi; \
	touch $@; echo "train: $$(( $$(date +%s) - start ))s"

train: $(MODEL) ## train the model (skipped when nothing changed)

run: $(MODEL) ## Rasa (5005), actions (5055), demo orders (8090), desk (8080) on 127.0.0.1; Ctrl-C stops all
	@mkdir -p var
	@$(BIN)/kefu run

run-scaled: $(MODEL) ## 2 Rasa, 2 action servers, 2 desks on PostgreSQL and Redis, front on 8080
	@mkdir -p var
	@$(BIN)/kefu run-scaled

validate: $(SETUP_STAMP) ## rasa data validate (failing on warnings) and kefu phrasing lint
	@$(RASA) data validate --fail-on-warnings --quiet
	@$(BIN)/kefu phrasing lint

lint: $(SETUP_STAMP) ## ruff (rules and formatting) and mypy
	@$(BIN)/ruff check kefu actions tests
	@$(BIN)/ruff format --check --quiet kefu actions tests
	@$(BIN)/mypy

test: $(MODEL) ## everything: lint, validate, pytest, dialogue test stories
	@$(MAKE) --no-print-directory lint validate
	@$(BIN)/pytest -q
	@$(RASA) test core --stories tests/stories --model $(MODEL) --out reports/stories \
	  --fail-on-prediction-errors --quiet > reports/stories.log 2>&1 \
	  || { tail -40 reports/stories.log; cat reports/stories/failed_test_stories.yml 2>/dev/null; exit 1; }
	@echo "test stories: all passed"

test-fast: $(MODEL) ## what needs no servers: lint, validate, unit, in-process action and policy tests (< 5 min)
	@$(MAKE) --no-print-directory lint validate
	@$(BIN)/pytest -q -m "not servers"

screenshots: $(MODEL) ## refresh the README's page images in reports/pages/ (the browser tests, on purpose)
	@KEFU_SCREENSHOTS=reports/pages $(BIN)/pytest -q tests/desk/test_pages.py tests/desk/test_widget.py tests/desk/test_review_page.py

doctor: $(SETUP_STAMP) ## versions, runtime fixes, model, policy, ports, stores, Chromium: what is wrong
	@$(BIN)/kefu doctor

eval: $(MODEL) ## held-out NLU, hand-over judgement, FAQ topics, phrasing checker, changes since the committed reports: reports/
	@status=0; \
	$(PY) -m kefu.tools.evaluation nlu --model $(MODEL) --out reports/nlu || status=1; \
	$(PY) -m kefu.tools.evaluation judgement --model $(MODEL) --out reports/judgement || status=1; \
	$(PY) -m kefu.tools.evaluation faq --model $(MODEL) --out reports/faq || status=1; \
	$(PY) -m kefu.tools.evaluation phrasing --out reports/phrasing || status=1; \
	$(PY) -m kefu.tools.evaluation compare --out reports || status=1; \
	exit $$status

bench-nlu: $(SETUP_STAMP) ## 5-fold cross-validation on ../shared/datasets/smp2019-nlu (slow)
	@$(PY) -m kefu.tools.evaluation smp2019 --out reports/smp2019

bench: $(MODEL) ## kefu vs plain Rasa on the same model, cold training time, memory: reports/bench/
	@$(PY) -m kefu.tools.bench --out reports/bench

soak: $(MODEL) ## 200 visitors for 10 minutes through the desk; fails on any lost message: reports/soak.json
	@$(PY) -m kefu.tools.soak --visitors 200 --seconds 600 --out reports/soak.json

clean: ## remove models, reports of the last run and caches (keeps .venv)
	rm -rf models reports/stories .pytest_cache .mypy_cache .ruff_cache
