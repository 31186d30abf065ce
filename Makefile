# The README's two commands: `make run` (the pipeline on the local stack) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: venv up down status run stop test test-unit lint bench schemas

venv:
	@scripts/bootstrap

up: venv
	@scripts/stack up

down:
	@scripts/stack down

status:
	@scripts/stack status

run: up
	@scripts/run-demo

stop:
	@scripts/services stop

test: up
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy schemas services tests
	.venv/bin/mypy scripts/services.py scripts/demo.py

schemas: venv
	$(PY) -m schemas.export

bench: up
	$(PY) -m bench.clip_bench
