"""The type of an untyped JSON value (a jsonb column without a declared struct), and
JSON ``null`` as a value.

A jsonb parameter given None is SQL NULL (so ``coalesce(:details::jsonb, '{}')``
takes its default). To write JSON ``null`` itself, pass :data:`JSON_NULL` to a
parameter annotated ``-- @jsonnull :param`` in the SQL file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    JsonValue: TypeAlias = (
        dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
    )
else:
    # At run time, Any: msgspec cannot follow the recursive alias (a struct with a
    # JsonValue field would not decode, "ForwardRef('JsonValue') is not supported"),
    # and Any is what it decodes any JSON value as: the same dicts, lists and scalars.
    JsonValue = Any


class JsonNull:
    """The type of :data:`JSON_NULL`: JSON ``null`` as a value, not SQL NULL."""

    __slots__ = ()
    _instance: JsonNull | None = None

    def __new__(cls) -> JsonNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "JSON_NULL"

    def __reduce__(self) -> str:
        return "JSON_NULL"


JSON_NULL: Final = JsonNull()
"""JSON ``null`` for a jsonb parameter (None is SQL NULL)."""


def encode_hook(value: Any) -> Any:
    """msgspec's ``enc_hook``: :data:`JSON_NULL` encodes as ``null``."""
    if isinstance(value, JsonNull):
        return None
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")
