"""Keyset cursors: opaque, exact round trip, and anything not made by us is rejected."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcp.errors import ValidationError
from llmcp.paging import MAX_CURSOR_LENGTH, Page, decode_cursor, encode_cursor

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
SCOPE = "audit_logs.org:6f1c2b1e-8a53-4c5e-9f0b-3d7a9e2c4b10"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MOMENT = datetime(2026, 11, 26, 12, 34, 56, 789012, tzinfo=UTC)
ROW = UUID("0b8f8e1c-4c3a-4f7e-9a6b-2d1e0f9c8b7a")

offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
aware_datetimes = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    offsets,
)
uuids = st.uuids()


def _invalid(cursor: object, scope: str = SCOPE, secret: bytes = SECRET) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_cursor(cursor, scope, secret=secret)
    assert str(caught.value) == "invalid cursor"


# -- round trip --------------------------------------------------------------


def test_round_trip_keeps_microseconds_and_returns_utc() -> None:
    cursor = encode_cursor(SCOPE, MOMENT, ROW, secret=SECRET)
    created_at, row_id = decode_cursor(cursor, SCOPE, secret=SECRET)
    assert (created_at, row_id) == (MOMENT, ROW)
    assert created_at.tzinfo is UTC
    assert created_at.microsecond == 789012


def test_cursor_is_short_urlsafe_and_unpadded() -> None:
    cursor = encode_cursor(SCOPE, MOMENT, ROW, secret=SECRET)
    assert set(cursor) <= set(ALPHABET)
    assert len(cursor) < 80
    assert str(ROW) not in cursor and ROW.hex not in cursor


def test_another_offset_is_converted_to_the_same_instant() -> None:
    local = MOMENT.astimezone(timezone(timedelta(hours=-5, minutes=-30)))
    created_at, _ = decode_cursor(
        encode_cursor(SCOPE, local, ROW, secret=SECRET), SCOPE, secret=SECRET
    )
    assert created_at == MOMENT and created_at.utcoffset() == timedelta(0)


@settings(deadline=None, derandomize=True)  # same examples every run
@given(aware_datetimes, uuids, st.text(max_size=100))
def test_round_trip_for_any_aware_datetime_uuid_and_scope(
    moment: datetime, row_id: UUID, scope: str
) -> None:
    cursor = encode_cursor(scope, moment, row_id, secret=SECRET)
    assert len(cursor) <= MAX_CURSOR_LENGTH
    created_at, decoded_id = decode_cursor(cursor, scope, secret=SECRET)
    assert created_at == moment and created_at.tzinfo is UTC
    assert decoded_id == row_id


def test_naive_created_at_is_refused_when_encoding() -> None:
    with pytest.raises(ValidationError):
        encode_cursor(SCOPE, datetime(2026, 1, 1), ROW, secret=SECRET)


def test_a_short_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        encode_cursor(SCOPE, MOMENT, ROW, secret=b"short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        decode_cursor("AAAA", SCOPE, secret=b"")


# -- rejection -----------------------------------------------------------------


def test_a_cursor_for_another_scope_or_secret_is_rejected() -> None:
    cursor = encode_cursor(SCOPE, MOMENT, ROW, secret=SECRET)
    _invalid(cursor, scope="audit_logs.org:00000000-0000-0000-0000-000000000000")
    _invalid(cursor, scope="inference_requests.org:" + SCOPE.split(":")[1])
    _invalid(cursor, scope=SCOPE + " ")
    _invalid(cursor, secret=OTHER_SECRET)


@pytest.mark.parametrize(
    "cursor",
    [None, 42, b"AAAA", "", "A", "AAAA", "A" * (MAX_CURSOR_LENGTH + 1), "not base64!", "AA==",
     "AAAA AAAA", "ÄÄÄÄ", "\x00"],
)  # fmt: skip
def test_garbage_is_rejected(cursor: object) -> None:
    _invalid(cursor)


def test_padding_and_foreign_characters_are_rejected() -> None:
    cursor = encode_cursor(SCOPE, MOMENT, ROW, secret=SECRET)
    _invalid(cursor + "=")
    _invalid(cursor + "==")
    _invalid(cursor[:-1] + "+")  # standard base64's characters are not ours
    _invalid(cursor[:-1] + "/")
    _invalid(cursor[:10] + "\n" + cursor[10:])  # b64decode would skip it; we do not


def test_a_well_signed_cursor_with_a_malformed_payload_is_rejected() -> None:
    # Signed with the right secret but not a [micros, uuid bytes] pair: still "invalid cursor".
    from llmcp import paging

    for payload in (b"\x90", msgspec.msgpack.encode([1, b"short"]), msgspec.msgpack.encode("x")):
        raw = paging._VERSION + payload + paging._tag(SECRET, SCOPE, payload)
        _invalid(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    big = msgspec.msgpack.encode([10**18, ROW.bytes])  # beyond datetime's range
    raw = paging._VERSION + big + paging._tag(SECRET, SCOPE, big)
    _invalid(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


def test_an_unknown_version_is_rejected() -> None:
    raw = bytearray(
        base64.urlsafe_b64decode(_padded(encode_cursor(SCOPE, MOMENT, ROW, secret=SECRET)))
    )
    raw[0] = 2
    _invalid(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


@pytest.mark.parametrize("micros", [0, 1, 200, 70_000, 2**31, -1])
def test_unused_bits_of_the_last_character_are_checked(micros: int) -> None:
    # Near the epoch the payload is shorter and its length no multiple of 3, so the last
    # character carries unused bits: a lenient decoder would read a changed one the same.
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    cursor = encode_cursor(SCOPE, moment, ROW, secret=SECRET)
    assert decode_cursor(cursor, SCOPE, secret=SECRET)[0] == moment
    for char in ALPHABET.replace(cursor[-1], ""):
        _invalid(cursor[:-1] + char)


@settings(deadline=None, derandomize=True)  # same examples every run
@given(aware_datetimes, uuids, st.data())
def test_any_single_character_change_is_rejected(
    moment: datetime, row_id: UUID, data: st.DataObject
) -> None:
    cursor = encode_cursor(SCOPE, moment, row_id, secret=SECRET)
    index = data.draw(st.integers(0, len(cursor) - 1), label="index")
    replacement = data.draw(st.sampled_from(ALPHABET.replace(cursor[index], "")), label="char")
    _invalid(cursor[:index] + replacement + cursor[index + 1 :])


@settings(deadline=None, derandomize=True)  # same examples every run
@given(aware_datetimes, uuids, st.data())
def test_any_truncation_or_extension_is_rejected(
    moment: datetime, row_id: UUID, data: st.DataObject
) -> None:
    cursor = encode_cursor(SCOPE, moment, row_id, secret=SECRET)
    cut = data.draw(st.integers(0, len(cursor) - 1), label="cut")
    _invalid(cursor[:cut])
    _invalid(cursor[cut:] if cut else cursor[1:])
    _invalid(cursor + data.draw(st.text(ALPHABET, min_size=1, max_size=8), label="tail"))


@settings(deadline=None, derandomize=True)  # same examples every run
@given(aware_datetimes, uuids, st.text(max_size=40), st.text(max_size=40))
def test_a_cursor_for_one_scope_is_rejected_for_any_other(
    moment: datetime, row_id: UUID, scope: str, other: str
) -> None:
    cursor = encode_cursor(scope, moment, row_id, secret=SECRET)
    if other != scope:
        _invalid(cursor, scope=other)


@settings(deadline=None, derandomize=True)  # same examples every run
@given(st.text(max_size=MAX_CURSOR_LENGTH + 10))
def test_random_text_is_rejected_and_nothing_else_escapes(cursor: str) -> None:
    _invalid(cursor)


# -- page ----------------------------------------------------------------------


def test_page_is_a_frozen_generic_struct() -> None:
    page = Page(items=[1, 2, 3], next_cursor="abc")
    with pytest.raises(AttributeError):
        page.next_cursor = None  # type: ignore[misc]
    assert Page[int](items=[]).next_cursor is None
    encoded = msgspec.json.encode(page)
    assert msgspec.json.decode(encoded, type=Page[int]) == page
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"items": ["x"], "next_cursor": null}', type=Page[int])


def test_pages_walk_a_listing_without_gaps_or_repeats() -> None:
    rows = sorted(
        ((MOMENT - timedelta(microseconds=i // 3), uuid4()) for i in range(25)), reverse=True
    )

    def page_after(cursor: str | None, size: int = 4) -> Page[tuple[datetime, UUID]]:
        rest = rows
        if cursor is not None:
            key = decode_cursor(cursor, SCOPE, secret=SECRET)
            rest = [row for row in rows if row < key]
        items = rest[:size]
        more = len(rest) > size
        last = items[-1] if more else None
        return Page(
            items=items,
            next_cursor=encode_cursor(SCOPE, *last, secret=SECRET) if last else None,
        )

    seen: list[tuple[datetime, UUID]] = []
    cursor: str | None = None
    while True:
        page = page_after(cursor)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == rows


def _padded(cursor: str) -> str:
    return cursor + "=" * (-len(cursor) % 4)
