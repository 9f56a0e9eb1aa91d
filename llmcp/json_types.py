"""The type of an untyped JSON value (a jsonb column without a declared struct)."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
