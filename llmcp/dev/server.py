"""``llmcp dev server``: the embedded PostgreSQL in the foreground, for a service's
own development.

The data lives in a persistent folder (``--data-dir``, else ``LLMCP_DATA_DIR``,
else ``.llmcp``; a relative path is taken from the current directory). The
server is started durable, database ``llmcp`` is created if missing and
migrated, and one line ``LLMCP_DATABASE_URL=...`` is printed for other shells.
SIGINT or SIGTERM stops the server (fast shutdown) and the command exits 0. The
folder's lock keeps a second run off it while this one serves.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from llmcp.config import URL_VARIABLE
from llmcp.dev.embedded import EmbeddedServer
from llmcp.dev.scratch import DATA_DIR_VARIABLE, EMBEDDED_DATABASE
from llmcp.errors import DatabaseUnavailableError
from llmcp.migrate import Migrator

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_POLL_S = 0.2  # how soon a stop request is noticed
_HEALTH_EVERY_S = 5.0  # how often the server is checked to be still up


class StopRequest:
    """Records SIGINT/SIGTERM instead of raising, so that the server is stopped by
    the main flow and never abandoned half-way through starting or migrating."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum


@contextmanager
def recording_stop_signals() -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a :class:`StopRequest`; restore the old handlers after."""
    stop = StopRequest()
    previous = {signum: signal.signal(signum, stop) for signum in _STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def data_folder(data_dir: Path | None = None) -> Path:
    """``data_dir``, else ``LLMCP_DATA_DIR``, else ``.llmcp``; absolute, because the
    server's programs run from ``/``."""
    chosen = data_dir if data_dir is not None else Path(os.environ.get(DATA_DIR_VARIABLE, ".llmcp"))
    return chosen.resolve()


def serve(data_dir: Path | None = None) -> int:
    """Run the server until SIGINT or SIGTERM; returns the exit code (0)."""
    root = data_folder(data_dir)
    # a holder keeps the folder for as long as it serves: waiting would only
    # delay the refusal
    server = EmbeddedServer(root, durable=True, lock_timeout_s=0.0)
    with recording_stop_signals() as stop, server:
        url = _migrated_database(server)
        if not stop.requested:
            print(f"{URL_VARIABLE}={url}", flush=True)
            print(f"llmcp dev server: data in {root}; Ctrl-C stops it", flush=True)
            _wait(server, stop)
    print("llmcp dev server: stopped", flush=True)
    return 0


def _migrated_database(server: EmbeddedServer) -> str:
    url = server.url(EMBEDDED_DATABASE)
    Migrator(url).up()  # creates the database first when it is missing
    return url


def _wait(server: EmbeddedServer, stop: StopRequest) -> None:
    """Return once a stop is requested; fail if the server goes away on its own."""
    next_check = time.monotonic() + _HEALTH_EVERY_S
    while not stop.requested:
        time.sleep(_POLL_S)
        if time.monotonic() < next_check:
            continue
        # a Ctrl-C at the terminal also reaches the `pg_ctl status` child
        if not server.is_running() and not stop.requested:
            raise DatabaseUnavailableError(
                f"the embedded server stopped on its own; see {server.log_file}"
            )
        next_check = time.monotonic() + _HEALTH_EVERY_S
