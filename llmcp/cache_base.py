"""What both admission caches share without I/O: the entries, their invalidation and
the rule that keeps a read from storing an answer older than a notice that has arrived.

Entries are keyed by what a request presents: an API key hash, a Cognito subject,
(org, app, user) for the applicable policies. Each entry belongs to one row key
``(table, org_id, row id or None)``, what a notice names (see
dbmate/migrations/*_notify_admission_cache.sql): ``a/<org>/<id>``, ``u/<org>/<id>``,
``p/<org>`` (every policy answer of that organization).

A read takes a *ticket* (the number of events seen so far) before it asks the
database, and may store its answer only if no notice about its row key, and no
loss or gain of the subscription, has arrived since: otherwise the answer may
predate a change whose notice was applied while the read was in flight, and
storing it would serve that change's old answer until the next notice. A change
committed after the read's snapshot sends its notice after that commit, so it
arrives after the ticket was taken: the check always sees it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from typing import Final

import msgspec

from llmcp.generated.models import Application, User

logger = logging.getLogger("llmcp.cache")

CHANNEL: Final = "llmcp_cache"
"""The channel of the triggers' notices."""

RowKey = tuple[str, uuid.UUID, uuid.UUID | None]
"""What a notice names: table letter (a, u, p), organization, row id (None: every
policy answer of the organization)."""
Key = tuple[object, ...]
"""An entry's key: ("a", key_hash), ("u", cognito_sub), ("p", org, app, user)."""

MaybeApplication = Application | None
MaybeUser = User | None


class _Miss:
    """The answer of :meth:`CacheState.get` when nothing is cached for a key."""

    __slots__ = ()


MISS: Final = _Miss()

MARKS_KEPT = 4096
"""How many row keys remember the event of their latest notice, for reads in flight;
an older mark is forgotten and raises the floor instead (a read older than it
stores nothing), so memory stays bounded whatever the rate of notices."""


class CacheStats(msgspec.Struct, frozen=True):
    """A snapshot of an admission cache (counters since it was made)."""

    listening: bool  # subscribed: it serves and stores answers only then
    entries: int
    max_entries: int
    hits: int
    misses: int
    stored: int
    refused: int  # answers not stored: a notice (or a reconnection) came while they were read
    notices: int  # notices received and applied
    subscriptions: int  # times the listener (re)subscribed


def parse_notice(payload: str) -> RowKey | None:
    """The row key a notice names, or None for "drop everything" (``*``, or a payload
    this version does not understand: dropping is always safe)."""
    table, _, rest = payload.partition("/")
    try:
        if table == "p":
            return ("p", uuid.UUID(rest), None)
        if table in ("a", "u"):
            org, _, row = rest.partition("/")
            return (table, uuid.UUID(org), uuid.UUID(row))
    except ValueError:
        pass
    if payload != "*":
        logger.warning("admission cache: a notice it cannot read; dropping everything")
    return None


class CacheState:
    """The entries (a bounded LRU), their index by row key, and the events seen.

    Thread-safe (one lock, held for a few dictionary operations): the sync cache
    is read from many threads while its listener thread applies notices.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, tuple[object, RowKey]] = OrderedDict()
        self._by_row: dict[RowKey, set[Key]] = {}
        self._marks: OrderedDict[RowKey, int] = OrderedDict()  # row key -> event of its notice
        self._events = 0  # notices, losses and gains of the subscription, so far
        self._floor = 0  # a read whose ticket is below this stores nothing
        self._listening = False
        self._hits = self._misses = self._stored = self._refused = 0
        self._notices = self._subscriptions = 0

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def notices(self) -> int:
        """Notices received and applied so far."""
        return self._notices

    @property
    def subscriptions(self) -> int:
        """Times the listener subscribed (1 after the first, +1 per reconnection)."""
        return self._subscriptions

    def get(self, key: Key) -> object:
        """The cached answer for ``key``, or :data:`MISS`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return MISS
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def ticket(self) -> int | None:
        """Take before reading the database; None while not listening (store nothing)."""
        return self._events if self._listening else None

    def store(self, ticket: int | None, key: Key, value: object, row: RowKey) -> bool:
        """Keep ``value`` for ``key`` unless an event that may concern it came after
        ``ticket``; evict the least recently used entry beyond ``max_entries``."""
        with self._lock:
            if (
                ticket is None
                or not self._listening
                or ticket < self._floor
                or self._marks.get(row, -1) > ticket
            ):
                self._refused += 1
                return False
            self._forget(key)
            self._entries[key] = (value, row)
            self._by_row.setdefault(row, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._forget(next(iter(self._entries)))
            self._stored += 1
            return True

    def apply(self, payload: str) -> None:
        """A notice arrived: drop what it names (everything if it names no row key)."""
        row = parse_notice(payload)
        with self._lock:
            self._events += 1
            self._notices += 1
            if row is None:
                self._drop_all()
                return
            for key in self._by_row.pop(row, ()):
                del self._entries[key]
            self._marks[row] = self._events
            self._marks.move_to_end(row)
            if len(self._marks) > MARKS_KEPT:
                _, event = self._marks.popitem(last=False)
                self._floor = max(self._floor, event)

    def subscribed(self) -> None:
        """The listener is subscribed again: from now on every change is noticed.
        Reads begun before may predate changes made while it was not: they store nothing."""
        with self._lock:
            self._events += 1
            self._drop_all()
            self._listening = True
            self._subscriptions += 1

    def unsubscribed(self) -> None:
        """The listener lost its connection (or stops): notices may be missed, so
        everything is dropped and nothing is served or stored until it is back."""
        with self._lock:
            self._events += 1
            self._listening = False
            self._drop_all()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                listening=self._listening,
                entries=len(self._entries),
                max_entries=self.max_entries,
                hits=self._hits,
                misses=self._misses,
                stored=self._stored,
                refused=self._refused,
                notices=self._notices,
                subscriptions=self._subscriptions,
            )

    def _forget(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._by_row.get(entry[1])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_row[entry[1]]

    def _drop_all(self) -> None:
        self._entries.clear()
        self._by_row.clear()
        self._marks.clear()
        self._floor = self._events


def application_key(key_hash: str) -> Key:
    return ("a", key_hash)


def user_key(cognito_sub: str) -> Key:
    return ("u", cognito_sub)


def policies_key(org_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID | None) -> Key:
    return ("p", org_id, app_id, user_id)
