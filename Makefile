# The two commands of the README: `make demo` and `make test`. Each creates the
# virtual environment from the pinned lock file when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck codegen-check catalog-check pytest test-system-postgres test-pgbouncer bench clean

$(STAMP): requirements/lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP)
	$(BIN)/llmcp demo

test: lint typecheck codegen-check catalog-check pytest test-system-postgres test-pgbouncer

# SQL: house style in .sqlfluff; migration safety by squawk (dbmate runs each
# migration in a transaction). Exceptions sit next to their statement, with the reason.
lint: $(STAMP)
	$(BIN)/ruff check llmcp generated tests bench examples
	$(BIN)/ruff format --check llmcp generated tests bench examples
	$(BIN)/sqlfluff lint --dialect postgres sql dbmate/migrations
	$(BIN)/squawk --assume-in-transaction --pg-version 15 dbmate/migrations/*.sql

typecheck: $(STAMP)
	$(BIN)/mypy llmcp tests bench examples

# generated/ must be exactly what the SQL files and migrations produce, and
# every sync twin exactly what its *_async.py source derives to
codegen-check: $(STAMP)
	$(BIN)/llmcp codegen --check
	$(BIN)/llmcp dev twins --check

# docs/queries.md and docs/schema.md must be what `llmcp catalog` writes
catalog-check: $(STAMP)
	$(BIN)/llmcp catalog --check

bench: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/bench.txt
	$(BIN)/python -m bench

pytest: $(STAMP)
	$(BIN)/pytest

# In CI, when the machine has a system PostgreSQL (Debian's pg_ctlcluster), the
# suite runs a second time against it, so that older servers stay supported: the
# tests that use that server (the others ran above and would run the same), with
# the "repeat" hypothesis profile (a third of the examples).
REPEAT_PASS := LLMCP_TEST_REPEAT_PASS=1 HYPOTHESIS_PROFILE=repeat
test-system-postgres: $(STAMP)
	@if [ "$$CI" = "true" ] && command -v pg_ctlcluster >/dev/null 2>&1; then \
		url=$$(scripts/system-postgres-url) && \
		echo "--- again against the system PostgreSQL ($$url)" && \
		LLMCP_DATABASE_URL="$$url" $(REPEAT_PASS) $(BIN)/pytest; \
	else echo "--- no second pass: CI is not set or there is no system PostgreSQL"; fi

# In CI, the suites that go through the repositories, transactions and the writer run
# once more with the application role behind our own PgBouncer in transaction mode
# (Debian's 1.18: prepared statements off), in front of the system PostgreSQL;
# migrations and the owner's work stay direct. Tests marked direct_connection
# are skipped there. The property suites run a tenth of their examples (`pooled`).
POOLED_SUITES := tests/repositories tests/properties tests/test_audit_writer.py \
	tests/test_audit_writer_async.py tests/test_tenant_pipeline.py tests/test_pgbouncer.py
test-pgbouncer: $(STAMP)
	@if [ "$$CI" = "true" ] && command -v pg_ctlcluster >/dev/null 2>&1; then \
		url=$$(scripts/system-postgres-url) && pooler=$$(scripts/pgbouncer-url) && \
		echo "--- again through PgBouncer ($$pooler, transaction mode) in front of $$url" && \
		LLMCP_DATABASE_URL="$$url" LLMCP_TEST_POOLER_URL="$$pooler" LLMCP_POOLER=transaction \
		LLMCP_TEST_REPEAT_PASS=1 HYPOTHESIS_PROFILE=pooled $(BIN)/pytest $(POOLED_SUITES); \
	else echo "--- no PgBouncer pass: CI is not set or there is no system PostgreSQL"; fi

clean:
	rm -rf $(VENV) .llmcp build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis

# The property-based suite alone, with ten times the examples of `make test`.
.PHONY: test-thorough
test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/pytest tests/properties

# Break the SQL on purpose, one break at a time, and check a test catches each.
.PHONY: test-teeth
test-teeth: $(STAMP)
	$(BIN)/python -m tests.properties.breaks
