"""The admission cache never serves an answer older than a notice that has arrived.

Hypothesis interleaves, on a real server with the real listener: committed changes
(policies created, changed, deleted; applications renamed or given a new key;
users renamed), lookups through the repositories, reads split in two around
other steps (the ticket and the database read, then the store: a read in flight
while changes commit and their notices arrive), waits for the notices, and the
listener's connection killed; and races: every key read in flight across one
change, its notice arrived or not or the listener reconnected, then stored.
The reference: the database's answer for every key after every change, and
for every change whether its notice has arrived
(notices come in commit order, one per change here, numbered per subscription)
or the cache has re-subscribed since it committed (everything was dropped
then). A lookup must return the answer of that latest known change or a later one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcp.cache_async import AsyncAdmissionCache
from llmcp.cache_base import Key, RowKey, application_key, policies_key, user_key
from llmcp.config import DatabaseConfig
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.inputs import NewApplication, NewOrganization, NewPolicy, NewUser
from llmcp.policy_config import RateLimitConfig
from llmcp.testing import TestDatabases
from tests.properties.budget import examples

LISTENER = f"props-{uuid.uuid4().hex[:8]}"  # the factory's application name


@dataclasses.dataclass
class Env:
    runner: asyncio.Runner
    cached: AsyncRepositoryFactory  # with the cache: the reader
    plain: AsyncRepositoryFactory  # without: the writer, and the reference's reads
    direct_url: str

    @property
    def cache(self) -> AsyncAdmissionCache:
        assert self.cached.admission_cache is not None
        return self.cached.admission_cache


@pytest.fixture(scope="module")
def env(databases: TestDatabases, private_name: str) -> Iterator[Env]:
    url, direct = databases.url(private_name), databases.direct_url(private_name)
    plain_config = DatabaseConfig(url=url, min_size=1, max_size=4, acquire_timeout=10.0)
    cached_config = dataclasses.replace(
        plain_config, admission_cache_size=1000, listen_url=direct, application_name=LISTENER
    )
    with asyncio.Runner() as runner:
        cached = runner.run(AsyncRepositoryFactory.connect(cached_config))
        plain = runner.run(AsyncRepositoryFactory.connect(plain_config))
        yield Env(runner, cached, plain, direct)
        runner.run(cached.close())
        runner.run(plain.close())


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within 10 s"
        await asyncio.sleep(0.002)


@dataclasses.dataclass
class Change:
    epoch: int  # the cache's subscription when it committed
    ordinal: int  # its notice's place among the notices of that subscription
    keys: set[Key]


class Reference:
    """The answers after each change, and which changes the cache must know of."""

    def __init__(self, cache: AsyncAdmissionCache) -> None:
        self.cache = cache
        self.changes: list[Change] = []
        self.history: dict[Key, list[tuple[int, Any]]] = {}
        self.epoch = cache.state.subscriptions
        self.epoch_notices = cache.state.notices  # notices when that subscription began
        self.in_epoch = 0  # changes committed during it

    def committed(self, keys: set[Key]) -> None:
        assert self.cache.state.subscriptions == self.epoch, "the listener reconnected by itself"
        self.in_epoch += 1
        self.changes.append(Change(self.epoch, self.in_epoch, keys))

    def record(self, key: Key, answer: Any) -> None:
        """``key``'s answer after the latest change (a new key had none before)."""
        self.history.setdefault(key, [(0, None)]).append((len(self.changes), answer))

    def known(self, change: Change) -> bool:
        state = self.cache.state
        if state.subscriptions != change.epoch:
            return True  # re-subscribed since: everything was dropped
        return change.ordinal <= state.notices - self.epoch_notices

    def allowed(self, key: Key) -> list[Any]:
        """The answers a lookup of ``key`` may return now."""
        latest = max(
            (i + 1 for i, c in enumerate(self.changes) if key in c.keys and self.known(c)),
            default=0,
        )
        versions = self.history[key]
        floor = max(i for i, (after, _) in enumerate(versions) if after <= latest)
        return [answer for _, answer in versions[floor:]]

    def resubscribed(self) -> None:
        self.epoch = self.cache.state.subscriptions
        self.epoch_notices = self.cache.state.notices
        self.in_epoch = 0

    def all_arrived(self) -> bool:
        state = self.cache.state
        return (
            state.listening
            and state.subscriptions == self.epoch
            and state.notices - self.epoch_notices >= self.in_epoch
        )


@dataclasses.dataclass
class World:
    """One example's tenants: two organizations of two applications and two users."""

    orgs: list[uuid.UUID]
    apps: list[Any]  # Application rows, as they are now
    users: list[Any]
    policies: list[Any]
    old_hashes: list[str]

    def policy_keys(self, org: uuid.UUID) -> list[Key]:
        return [
            policies_key(org, app.id, user)
            for app in self.apps
            if app.org_id == org
            for user in [None] + [u.id for u in self.users if u.org_id == org]
        ]


async def build(repos: AsyncRepositories, reference: Reference) -> World:
    orgs, apps, users, policies = [], [], [], []
    for _ in range(2):
        word = uuid.uuid4().hex[:10]
        org = await repos.organizations.create(NewOrganization(name="o", slug=f"cache-{word}"))
        orgs.append(org.id)
        for a in range(2):
            apps.append(await repos.applications.create(NewApplication(
                org_id=org.id, name=f"a{a}", api_key_hash=uuid.uuid4().hex * 2)))  # fmt: skip
        for u in range(2):
            users.append(await repos.users.create(NewUser(
                org_id=org.id, email=f"u{u}-{word}@example.com", cognito_sub=f"{word}-{u}")))  # fmt: skip
        for level in range(3):
            app_id = apps[-1].id if level == 1 else None
            user_id = users[-1].id if level == 2 else None
            policies.append(await repos.policies.create(NewPolicy(
                org_id=org.id, app_id=app_id, user_id=user_id, name=f"p{level}",
                config=RateLimitConfig(requests=10 + level, window_seconds=60))))  # fmt: skip
            reference.committed(set())  # one notice each; before any answer is kept
    return World(orgs, apps, users, policies, [])


async def truth(repos: AsyncRepositories, key: Key) -> Any:
    kind = key[0]
    if kind == "a":
        return await repos.applications.get_by_api_key_hash(str(key[1]))
    if kind == "u":
        return await repos.users.get_by_cognito_sub(str(key[1]))
    org, app, user = key[1], key[2], key[3]
    return tuple(await repos.policies.get_applicable_policies(org, app, user))  # type: ignore[arg-type]


async def served(repos: AsyncRepositories, key: Key) -> Any:
    return await truth(repos, key)  # the same calls, on the cached factory


def every_key(world: World) -> list[Key]:
    keys = [application_key(a.api_key_hash) for a in world.apps]
    keys += [application_key(h) for h in world.old_hashes]
    keys += [user_key(u.cognito_sub) for u in world.users]
    return keys + [k for org in world.orgs for k in world.policy_keys(org)]


def row_of(key: Key, answer: Any) -> RowKey | None:
    if key[0] == "p":
        return ("p", key[1], None)  # type: ignore[return-value]
    return None if answer is None else (str(key[0]), answer.org_id, answer.id)


CHANGES = ["policy", "new", "drop", "app", "key", "user"]
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["read", "begin", "finish"]), st.just(""), st.integers(0, 99)),
        st.tuples(
            st.sampled_from(["change", "race"]), st.sampled_from(CHANGES), st.integers(0, 99)
        ),
        # a reconnection waits its backoff (25-75 ms): rarer than the rest
        st.tuples(st.sampled_from(["settle"] * 3 + ["reconnect"]), st.just(""), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


@examples(25)
@given(plan=steps)
def test_no_answer_older_than_an_arrived_notice_is_served(
    env: Env, plan: list[tuple[str, str, int]]
) -> None:
    env.runner.run(run_plan(env, plan))


async def run_plan(env: Env, plan: list[tuple[str, str, int]]) -> None:
    state = env.cache.state
    await until(lambda: state.listening, "listening")
    reference = Reference(env.cache)
    writer, reader = env.plain.repositories(), env.cached.repositories()
    world = await build(writer, reference)
    for key in every_key(world):
        reference.record(key, await truth(writer, key))
    in_flight: list[tuple[int | None, Key, Any]] = []
    try:
        for step, kind, n in plan:
            keys = every_key(world)
            if step == "read":  # every key, through the repositories
                for key in keys:
                    await check(reader, reference, key)
            elif step == "begin":  # a read in flight: its ticket, then the database
                key = keys[n % len(keys)]
                ticket = state.ticket()
                in_flight.append((ticket, key, await truth(writer, key)))
            elif step == "finish" and in_flight:  # ... and, steps later, its store
                ticket, key, answer = in_flight.pop(n % len(in_flight))
                row = row_of(key, answer)
                if row is not None:
                    state.store(ticket, key, answer, row)
                await check(reader, reference, key)
            elif step == "change":
                changed = await change(writer, world, kind, n)
                reference.committed(changed)
                for key in changed:
                    reference.record(key, await truth(writer, key))
            elif step == "race":  # every key read in flight across one change
                flying = [(state.ticket(), key, await truth(writer, key)) for key in keys]
                changed = await change(writer, world, kind, n)
                reference.committed(changed)
                for key in changed:
                    reference.record(key, await truth(writer, key))
                if n % 3 == 1:
                    await until(reference.all_arrived, "every notice")
                elif n % 3 == 2:
                    await reconnect(env, reference)
                for ticket, key, answer in flying:
                    row = row_of(key, answer)
                    if row is not None:
                        state.store(ticket, key, answer, row)
                for key in every_key(world):
                    await check(reader, reference, key)
            elif step == "settle":
                await until(reference.all_arrived, "every notice")
            elif step == "reconnect":
                await reconnect(env, reference)
    finally:  # the next example starts with every notice of this one in
        try:
            await until(reference.all_arrived, "every notice")
        except AssertionError:
            await reconnect(env, reference)


async def check(reader: AsyncRepositories, reference: Reference, key: Key) -> None:
    allowed = reference.allowed(key)  # no await between this and a hit's answer
    answer = await served(reader, key)
    assert answer in allowed, f"{key[0]}: served an answer older than a notice that arrived"


async def change(repos: AsyncRepositories, world: World, kind: str, n: int) -> set[Key]:
    """Commit one change (one notice) and name the keys whose answer it may change."""
    if kind == "drop" and world.policies:
        policy = world.policies.pop(n % len(world.policies))
        await repos.policies.delete(policy.org_id, policy.id)
        return set(world.policy_keys(policy.org_id))
    if kind == "policy" and world.policies:
        i = n % len(world.policies)
        policy = world.policies[i]
        world.policies[i] = await repos.policies.update(msgspec.structs.replace(
            policy, priority=policy.priority + 1, enabled=n % 3 != 0))  # fmt: skip
        return set(world.policy_keys(policy.org_id))
    if kind in ("policy", "new", "drop"):
        org = world.orgs[n % 2]
        apps = [a.id for a in world.apps if a.org_id == org]
        users = [u.id for u in world.users if u.org_id == org]
        level = (n // 2) % 3
        world.policies.append(await repos.policies.create(NewPolicy(
            org_id=org, app_id=apps[n % 2] if level == 1 else None,
            user_id=users[n % 2] if level == 2 else None, name=f"new{n}", priority=n,
            config=RateLimitConfig(requests=n + 1, window_seconds=60))))  # fmt: skip
        return set(world.policy_keys(org))
    if kind in ("app", "key"):
        i = n % len(world.apps)
        app = world.apps[i]
        fresh = uuid.uuid4().hex * 2 if kind == "key" else app.api_key_hash
        world.apps[i] = await repos.applications.update(
            msgspec.structs.replace(app, name=f"app{n}", api_key_hash=fresh)
        )
        if kind == "key":
            world.old_hashes.append(app.api_key_hash)
        return {application_key(app.api_key_hash), application_key(fresh)}
    i = n % len(world.users)
    world.users[i] = await repos.users.update(
        msgspec.structs.replace(world.users[i], display_name=f"user{n}")
    )
    return {user_key(world.users[i].cognito_sub)}


async def reconnect(env: Env, reference: Reference) -> None:
    """Kill the listener's connection; wait until it has subscribed again."""
    state = env.cache.state
    subscriptions = state.subscriptions
    async with await psycopg.AsyncConnection.connect(env.direct_url, autocommit=True) as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"{LISTENER}-cache",),
        )
    await until(lambda: state.subscriptions > subscriptions and state.listening, "re-subscribed")
    reference.resubscribed()
