"""Behind a transaction-mode pooler (PgBouncer): how llmcp does without session state.

A transaction pooler hands each transaction of a client connection to whichever
server connection is free, so nothing may outlive a transaction: a session
``SET``, a named prepared statement (PgBouncer < 1.21 then runs another
client's statement of the same name: wrong answers, no error), an advisory
session lock, ``LISTEN``, a temporary table. In pooled mode
(:attr:`DatabaseConfig.pooler`, or detected):

- llmcp's settings (:meth:`DatabaseConfig.connection_settings`) ride in every
  call as ``set_config(name, value, true)``, in the call's own pipeline next to
  the tenant setting (:mod:`llmcp.pipelined`), so they hold for exactly the
  statement's transaction; ``SET TimeZone`` at connect stays too, as PgBouncer
  tracks TimeZone (a reported parameter) per client and replays it on each
  server connection: psycopg decodes timestamps in the zone the server reports;
- statements are parsed unnamed on each call (same single round trip), unless
  :attr:`DatabaseConfig.pooler_prepared_statements` says the pooler keeps
  protocol-level prepared statements per client (PgBouncer 1.21+ with
  ``max_prepared_statements``);
- migrations refuse to run (:mod:`llmcp.migrate`): they need the server itself.

Detection (:func:`behind_proxy`): the server sends every client a
BackendKeyData message with its backend's process id, which equals
``pg_backend_pid()``; a pooler must answer the startup itself and sends a key
of its own (PgBouncer: random bytes), so the two differ. That tells reliably
that *something* sits between client and server, not its pooling mode: a
session-mode pooler is detected too, and then gets pooled mode, which is
correct there, only a little slower.
"""

from __future__ import annotations

import functools

SERVER_PID_QUERY = "SELECT pg_backend_pid()"


def behind_proxy(reported_pid: int, server_pid: object) -> bool:
    """Whether the process id the connection was given at startup (``info.backend_pid``)
    is not the server backend's own (``pg_backend_pid()``): a pooler answered."""
    return server_pid != reported_pid


@functools.cache
def set_config_statement(pairs: int) -> bytes:
    """``SELECT set_config($1, $2, true), ...`` for ``pairs`` settings (libpq's ``$n``)."""
    calls = ", ".join(f"set_config(${2 * n + 1}, ${2 * n + 2}, true)" for n in range(pairs))
    return f"SELECT {calls}".encode()


@functools.cache
def set_config_query(pairs: int) -> str:
    """The same in psycopg's ``%s`` style, for calls that take psycopg's cursor path."""
    return "SELECT " + ", ".join(["set_config(%s, %s, true)"] * pairs)


def flat(settings: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """``((name, value), ...)`` as the parameters of :func:`set_config_statement`."""
    return tuple(part for pair in settings for part in pair)


# the settings a pooler tracks per client and replays on each server connection
# (PgBouncer: client_encoding, DateStyle, TimeZone, standard_conforming_strings,
# application_name), so that a SET at connect holds for the client as a whole
_TRACKED = frozenset({"TimeZone"})

DETECTED = (
    "a connection pooler sits between llmcp and the server (the backend process id "
    "the connection was given is not the server's): running without session state "
    "(pooled mode); say so with pooler='transaction' (LLMCP_POOLER=transaction)"
)


def tracked_settings(settings: tuple[tuple[str, str], ...]) -> str:
    """The SET statements, at connect, of the ``settings`` a pooler tracks (TimeZone):
    psycopg reads the zone of the timestamps it decodes from what the server
    reports for the client connection."""
    return "; ".join(f"SET {name} = '{value}'" for name, value in settings if name in _TRACKED)
