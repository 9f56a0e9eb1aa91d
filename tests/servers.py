"""Servers for the connection tests: a TCP server that asks for passwords, and
local sockets that refuse or never answer (every address is on this machine)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from llmcp.dev.embedded import EmbeddedServer
from llmcp.migrate import GroupRole

PASSWORD = "Kx9-secret-Pq7"
"""The password of the role ``PasswordServer`` makes; no output may show it."""
ROLE = "llmcp_pw_user"

# trust on the unix socket (the harness administers through it), passwords on TCP
_HBA = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections and never says a word:
    what a client sees of a host that does not answer."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshakes; nobody reads
        yield int(listener.getsockname()[1])


@dataclass(frozen=True)
class PasswordServer:
    """An embedded server on 127.0.0.1 without TLS, whose role ``ROLE`` has ``PASSWORD``
    (and ``CREATEDB``, not ``CREATEROLE``: llmcp's group roles exist already)."""

    server: EmbeddedServer
    port: int

    def url(self, dbname: str = "postgres", *, user: str = ROLE, password: str = PASSWORD) -> str:
        return f"postgresql://{quote(user)}:{quote(password)}@127.0.0.1:{self.port}/{dbname}"

    def admin_url(self, dbname: str = "postgres") -> str:
        socket_dir = quote(str(self.server.socket_dir))
        return f"postgresql://postgres@/{dbname}?host={socket_dir}&port={self.port}"


@contextlib.contextmanager
def password_server() -> Iterator[PasswordServer]:
    port = free_port()
    with EmbeddedServer(tcp_port=port) as server:
        running = PasswordServer(server, port)
        (server.data_dir / "pg_hba.conf").write_text(_HBA)
        with psycopg.connect(running.admin_url(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(PASSWORD)
                )
            )
            conn.execute(sql.SQL("CREATE DATABASE app OWNER {}").format(sql.Identifier(ROLE)))
            # ROLE migrates without CREATEROLE: an administrator makes llmcp's group
            # roles first, as the README's Roles section says
            for group in GroupRole:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group.value)))
        yield running
