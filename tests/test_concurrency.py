"""llmcp.concurrency.execute: the sync flavour's statement, one blocking libpq call, behaves
as ``conn.execute()`` does: the same rows affected, the same errors, a lost connection
an OperationalError."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from llmcp.concurrency import execute


def test_a_statement_runs_with_its_parameters_and_counts_its_rows(shared_db: str) -> None:
    with psycopg.connect(shared_db, autocommit=True) as conn:
        assert execute(conn, "SELECT generate_series(1, %s)", (3,)) == 3
        document = Jsonb([{"a": [1, "é", None]}, {"b": 2}])
        assert execute(conn, "SELECT jsonb_array_elements(%s)", (document,)) == 2
        # the parameter arrived as psycopg sends it: kept in a setting, read back
        execute(conn, "SELECT set_config('llmcp.probe', %s::text, false)", (document,))
        kept = conn.execute("SELECT current_setting('llmcp.probe')::jsonb").fetchone()
        assert kept == (document.obj,)


def test_an_error_is_psycopgs_as_conn_execute_raises_it(shared_db: str) -> None:
    with psycopg.connect(shared_db, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero) as ours:
            execute(conn, "SELECT 1 / %s", (0,))
        with pytest.raises(psycopg.errors.DivisionByZero) as theirs:
            conn.execute("SELECT 1 / %s", (0,))
        assert ours.value.sqlstate == theirs.value.sqlstate == "22012"
        assert ours.value.diag.message_primary == theirs.value.diag.message_primary
        assert execute(conn, "SELECT %s", ("still usable",)) == 1


@pytest.mark.direct_connection(
    "terminates the statement's backend by its pid: behind a pooler that is not the client's"
)
def test_a_lost_connection_is_an_operational_error(shared_db: str) -> None:
    with (
        psycopg.connect(shared_db, autocommit=True) as killer,
        psycopg.connect(shared_db, autocommit=True) as victim,
    ):
        killed = killer.execute(
            "SELECT pg_terminate_backend(%s, 5000)", (victim.info.backend_pid,)
        ).fetchone()
        assert killed == (True,)
        with pytest.raises(psycopg.OperationalError) as lost:
            execute(victim, "SELECT %s", (1,))
        assert lost.value.sqlstate in (None, "57P01")  # the notice may come first
        with pytest.raises(psycopg.OperationalError):
            execute(victim, "SELECT %s", (1,))  # closed now
