# zkq: `make run` for a local cluster and a demo, `make test` for the test suite.
# Every target bootstraps what it needs (scripts/bootstrap.sh is quick when nothing is
# missing); installing Debian packages needs root.

VENV := .venv
BIN := $(VENV)/bin

.PHONY: bootstrap bootstrap-deploy run down test test-unit test-integration test-cluster test-deploy lint lint-ansible wheelhouse bench soak clean openapi

bootstrap:
	scripts/bootstrap.sh

# A cluster already up and healthy is reused; one partly down is replaced, on the same
# ports where they are free, and the demo's API key stays the same.  zkq is installed in
# .venv: `. .venv/bin/activate` puts it on the PATH (the demo's last lines say so).
run: bootstrap
	@$(BIN)/zkq dev status > /dev/null 2>&1 || { $(BIN)/zkq dev down > /dev/null; $(BIN)/zkq dev up; }
	$(BIN)/python -m zkq.demo

down:
	@if [ -x $(BIN)/zkq ]; then $(BIN)/zkq dev down; else echo "no $(BIN)/zkq: nothing to stop"; fi

# All tiers in one run, unit first (tests/teardown.py orders them and ends each tier's
# shared stack before the next starts); or one tier at a time.
test: bootstrap
	$(BIN)/pytest

test-unit: bootstrap
	$(BIN)/pytest tests/unit

test-integration: bootstrap
	$(BIN)/pytest tests/integration

test-cluster: bootstrap
	$(BIN)/pytest tests/cluster

# Rewrite docs/openapi.json from the document the frontend serves; commit its diff with
# the API change (tests/unit/test_openapi_golden.py fails until the two agree).
openapi: bootstrap
	$(BIN)/python -m tests.openapi_golden

# What deploying with Ansible (and its test) needs besides: Ansible, debootstrap, ...
bootstrap-deploy:
	scripts/bootstrap.sh --deploy

wheelhouse: bootstrap
	scripts/build-wheelhouse.sh

# Lint the playbooks, deploy them onto test hosts (network namespaces with their own
# Debian roots, reached over SSH) and break them: see docs/deploy.md.  Needs root.
test-deploy: bootstrap-deploy wheelhouse
	ZKQ_DEPLOY_TESTS=1 $(BIN)/pytest tests/deploy

lint-ansible: bootstrap-deploy
	cd ansible && ansible-lint

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p zkq -p benchmarks -p soak

bench: bootstrap
	$(BIN)/python -m benchmarks

# The chaos soak (docs/soak.md): 10,000 jobs while a schedule kills and partitions the
# cluster's parts; exits non-zero on a lost or doubly committed job.  SOAK_ARGS=--quick
# for the short version.
soak: bootstrap
	$(BIN)/python -m soak $(SOAK_ARGS)

# Keeps .venv (slow to rebuild): `rm -rf .venv` for a truly fresh start.
clean: down
	rm -rf .zkq-dev .pytest_cache .mypy_cache .ruff_cache build
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
