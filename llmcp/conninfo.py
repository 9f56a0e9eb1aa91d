"""Database URLs: checked once, never shown with their password, and a failed
connection told by its cause.

libpq echoes a malformed URL (password included) in its error messages, and
psycopg_pool logs those messages; so every message that may carry a URL goes
through :func:`redact` first, and the ``psycopg`` loggers carry a filter that
does the same (:func:`install_log_filter`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from llmcp.errors import ConnectFailure as Failure
from llmcp.errors import ConnectionFailedError

MASK = "***"

# userinfo of a URL: scheme://user:password@ -> scheme://user:***@
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<secret>[^@\n]*)@", re.I
)  # up to the @ on the same line: a malformed password may hold spaces or slashes
# key=value conninfo and URL query parameters: password=... (quoted or not)
_KEY_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.I
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# a password this short would be masked inside ordinary words; the patterns
# above still mask it wherever it appears as a password
_MIN_LITERAL = 4


def passwords(url: str) -> set[str]:
    """The passwords ``url`` carries (userinfo or ``password=``), as written and decoded."""
    found = {m["secret"] for m in _URL_PASSWORD.finditer(url)}
    found |= {m["secret"].strip("'") for m in _KEY_PASSWORD.finditer(url)}
    with contextlib.suppress(ValueError):
        found.add(urlsplit(url).password or "")
    found |= {unquote(p) for p in found}
    return {p for p in found if p}


def remember(url: str) -> None:
    """Mask the passwords of ``url`` wherever :func:`redact` runs from now on."""
    new = passwords(url)
    if new - _secrets:
        with _secrets_lock:
            _secrets.update(new)


def redact(text: str, url: str | None = None) -> str:
    """``text`` with every password it may hold replaced by ``***``: those written
    as a URL's userinfo or a ``password=`` setting, those of ``url``, and those
    :func:`remember` was given."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)
    text = _KEY_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    known = set(_secrets) | (passwords(url) if url else set())
    for secret in sorted(known, key=len, reverse=True):
        if len(secret) >= _MIN_LITERAL:
            text = text.replace(secret, MASK)
    return text


def parse(url: str) -> dict[str, Any]:
    """The settings of ``url`` (a URL or key=value conninfo), or ``ConnectionFailedError``
    (reason ``MALFORMED_URL``) saying what is wrong with it, password masked."""
    try:
        return conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConnectionFailedError(Failure.MALFORMED_URL, redact(_first_line(exc), url)) from None


# libpq's words for each cause (its messages carry no SQLSTATE for most of them)
_CAUSES: tuple[tuple[Failure, re.Pattern[str]], ...] = tuple(
    (failure, re.compile(pattern, re.I))
    for failure, pattern in (
        (Failure.TLS, r"\bSSL\b|no encryption|certificate|\bGSS"),
        (Failure.AUTHENTICATION, r"password authentication failed|authentication failed|"
         r"role \".*\" does not exist|no password supplied|password is required"),
        (Failure.DATABASE_MISSING, r"database \".*\" does not exist"),
        (Failure.HOST_NOT_FOUND, r"failed to resolve host|could not translate host name|"
         r"name or service not known|nodename nor servname|temporary failure in name resolution"),
        (Failure.REFUSED, r"connection refused|no such file or directory"),
        (Failure.TIMEOUT, r"timeout expired|timed out|connection timeout"),
        (Failure.MALFORMED_URL, r"invalid (integer|connection option|URI|sslmode|value)|"
         r"missing \"=\"|unexpected spaces|unterminated quoted|end of string reached|"
         r"invalid percent-encoded"),
    )
)  # fmt: skip


def classify(exc: BaseException) -> Failure:
    """The cause of a failed connection attempt, read off psycopg's error."""
    state = getattr(exc, "sqlstate", None)
    if state in ("28P01", "28000"):
        # 28000 is also pg_hba's refusal, which names SSL/encryption when that is why
        return Failure.TLS if _CAUSES[0][1].search(str(exc)) else Failure.AUTHENTICATION
    if state == "3D000":
        return Failure.DATABASE_MISSING
    message = str(exc)
    for failure, pattern in _CAUSES:
        if pattern.search(message):
            return failure
    return Failure.OTHER


def connection_error(exc: BaseException, url: str) -> ConnectionFailedError:
    """The llmcp error for a failed connection to ``url``: its cause and psycopg's own
    reason, password masked."""
    return ConnectionFailedError(classify(exc), redact(_first_line(exc), url))


def _first_line(exc: BaseException) -> str:
    """psycopg's reason without libpq's hint lines (``Is the server running ...?``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class RedactingFilter(logging.Filter):
    """Masks passwords in the records of the logger it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # the traceback text would repeat the message; keep only its masked form
            record.msg = f"{record.msg} ({redact(str(record.exc_info[1]))})"
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = RedactingFilter()


def install_log_filter() -> None:
    """Attach the filter to the loggers of psycopg and psycopg_pool (idempotent)."""
    for name in ("psycopg", "psycopg.pool"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
