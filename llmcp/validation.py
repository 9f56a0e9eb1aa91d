"""Checks made before a value reaches the database.

Each check returns the value it accepted and raises
:class:`~llmcp.errors.ValidationError` with a message naming the field. A
rejected string is never quoted in the message (it may be personal data).
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import math
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, TypeVar
from uuid import UUID

import msgspec

from llmcp.errors import ValidationError
from llmcp.json_types import JsonValue

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "MAX_LIMIT",
    "aware",
    "boolean",
    "email_key",
    "int_range",
    "json_document",
    "json_encoded",
    "json_object",
    "limit",
    "member",
    "money",
    "offset",
    "optional_aware",
    "optional_ip",
    "optional_text",
    "optional_uuid",
    "text",
    "uuid_value",
]

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1
MAX_LIMIT: Final = 1000
MAX_JSON_DEPTH: Final = 64
# Integers in JSON: Python turns at most 4300 digits into text by default
# (sys.get_int_max_str_digits) and jsonb holds numbers as numeric (131072 digits
# before the point); longer ones cannot be stored, so they are refused at the call.
MAX_JSON_INT_DIGITS: Final = 4300
_JSON_INT_LIMIT: Final = 10**MAX_JSON_INT_DIGITS

# C0 controls except tab, newline and carriage return; and lone surrogates, which
# cannot be encoded to UTF-8 (PostgreSQL also refuses NUL in text).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def text(
    field: str,
    value: object,
    *,
    max_length: int,
    min_length: int = 1,
    pattern: re.Pattern[str] | None = None,
) -> str:
    """``value`` if it is a str of ``min_length``..``max_length`` characters (and fully
    matches ``pattern``) without control characters other than tab, newline and CR."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string")
    # printable ASCII (the common case) holds neither control characters nor
    # surrogates: two flag checks instead of a regular expression
    found = None if value.isascii() and value.isprintable() else _FORBIDDEN.search(value)
    if found is not None:
        if found.group().isascii():
            raise ValidationError(f"{field} must not contain control characters")
        raise ValidationError(f"{field} must be valid Unicode (no lone surrogates)")
    if len(value) < min_length:
        if min_length == 1:
            raise ValidationError(f"{field} must not be empty")
        raise ValidationError(f"{field} must be at least {min_length} characters")
    if len(value) > max_length:
        raise ValidationError(f"{field} must be at most {max_length} characters")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise ValidationError(f"{field} has an invalid format")
    return value


def optional_text(
    field: str,
    value: object,
    *,
    max_length: int,
    min_length: int = 1,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    """As :func:`text`, but None passes."""
    if value is None:
        return None
    return text(field, value, max_length=max_length, min_length=min_length, pattern=pattern)


def aware(field: str, value: object) -> datetime:
    """``value`` if it is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} must be timezone-aware (a naive datetime was given)")
    try:  # stored as UTC: it must be a UTC instant Python can read back
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"{field} is outside the years 1 to 9999 in UTC") from None
    return value


def instance(field: str, value: object, kind: type[T]) -> T:
    """``value`` if it is a ``kind`` (an input struct or a row), else a ValidationError."""
    if not isinstance(value, kind):
        raise ValidationError(f"{field} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def optional_aware(field: str, value: object) -> datetime | None:
    """As :func:`aware`, but None passes."""
    return None if value is None else aware(field, value)


def int_range(field: str, value: object, *, minimum: int, maximum: int) -> int:
    """``value`` if it is an int (not a bool) within ``minimum``..``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer")
    if not minimum <= value <= maximum:
        raise ValidationError(f"{field} must be between {minimum} and {maximum}")
    return value


def money(field: str, value: object, *, max_digits: int = 14, places: int = 6) -> Decimal:
    """``value`` if it is a finite, non-negative Decimal that fits ``numeric(max_digits, places)``
    exactly (no rounding). An int is accepted and returned as a Decimal; a float is not."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise ValidationError(f"{field} must be a Decimal")
    if not value.is_finite():
        raise ValidationError(f"{field} must be a finite number")
    if value < 0:
        raise ValidationError(f"{field} must not be negative")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    # Trailing zeros after the point need no place: 1.500000000 fits 6 places.
    significant = len(digits)
    while value != 0 and exponent < 0 and digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    if value != 0 and exponent < -places:
        raise ValidationError(f"{field} must have at most {places} decimal places")
    if value >= Decimal(f"1e{max_digits - places}"):
        raise ValidationError(
            f"{field} must be less than 10^{max_digits - places} (numeric({max_digits},{places}))"
        )
    return value


def uuid_value(field: str, value: object) -> UUID:
    """``value`` as a UUID: a UUID, or a str in one of the forms :class:`uuid.UUID` reads."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValidationError(f"{field} must be a UUID")


def optional_uuid(field: str, value: object) -> UUID | None:
    """As :func:`uuid_value`, but None passes."""
    return None if value is None else uuid_value(field, value)


def limit(value: object) -> int:
    """A page size: 1..1000."""
    return int_range("limit", value, minimum=1, maximum=MAX_LIMIT)


def offset(value: object) -> int:
    """A row offset: 0..2**63-1."""
    return int_range("offset", value, minimum=0, maximum=INT64_MAX)


def boolean(field: str, value: object) -> bool:
    """``value`` if it is a bool (not 0/1 or a string)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be a boolean")
    return value


def member(field: str, value: object, kind: type[E]) -> E:
    """``value`` as a member of the enum ``kind``: a member, or the value of one."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool | enum.Enum):
        try:
            return kind(value)
        except ValueError:
            pass
    allowed = ", ".join(str(item.value) for item in kind)
    raise ValidationError(f"{field} must be one of: {allowed}")


def json_object(
    field: str, value: object, *, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, JsonValue]:
    """``value`` if it is a JSON object PostgreSQL's jsonb stores as given: str keys, values
    of JSON types, finite floats, integers of at most 4300 digits, no NUL character,
    nested at most ``max_depth`` deep."""
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be a JSON object")
    _json(field, value, 0, max_depth)
    return value


def json_document(
    field: str, value: object, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH
) -> bytes:
    """``value`` checked as :func:`json_object` and encoded as JSON, at most ``max_bytes``
    long: what is stored, so that nothing fails later for a reason found now."""
    return json_encoded(field, json_object(field, value, max_depth=max_depth), max_bytes=max_bytes)


def json_encoded(field: str, value: dict[str, JsonValue], *, max_bytes: int) -> bytes:
    """A checked JSON object (see :func:`json_object`) encoded, at most ``max_bytes`` long."""
    try:
        encoded = msgspec.json.encode(value)
    except (ValueError, TypeError, OverflowError, RecursionError, msgspec.EncodeError):
        raise ValidationError(f"{field} cannot be encoded as JSON") from None
    if len(encoded) > max_bytes:
        raise ValidationError(f"{field} is more than {max_bytes} bytes as JSON")
    return encoded


def _json(field: str, value: object, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise ValidationError(f"{field} is nested more than {max_depth} levels deep")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT:
            raise ValidationError(
                f"{field} must not contain integers of more than {MAX_JSON_INT_DIGITS} digits"
            )
        return
    if isinstance(value, str):
        # ASCII holds no surrogates: a flag check before the regular expression
        if "\x00" in value or (not value.isascii() and _SURROGATE.search(value)):
            raise ValidationError(f"{field} must not contain NUL or lone surrogates")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{field} must not contain NaN or infinity")
        return
    if isinstance(value, list):
        for item in value:
            _json(field, item, depth + 1, max_depth)
        return
    if isinstance(value, dict):
        if value and depth + 1 > max_depth:
            raise ValidationError(f"{field} is nested more than {max_depth} levels deep")
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{field} must have only string keys")
            if "\x00" in key or (not key.isascii() and _SURROGATE.search(key)):
                raise ValidationError(f"{field} must not contain NUL or lone surrogates")
            # the usual values need no call of their own
            if item is None or type(item) is bool:
                continue
            if type(item) is int and -_JSON_INT_LIMIT < item < _JSON_INT_LIMIT:
                continue
            if type(item) is str and item.isascii() and "\x00" not in item:
                continue
            _json(field, item, depth + 1, max_depth)
        return
    raise ValidationError(f"{field} must contain only JSON values (not {type(value).__name__})")


def optional_ip(field: str, value: object) -> str | None:
    """``value`` (an IP address as text, or an :mod:`ipaddress` object) as the text to
    store; None passes. A scoped IPv6 address (``fe80::1%eth0``) is refused: ``inet``
    has no zone."""
    if value is None:
        return None
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(value)
    if address is None or (isinstance(address, ipaddress.IPv6Address) and address.scope_id):
        raise ValidationError(f"{field} must be an IP address")
    return str(address)


def email_key(address: str) -> str:
    """The key e-mail addresses are compared by: NFKC, full case folding, NFKC again.

    Case never matters, and compatibility forms cannot pass for the plain letters
    they look like (a Kelvin sign U+212A is a ``k``, full-width letters and
    ligatures are their plain spellings), so a look-alike address can neither
    collide with another one nor take it over. Unicode tables are Python's.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", address).casefold())
