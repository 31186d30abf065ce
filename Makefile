# The README's two commands: `make run` (the pipeline on the local stack) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: venv up down status run stop test test-unit lint bench schemas mutate soak

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

# The long soak: at least 300 mixed jobs over 10 minutes under faults injected at random
# (TAPEDECK_SOAK_SEED picks the seed); prints its figures, also kept in
# test-artifacts/soak/long.json. A short soak runs in `make test`.
soak: up
	TAPEDECK_SOAK=1 $(PY) -m pytest tests/reliability/test_soak.py -s $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -m "unit or agent" $(PYTEST_ARGS)

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy schemas services tests
	.venv/bin/mypy scripts/services.py scripts/demo.py scripts/production_demo.py scripts/kustomize.py scripts/gen_k8s_topics.py scripts/promtool.py scripts/gen_monitoring.py scripts/toxiproxy.py

schemas: venv
	$(PY) -m schemas.export

# Every benchmark, one table; results in bench/results/latest.{json,md} (BENCH_ARGS: --only,
# --smoke). Speed never fails it.
BENCH_ARGS ?=

bench: up
	$(PY) -m bench.run $(BENCH_ARGS)

# Mutation testing of the shared stage code against the unit tier (not part of CI; a few
# minutes on 2 cores). Starts from scratch each time: mutmut keeps old verdicts for code
# that did not change, even when the tests did. Setup in pyproject.toml [tool.mutmut].
MUTATE_JOBS ?= 2

mutate: venv
	rm -rf mutants
	$(PY) scripts/mutation_report.py run --max-children $(MUTATE_JOBS)
	@echo
	$(PY) scripts/mutation_report.py
