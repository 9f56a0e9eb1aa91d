"""Time-ordered ids (UUID version 7, RFC 9562) for the append-heavy tables.

A random (version 4) primary key sends every insert to a random leaf of the
key's B-tree: once the index outgrows memory each insert reads and dirties a
page of its own, and leaves split half full. A version 7 id starts with the
time in milliseconds, so new rows go to the right edge of the index, as with a
sequence, while ids stay unguessable enough and can be made by any client.

Audit logs and inference requests get them; organizations, applications,
users and policies keep random ids (few rows, and their ids do not reveal when
they were made).
"""

from __future__ import annotations

import os
import struct
import threading
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_COUNTER_MAX = 0xFFF  # rand_a: 12 bits, used as a counter within one millisecond

_now_ns = time.time_ns  # the clock (tests stop it or turn it back)
_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Random bits come from os.urandom 4 KiB at a time, read as 512 integers of 64
# bits: a call per id would cost a system call each, and each releases the GIL,
# which a busy thread (the audit writer's) then holds for up to a switch interval.
_RANDOM_CHUNK = 4096
_as_integers = struct.Struct(f">{_RANDOM_CHUNK // 8}Q").unpack
_random: tuple[int, ...] = ()
_taken = 0

# uuid.UUID(int=...) checks its arguments in Python (about 1 us, more than the rest
# of uuid7): the value is made here in range, so it is set as UUID's own
# constructor sets it (its two slots), as Python 3.14's UUID._from_int does
_new_uuid = uuid.UUID.__new__
_set_slot = object.__setattr__
_SAFETY_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_from_int(value: int) -> uuid.UUID:
    made = _new_uuid(uuid.UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", _SAFETY_UNKNOWN)
    return made


def uuid7() -> uuid.UUID:
    """A new version 7 UUID, greater than every one made before in this process.

    48 bits of Unix time in milliseconds, then a 12-bit counter that orders ids
    of the same millisecond (RFC 9562, method 1), then 62 random bits. Should
    the clock step back or the counter run out, the time part goes on from the
    last id instead, so ids stay increasing.
    """
    global _last_ms, _counter, _random, _taken
    now_ms = _now_ns() // 1_000_000
    with _lock:
        if _taken == len(_random):
            _random, _taken = _as_integers(os.urandom(_RANDOM_CHUNK)), 0
        random_bits = _random[_taken] >> 2  # 62 bits
        _taken += 1
        if now_ms > _last_ms:
            _last_ms, _counter = now_ms, 0
        elif _counter < _COUNTER_MAX:
            _counter += 1
        else:  # 4096 ids in one millisecond, or the clock went back: borrow the next one
            _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    return _uuid_from_int((ms << 80) | _VERSION_7 | (counter << 64) | _VARIANT | random_bits)
