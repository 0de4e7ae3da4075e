# payflow: `make demo` and `make test` are the two commands of the README's Quick start.
# Everything they need is installed by them: a virtualenv with the Python packages, Kafka's
# jars (Maven), PostgreSQL 15 and Redis 7 (Debian packages when missing).

VENV   ?= .venv
# The interpreter .venv is made from (infra/venv-python says which and why).
PYTHON ?= $(shell infra/venv-python)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
ORDERS ?= 500

.PHONY: install demo test lint unit services-up services-down services-status clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## The first command: services, schema, seed data, workers, orders through all five stages.
demo: install
	$(VENV)/bin/payflow demo --orders $(ORDERS)

## The second command: lint, types, contract snapshots, then every test against real services.
test: install lint
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(PY) -m contracts.generate --check

unit: install
	$(PY) -m pytest -q tests/unit

services-up: install
	$(VENV)/bin/payflow services up
services-down: install
	$(VENV)/bin/payflow services down
services-status: install
	$(VENV)/bin/payflow services status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
