"""Time-ordered ids: the layout of RFC 9562 version 7, and always increasing."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from llmcp import ids
from llmcp.ids import uuid7


def millis(value: uuid.UUID) -> int:
    return value.int >> 80


def test_an_id_is_a_version_7_uuid_that_starts_with_the_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= millis(value) <= after + 1  # +1: one borrowed millisecond at most here


def test_an_id_is_the_uuid_its_constructor_makes_of_the_same_value() -> None:
    """uuid7 sets the UUID's slots itself: the result is indistinguishable from
    ``uuid.UUID(int=...)`` (equal, hashed, printed, pickled, copied, compared alike)."""
    import copy
    import pickle

    for value in [uuid7() for _ in range(100)]:
        same = uuid.UUID(int=value.int)
        assert type(value) is uuid.UUID
        assert value == same and hash(value) == hash(same) and str(value) == str(same)
        assert repr(value) == repr(same) and value.bytes == same.bytes
        assert value.is_safe is same.is_safe is uuid.SafeUUID.unknown
        assert pickle.loads(pickle.dumps(value)) == value and copy.deepcopy(value) == value
        assert not value < same and not value > same


def test_ids_increase_and_never_repeat() -> None:
    made = [uuid7() for _ in range(50_000)]  # many share a millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert len({millis(v) for v in made}) < len(made)  # the counter did order some


def test_ids_keep_increasing_when_the_clock_steps_back_or_stands_still(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = uuid7()
    frozen = (millis(first) - 5_000) * 1_000_000  # five seconds back, and stopped there
    monkeypatch.setattr(ids, "_now_ns", lambda: frozen)
    made = [first] + [uuid7() for _ in range(10_000)]  # more than 4096 per millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in made)


def test_ids_made_by_many_threads_are_unique_and_increase_per_thread() -> None:
    results: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(out: list[uuid.UUID]) -> None:
        out.extend(uuid7() for _ in range(10_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [v for out in results for v in out]
    assert len(set(everything)) == len(everything) == 40_000
    assert all(out == sorted(out) for out in results)
