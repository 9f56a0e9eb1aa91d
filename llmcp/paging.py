"""Keyset pagination: a page of items and opaque, signed cursors.

A cursor carries the ``(created_at, id)`` of the last row of a page. It is
``urlsafe_base64(version || payload || tag)`` without padding, where ``payload``
is the msgpack of ``[microseconds since the Unix epoch, 16 uuid bytes]`` and
``tag`` the first 16 bytes of HMAC-SHA256 over the version, the scope and the
payload. The scope names the query and its filter (``"audit_logs.org:<uuid>"``),
so a cursor made for one listing is rejected by another; an altered, truncated
or forged cursor is rejected too, always as ``ValidationError("invalid cursor")``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Final, Generic, TypeVar
from uuid import UUID

import msgspec

from llmcp.errors import ValidationError
from llmcp.validation import aware

__all__ = ["MAX_CURSOR_LENGTH", "Page", "decode_cursor", "encode_cursor", "process_secret"]

T = TypeVar("T")

MAX_CURSOR_LENGTH: Final = 512
MIN_SECRET_LENGTH: Final = 16

_VERSION: Final = b"\x01"
_TAG_LENGTH: Final = 16
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]*")
_PAYLOAD: Final = msgspec.msgpack.Decoder(tuple[int, bytes])


_process_secret: bytes | None = None
_process_secret_lock = threading.Lock()


def process_secret() -> bytes:
    """A random cursor secret made once per process, for a config without one.

    There is no public default: a secret everyone knows would let anyone forge
    cursors. The first call logs one warning, since such cursors do not survive
    a restart and are refused by another instance of the service.
    """
    global _process_secret
    with _process_secret_lock:
        if _process_secret is None:
            _process_secret = secrets.token_bytes(32)
            logging.getLogger("llmcp").warning(
                "LLMCP_CURSOR_SECRET is not set: keyset cursors are signed with a random "
                "secret of this process, so they do not survive a restart or work across "
                "instances; set the same secret (16 bytes or more) on every instance"
            )
        return _process_secret


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a keyset-paginated listing; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(scope: str, created_at: datetime, row_id: UUID, *, secret: bytes) -> str:
    """The cursor that resumes the listing ``scope`` after the row ``(created_at, row_id)``."""
    _check_secret(secret)
    micros = (aware("created_at", created_at) - _EPOCH) // _MICROSECOND
    payload = msgspec.msgpack.encode((micros, row_id.bytes))
    raw = _VERSION + payload + _tag(secret, scope, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: object, scope: str, *, secret: bytes) -> tuple[datetime, UUID]:
    """The ``(created_at, id)`` in ``cursor``, if it was made by :func:`encode_cursor` for
    ``scope`` with ``secret``; ``created_at`` is an aware UTC datetime."""
    _check_secret(secret)
    if (
        not isinstance(cursor, str)
        or not 0 < len(cursor) <= MAX_CURSOR_LENGTH
        or _ALPHABET.fullmatch(cursor) is None
    ):
        raise ValidationError("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError("invalid cursor") from None
    # One encoding per byte string: unused low bits of the last character must be 0.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != cursor:
        raise ValidationError("invalid cursor")
    if len(raw) <= 1 + _TAG_LENGTH or raw[:1] != _VERSION:
        raise ValidationError("invalid cursor")
    payload, tag = raw[1:-_TAG_LENGTH], raw[-_TAG_LENGTH:]
    if not hmac.compare_digest(tag, _tag(secret, scope, payload)):
        raise ValidationError("invalid cursor")
    try:
        micros, id_bytes = _PAYLOAD.decode(payload)
        return _EPOCH + micros * _MICROSECOND, UUID(bytes=id_bytes)
    except (msgspec.DecodeError, ValueError, OverflowError):
        raise ValidationError("invalid cursor") from None


def _tag(secret: bytes, scope: str, payload: bytes) -> bytes:
    scope_bytes = scope.encode("utf-8", "surrogatepass")
    message = _VERSION + len(scope_bytes).to_bytes(4, "big") + scope_bytes + payload
    return hmac.new(secret, message, hashlib.sha256).digest()[:_TAG_LENGTH]


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the cursor secret must be at least {MIN_SECRET_LENGTH} bytes")
