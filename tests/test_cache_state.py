"""The admission cache's entries and ticket rule alone (llmcp.cache_base), no server:
the transitions a test through the real listener cannot stop in between."""

from __future__ import annotations

import uuid

from llmcp import cache_base
from llmcp.cache_base import MISS, CacheState, parse_notice

ORG, ROW = uuid.uuid4(), uuid.uuid4()
KEY, ROW_KEY = ("a", "hash"), ("a", ORG, ROW)


def listening(size: int = 10) -> CacheState:
    state = CacheState(size)
    state.subscribed()
    return state


def test_a_lost_listener_drops_everything_and_stores_nothing_until_back() -> None:
    state = listening()
    assert state.store(state.ticket(), KEY, "v", ROW_KEY)
    ticket = state.ticket()
    state.unsubscribed()
    assert state.get(KEY) is MISS and state.ticket() is None
    assert not state.store(ticket, KEY, "v", ROW_KEY)
    state.subscribed()  # a read begun before the loss still stores nothing
    assert not state.store(ticket, KEY, "v", ROW_KEY)
    assert state.store(state.ticket(), KEY, "v", ROW_KEY)


def test_a_notice_during_a_read_refuses_its_store_and_drops_the_row() -> None:
    state = listening()
    assert state.store(state.ticket(), ("a", "other"), "w", ROW_KEY)
    ticket = state.ticket()
    state.apply(f"a/{ORG}/{ROW}")
    assert state.get(("a", "other")) is MISS
    assert not state.store(ticket, KEY, "old", ROW_KEY)
    # a notice about another row does not hold it back
    other = state.ticket()
    state.apply(f"a/{ORG}/{uuid.uuid4()}")
    assert state.store(other, KEY, "new", ROW_KEY)


def test_forgotten_marks_raise_the_floor() -> None:
    state = listening()
    ticket = state.ticket()
    state.apply(f"a/{ORG}/{ROW}")
    for _ in range(cache_base.MARKS_KEPT):
        state.apply(f"u/{ORG}/{uuid.uuid4()}")
    assert not state.store(ticket, KEY, "old", ROW_KEY)  # its mark is gone, the floor is not


def test_a_notice_it_cannot_read_drops_everything() -> None:
    state = listening()
    assert state.store(state.ticket(), KEY, "v", ROW_KEY)
    state.apply("x/unknown")
    assert state.get(KEY) is MISS
    assert parse_notice("*") is None and parse_notice("p/not-a-uuid") is None
    assert parse_notice(f"p/{ORG}") == ("p", ORG, None)
