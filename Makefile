# One entry point per job. `make test` works on a fresh machine from a clean clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lint typecheck test demo bench up clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src functions tests
	$(BIN)/ruff format --check src functions tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

# Timing figures (P2 ...) go here, never into `make test`; writes benchmarks/results.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

# `make deploy FUNCTION=matcher REGISTRY=ghcr.io/you`: stage the function into build/stage/
# (`amtd stage`) and `func deploy` that folder. Needs the Knative func CLI v1.19-v1.21: v1.18's
# pack builder has no Python scaffolding, v1.22+ brings cloudevents 2, which functions-framework
# cannot use; docs/DEPLOY.md.
FUNC ?= func
.PHONY: deploy
deploy: $(STAMP)
	@test -n "$(FUNCTION)" || { echo "usage: make deploy FUNCTION=<func.yaml name> REGISTRY=<registry>" >&2; exit 2; }
	@test -n "$(REGISTRY)" || { echo "make deploy: set REGISTRY=<registry you push to> (func.yaml's registry is a placeholder)" >&2; exit 2; }
	@command -v $(FUNC) >/dev/null 2>&1 || { echo "make deploy: the Knative func CLI ('$(FUNC)') is not installed; install func v1.21 (docs/DEPLOY.md)" >&2; exit 127; }
	@case "$$($(FUNC) version 2>/dev/null)" in *v1.19*|*v1.20*|*v1.21*) ;; *) echo "make deploy: func $$($(FUNC) version 2>/dev/null) is not supported; use func v1.21 (docs/DEPLOY.md)" >&2; exit 2;; esac
	$(BIN)/amtd stage $(FUNCTION) --out build/stage/$(FUNCTION)
	$(FUNC) deploy --path build/stage/$(FUNCTION) --registry $(REGISTRY)

demo: $(STAMP)
	$(BIN)/python -m amtd_stack.running.demo
