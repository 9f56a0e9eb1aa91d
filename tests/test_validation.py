"""Checks before the database: each names the field and never quotes a rejected string."""

from __future__ import annotations

import enum
import ipaddress
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcp import validation as v
from llmcp.errors import ValidationError

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _rejected(check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        check(*args, **kwargs)
    return str(caught.value)


# -- text --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["a", "Ada Lovelace", "tab\there", "multi\nline\r\n", "é漢字🙂", "x" * 10]
)
def test_text_accepts_and_returns_the_value(value: str) -> None:
    assert v.text("name", value, max_length=20) is value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "must be a string"),
        (b"bytes", "must be a string"),
        (42, "must be a string"),
        ("", "must not be empty"),
        ("x" * 11, "must be at most 10 characters"),
        ("nul\x00secret", "must not contain control characters"),
        ("bell\x07secret", "must not contain control characters"),
        ("esc\x1bsecret", "must not contain control characters"),
        ("surrogate\ud800secret", "valid Unicode"),
    ],
)
def test_text_rejects_naming_the_field_not_the_value(value: object, reason: str) -> None:
    message = _rejected(v.text, "display_name", value, max_length=10)
    assert message.startswith("display_name ")
    assert reason in message
    assert "secret" not in message


def test_text_length_counts_characters_not_bytes() -> None:
    assert v.text("name", "é" * 5, max_length=5) == "é" * 5
    assert "at least 3 characters" in _rejected(v.text, "name", "ab", max_length=5, min_length=3)
    assert v.text("note", "", max_length=5, min_length=0) == ""


def test_text_pattern_must_match_all_of_it() -> None:
    assert v.text("slug", "acme-corp", max_length=63, pattern=SLUG) == "acme-corp"
    for bad in ("Acme", "acme corp", "acme-", "acme\n"):
        message = _rejected(v.text, "slug", bad, max_length=63, pattern=SLUG)
        assert message == "slug has an invalid format"


def test_optional_text_lets_none_through() -> None:
    assert v.optional_text("description", None, max_length=5) is None
    assert v.optional_text("description", "ok", max_length=5) == "ok"
    assert "description" in _rejected(v.optional_text, "description", "toolong", max_length=5)


@settings(deadline=None, derandomize=True)  # same examples every run
@given(st.text(max_size=50))
def test_text_accepts_exactly_the_strings_without_forbidden_characters(value: str) -> None:
    forbidden = any(
        (ord(c) < 0x20 and c not in "\t\n\r") or 0xD800 <= ord(c) <= 0xDFFF for c in value
    )
    try:
        v.text("field", value, max_length=50, min_length=0)
    except ValidationError as exc:
        assert forbidden
        assert str(exc).startswith("field ")
    else:
        assert not forbidden


# -- datetimes -----------------------------------------------------------------


def test_aware_accepts_any_offset_and_returns_the_value() -> None:
    for tz in (UTC, timezone(timedelta(hours=-7, minutes=-30))):
        moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=tz)
        assert v.aware("created_at", moment) is moment
    assert v.optional_aware("completed_at", None) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime(2026, 1, 1), "must be timezone-aware"),
        (date(2026, 1, 1), "must be a datetime"),
        ("2026-01-01T00:00:00Z", "must be a datetime"),
        (1767225600, "must be a datetime"),
    ],
)
def test_aware_rejects_naive_and_non_datetimes(value: object, reason: str) -> None:
    assert _rejected(v.aware, "start", value).startswith(f"start {reason}")
    assert _rejected(v.optional_aware, "end", value).startswith(f"end {reason}")


def test_a_tzinfo_without_an_offset_counts_as_naive() -> None:
    class NoOffset(tzinfo):
        def utcoffset(self, dt: datetime | None) -> None:
            return None

        def dst(self, dt: datetime | None) -> None:
            return None

        def tzname(self, dt: datetime | None) -> None:
            return None

    assert "timezone-aware" in _rejected(v.aware, "at", datetime(2026, 1, 1, tzinfo=NoOffset()))


# -- integers ------------------------------------------------------------------


def test_int_range_bounds_are_inclusive() -> None:
    assert v.int_range("priority", v.INT32_MIN, minimum=v.INT32_MIN, maximum=v.INT32_MAX) == (
        -(2**31)
    )
    assert v.int_range("priority", v.INT32_MAX, minimum=v.INT32_MIN, maximum=v.INT32_MAX) == (
        2**31 - 1
    )
    message = _rejected(v.int_range, "priority", 2**31, minimum=v.INT32_MIN, maximum=v.INT32_MAX)
    assert message == "priority must be between -2147483648 and 2147483647"


@pytest.mark.parametrize("value", [True, False, 1.0, "1", Decimal(1), None])
def test_int_range_rejects_bools_and_non_ints(value: object) -> None:
    assert _rejected(v.int_range, "latency_ms", value, minimum=0, maximum=10) == (
        "latency_ms must be an integer"
    )


def test_limit_and_offset() -> None:
    assert v.limit(1) == 1 and v.limit(1000) == 1000
    assert v.offset(0) == 0 and v.offset(2**63 - 1) == 2**63 - 1
    bad_limits: tuple[object, ...] = (0, -1, 1001, True, "10")
    for bad in bad_limits:
        assert _rejected(v.limit, bad).startswith("limit must be")
    bad_offsets: tuple[object, ...] = (-1, 2**63, None, 1.5)
    for bad in bad_offsets:
        assert _rejected(v.offset, bad).startswith("offset must be")


# -- money ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["0", "0.000001", "99999999.999999", "1.500000000", "12.5", "0E-10", "1E+2", "-0"],
)
def test_money_accepts_what_numeric_14_6_stores_exactly(value: str) -> None:
    assert v.money("cost", Decimal(value)) == Decimal(value)


def test_money_accepts_an_int_as_a_decimal() -> None:
    assert v.money("cost", 3) == Decimal(3)
    assert isinstance(v.money("cost", 3), Decimal)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal("0.0000001"), "at most 6 decimal places"),
        (Decimal("1.0000005"), "at most 6 decimal places"),
        (Decimal("100000000"), "less than 10^8"),
        (Decimal("1E+8"), "less than 10^8"),
        (Decimal("-0.01"), "must not be negative"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (0.5, "must be a Decimal"),
        (True, "must be a Decimal"),
        ("1.00", "must be a Decimal"),
    ],
)
def test_money_rejects(value: object, reason: str) -> None:
    message = _rejected(v.money, "cost", value)
    assert message.startswith("cost ") and reason in message


def test_money_other_precision() -> None:
    assert v.money("price", Decimal("999.99"), max_digits=5, places=2) == Decimal("999.99")
    assert "less than 10^3" in _rejected(v.money, "price", Decimal("1000"), max_digits=5, places=2)


@settings(deadline=None, derandomize=True)  # same examples every run
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**9, places=8))
def test_money_accepts_exactly_what_quantizing_to_6_places_leaves_unchanged(value: Decimal) -> None:
    fits = value.quantize(Decimal("0.000001")) == value and value < Decimal("1e8")
    try:
        v.money("cost", value)
    except ValidationError:
        assert not fits
    else:
        assert fits


# -- uuids ---------------------------------------------------------------------


def test_uuid_value_accepts_uuids_and_their_strings() -> None:
    value = uuid4()
    assert v.uuid_value("org_id", value) is value
    assert v.uuid_value("org_id", str(value)) == value
    assert v.uuid_value("org_id", value.hex) == value
    assert v.optional_uuid("user_id", None) is None
    assert v.optional_uuid("user_id", str(value)) == value


@pytest.mark.parametrize("value", ["not-a-uuid", "", 123, b"0" * 16, None])
def test_uuid_value_rejects(value: object) -> None:
    assert _rejected(v.uuid_value, "org_id", value) == "org_id must be a UUID"


def test_optional_uuid_rejects_garbage() -> None:
    assert _rejected(v.optional_uuid, "app_id", "secret") == "app_id must be a UUID"
    assert isinstance(v.uuid_value("x", UUID(int=0)), UUID)


# -- booleans, enums, JSON, IP addresses ---------------------------------------


class Color(enum.StrEnum):
    RED = "red"
    GREEN = "green"


def test_boolean_accepts_only_bools() -> None:
    assert v.boolean("enabled", True) is True and v.boolean("enabled", False) is False
    for bad in (1, 0, "true", None):
        assert _rejected(v.boolean, "enabled", bad) == "enabled must be a boolean"


def test_member_accepts_members_and_their_values() -> None:
    assert v.member("color", Color.RED, Color) is Color.RED
    assert v.member("color", "green", Color) is Color.GREEN
    for bad in ("GREEN", "blue", "", None, 1, True):
        assert _rejected(v.member, "color", bad, Color) == "color must be one of: red, green"


def test_json_object_accepts_nested_json() -> None:
    details = {"a": [1, 2.5, None, True, {"b": "ü\n"}], "": {}}
    assert v.json_object("details", details) is details


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([], "must be a JSON object"),
        ("{}", "must be a JSON object"),
        (None, "must be a JSON object"),
        ({1: "x"}, "only string keys"),
        ({"a": float("nan")}, "NaN or infinity"),
        ({"a": [float("inf")]}, "NaN or infinity"),
        ({"a": "nul\x00secret"}, "NUL"),
        ({"nul\x00secret": 1}, "NUL"),
        ({"a": {1, 2}}, "only JSON values (not set)"),
        ({"a": Decimal(1)}, "only JSON values (not Decimal)"),
        ({"a": 10**4300}, "integers of more than 4300 digits"),
        ({"a": [-(10**4300)]}, "integers of more than 4300 digits"),
    ],
)
def test_json_object_rejects(value: object, reason: str) -> None:
    message = _rejected(v.json_object, "details", value)
    assert message.startswith("details ") and reason in message
    assert "secret" not in message


def test_json_object_depth_is_bounded() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(v.MAX_JSON_DEPTH + 1):
        inner["x"] = {}
        inner = inner["x"]
    assert "nested more than" in _rejected(v.json_object, "details", deep)


def test_json_document_is_the_encoded_object_within_its_size() -> None:
    big = 10**4300 - 1  # the largest integer accepted
    assert v.json_document("details", {"n": big}, max_bytes=5000) == b'{"n":%d}' % big
    assert "more than 100 bytes" in _rejected(
        v.json_document, "details", {"s": "secret" * 20}, max_bytes=100
    )
    deep: dict[str, Any] = {"a": {"b": {}}}
    assert v.json_document("details", deep, max_bytes=100, max_depth=2) == b'{"a":{"b":{}}}'
    assert "nested more than 1 levels" in _rejected(
        v.json_document, "details", deep, max_bytes=100, max_depth=1
    )


def test_optional_ip() -> None:
    assert v.optional_ip("ip_address", None) is None
    assert v.optional_ip("ip_address", "10.0.0.1") == "10.0.0.1"
    assert v.optional_ip("ip_address", "2001:DB8:0::1") == "2001:db8::1"
    assert v.optional_ip("ip_address", ipaddress.ip_address("192.0.2.7")) == "192.0.2.7"
    for bad in ("10.0.0.256", "host.example", 167772161, b"\x0a\x00\x00\x01", "fe80::1%eth0"):
        assert _rejected(v.optional_ip, "ip_address", bad) == "ip_address must be an IP address"
