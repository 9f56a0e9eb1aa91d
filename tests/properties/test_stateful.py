"""A stateful model of the repositories: random sequences of operations, checked every step.

``RepositoryMachine`` drives the sync repositories through creates, updates
(current and stale versions), deletes with their cascades, constraint
violations, and transactions: ``begin()`` or ``transaction()`` blocks that
commit or roll back, nested savepoints that are released or rolled back,
statements that fail inside a transaction, transactions whose connection the
server drops, and ``pinned()`` blocks around any of it. An in-memory model of the six
tables predicts every outcome; after every step the database, read through the
repositories' own read methods, must equal the model, both inside the open
transaction and, from a second factory, the committed state outside it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from llmcp.dev.scratch import pooler_url
from llmcp.errors import (
    ConflictError,
    DatabaseUnavailableError,
    LlmcpError,
    NotFoundError,
    ReferenceViolationError,
    TransactionError,
    ValidationError,
)
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.generated.models import InferenceStatus, PolicyType, UserRole
from llmcp.inputs import NewApplication, NewInferenceRequest, NewOrganization, NewUser
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst
from tests.properties import model
from tests.properties.budget import examples, scaled
from tests.properties.test_fuzz import make_tenant
from tests.repositories.helpers import terminate_backends

T = TypeVar("T")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
TABLES = ("orgs", "apps", "users", "policies", "logs", "requests")
SCHEMA_NAMES = dict(
    zip(
        TABLES,
        ("organizations", "applications", "users", "policies", "audit_logs", "inference_requests"),
        strict=True,
    )
)
PLACEHOLDER = uuid.UUID(int=0)


def _look_alike(email: str) -> str:
    """``email`` with its "e"s spelled full-width (U+FF45): another string, the same key."""
    return email.replace("e", "\uff45")


class Boom(Exception):
    """Raised into a transaction block to roll it back."""


@dataclass
class Model:
    """The six tables as the model believes them to be, and rows of unknown ``updated_at``."""

    orgs: dict[uuid.UUID, Any] = field(default_factory=dict)
    apps: dict[uuid.UUID, Any] = field(default_factory=dict)
    users: dict[uuid.UUID, Any] = field(default_factory=dict)
    policies: dict[uuid.UUID, Any] = field(default_factory=dict)
    logs: dict[uuid.UUID, Any] = field(default_factory=dict)
    requests: dict[uuid.UUID, Any] = field(default_factory=dict)
    # rows a cascade updated (SET NULL fires the version trigger): updated_at is the
    # time of that statement, which the model does not know
    touched: set[uuid.UUID] = field(default_factory=set)

    def table(self, name: str) -> dict[uuid.UUID, Any]:
        table: dict[uuid.UUID, Any] = getattr(self, name)
        return table

    def tables(self) -> dict[str, dict[uuid.UUID, Any]]:
        """The tables under the schema's names (the same dicts), for ``model.delete``."""
        return {SCHEMA_NAMES[name]: self.table(name) for name in TABLES}

    def delete(self, table: str, row_id: uuid.UUID) -> None:
        """Delete a row with what follows (the audit trail stays, ids intact)."""
        self.touched |= model.delete(self.tables(), SCHEMA_NAMES[table], row_id)


@dataclass
class Frame:
    """An open transaction or savepoint, and the model as it was when it opened."""

    kind: str  # "begin" (tx.begin()), "block" (tx.transaction()), "savepoint"
    handle: Any
    saved: Model


def _without_updated_at(row: Any) -> Any:
    return msgspec.structs.replace(row, updated_at=EPOCH) if hasattr(row, "updated_at") else row


def read_all(repos: Repositories, org_ids: list[uuid.UUID]) -> dict[str, list[Any]]:
    """Every row of the six tables, through the repositories' listings (newest first),
    organization by organization of ``org_ids``: every organization ever made, since the
    audit trail of a deleted one stays."""
    tables: dict[str, list[Any]] = {name: [] for name in TABLES}
    tables["orgs"] = repos.organizations.list(1000)
    for org_id in org_ids:
        tables["apps"] += repos.applications.get_by_org_id(org_id, 1000)
        tables["users"] += repos.users.get_by_org_id(org_id, 1000)
        tables["policies"] += repos.policies.get_by_org_id(org_id, 1000)
        tables["logs"] += repos.audit_logs.get_by_org_id(org_id, 1000)
        tables["requests"] += repos.inference_requests.get_by_org_id(org_id, 1000)
    return tables


def assert_matches(found: dict[str, list[Any]], state: Model, org_ids: list[uuid.UUID]) -> None:
    """The database's rows equal the model's, listing by listing, in the listing order."""

    def norm(row: Any) -> Any:
        return _without_updated_at(row) if row.id in state.touched else row

    assert [norm(row) for row in found["orgs"]] == model.newest_first(state.orgs.values())
    for name in TABLES[1:]:
        rows = state.table(name).values()
        want = [
            row
            for org_id in org_ids
            for row in model.newest_first(r for r in rows if r.org_id == org_id)
        ]
        assert [norm(row) for row in found[name]] == [norm(row) for row in want], name


CREATED = st.none() | lst.clustered_datetimes(3)
ORGS = lst.new_organizations(lean=True, created_at=CREATED)
APPS = lst.new_applications(PLACEHOLDER, lean=True, created_at=CREATED)
USERS = lst.new_users(PLACEHOLDER, lean=True, created_at=CREATED)
POLICIES = lst.new_policies(PLACEHOLDER, lean=True, created_at=CREATED, priority=st.integers(-3, 3))
LOGS = lst.new_audit_logs(PLACEHOLDER, lean=True, created_at=CREATED)
REQUESTS = lst.new_inference_requests(PLACEHOLDER, [PLACEHOLDER], lean=True, created_at=CREATED)
DELTAS = st.integers(-3, 3).filter(bool)


class RepositoryMachine(RuleBasedStateMachine):
    """The repositories against the model; ``factory`` and ``observer`` are set by the test."""

    factory: RepositoryFactory
    observer: RepositoryFactory  # another factory: sees only what is committed
    owner_url: str  # the same database as a role that may empty it (see wipe)

    def __init__(self) -> None:
        super().__init__()
        self.repos = self.factory.repositories()
        self.tx = self.factory.transaction_manager()
        self.model = Model()
        self.stack: list[Frame] = []
        self.aborted = False  # a statement failed in the transaction (outside a savepoint)
        self.dead: dict[uuid.UUID, Any] = {}  # last rows of deleted ids, to update or delete again
        self.ever: dict[str, list[uuid.UUID]] = {name: [] for name in TABLES}  # every id made
        self.counter = 0
        self.pin: Any = None  # an entered pinned() block
        self.pinned_outside = False  # entered outside a transaction: it holds a connection

    # -- running calls whose outcome the model predicts -------------------------------

    def succeeds(self, call: Callable[[], T]) -> T:
        return call()

    def fails(self, error: type[LlmcpError], call: Callable[[], object], *, db: bool) -> None:
        """``call`` must raise ``error``. A failure the database reports would abort an open
        transaction: like a careful caller, run it in a savepoint of its own."""
        with pytest.raises(error):
            if db and self.stack:
                with self.tx.transaction():
                    call()
            else:
                call()

    def row(self, table: str, row_id: uuid.UUID) -> Any:
        """The model's row, or the last one seen of a deleted id."""
        return self.model.table(table).get(row_id) or self.dead[row_id]

    def bury(self, before: Model) -> None:
        """Remember the rows of ``before`` that the model no longer has."""
        for name in TABLES:
            for row_id, row in before.table(name).items():
                if row_id not in self.model.table(name):
                    self.dead[row_id] = row

    def restore(self, saved: Model) -> None:
        """Back to the model of a rolled-back transaction or savepoint."""
        current, self.model = self.model, saved
        self.bury(current)
        self.aborted = False

    # -- picking rows ---------------------------------------------------------------------

    def pick(
        self, data: st.DataObject, table: str, *, org_id: Any = None, optional: bool = False
    ) -> Any:
        """An id of ``table``: mostly a live one (of ``org_id``, when given), sometimes
        any id ever made (deleted, rolled back, of another organization), or None."""
        live = sorted(
            row_id
            for row_id, row in self.model.table(table).items()
            if org_id is None or table == "orgs" or row.org_id == org_id
        )
        options: list[st.SearchStrategy[Any]] = []
        if live:
            options += [st.sampled_from(live)] * 3
        if self.ever[table]:
            options.append(st.sampled_from(self.ever[table]))
        if optional or not options:
            options.append(st.none())
        return data.draw(st.one_of(options), label=f"{table} id")

    def next_id(self) -> uuid.UUID:
        """Ids in a scattered but replayable order (random ones would make the draws that
        depend on them differ when hypothesis replays an example)."""
        self.counter += 1
        return uuid.UUID(bytes=hashlib.sha256(str(self.counter).encode()).digest()[:16])

    def made(self, table: str, row: Any) -> Any:
        self.model.table(table)[row.id] = row
        self.ever[table].append(row.id)
        return row

    def _refs_ok(self, org_id: Any, app_id: Any = None, user_id: Any = None) -> bool:
        """Whether the org exists and the app and user (if any) exist in that org."""
        if org_id not in self.model.orgs:
            return False
        for table, ref in (("apps", app_id), ("users", user_id)):
            if ref is not None:
                found = self.model.table(table).get(ref)
                if found is None or found.org_id != org_id:
                    return False
        return True

    # -- creates ----------------------------------------------------------------------------

    @precondition(lambda self: not self.aborted and len(self.model.orgs) < 4)
    @rule(new=ORGS)
    def create_org(self, new: NewOrganization) -> None:
        new = msgspec.structs.replace(new, id=self.next_id())
        org = self.succeeds(lambda: self.repos.organizations.create(new))
        assert (org.name, org.slug, org.version) == (new.name, new.slug, 1)
        assert new.created_at is None or org.created_at == new.created_at
        self.made("orgs", org)

    @precondition(lambda self: not self.aborted and self.ever["orgs"])
    @rule(
        table=st.sampled_from(
            ["apps", "users", "policies", "logs", "requests", "taken key", "key taken elsewhere"]
        ),
        data=st.data(),
    )
    def create(self, table: str, data: st.DataObject) -> None:
        """A row referencing an organization (and an application and a user); a reference
        that is missing or of another organization is a ReferenceViolationError. Or a row
        whose unique key is taken: a ConflictError."""
        if table == "taken key":
            if self.model.orgs:
                self.create_with_a_taken_key(data)
            return
        if table == "key taken elsewhere":
            if self.model.users or self.model.requests:
                self.create_with_a_key_taken_elsewhere(data)
            return
        org_id = self.pick(data, "orgs")
        app_id = self.pick(data, "apps", org_id=org_id, optional=table != "requests")
        user_id = self.pick(data, "users", org_id=org_id, optional=True)
        if table == "requests" and app_id is None:
            return
        refs: dict[str, Any] = {"org_id": org_id}
        if table in ("policies", "logs", "requests"):
            refs |= {"app_id": app_id, "user_id": user_id}
        # per table a strategy of new rows and the method that creates one (rows are
        # untyped in this machine: the model holds rows of every table)
        creators: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Any]]] = {
            "apps": (APPS, self.repos.applications.create),
            "users": (USERS, self.repos.users.create),
            "policies": (POLICIES, self.repos.policies.create),
            "logs": (LOGS, self.repos.audit_logs.insert),
            "requests": (REQUESTS, self.repos.inference_requests.create),
        }
        strategy, create = creators[table]
        new = msgspec.structs.replace(data.draw(strategy, label="new"), id=self.next_id(), **refs)
        if not self._refs_ok(org_id, refs.get("app_id"), refs.get("user_id")):
            self.fails(ReferenceViolationError, lambda: create(new), db=True)
            return
        row = self.made(table, self.succeeds(lambda: create(new)))
        given = msgspec.structs.asdict(new)
        for name, value in msgspec.structs.asdict(row).items():
            if name in given and given[name] is not None:
                assert value == given[name], name
        if table == "requests":
            assert row.total_tokens == new.prompt_tokens + new.completion_tokens
        if table == "users":
            assert row.email_key == model.email_key(new.email)

    # -- unique keys taken --------------------------------------------------------------------

    def create_with_a_taken_key(self, data: st.DataObject) -> None:
        """A slug, id, e-mail (in another case), API key hash or request id that is taken."""
        choices = [name for name in ("orgs", "users", "apps", "requests") if self.model.table(name)]
        table = data.draw(st.sampled_from(choices), label="table")
        old = self.model.table(table)[data.draw(st.sampled_from(sorted(self.model.table(table))))]
        fresh = uuid.uuid4().hex
        if table == "orgs":
            new: Any = data.draw(
                st.sampled_from(
                    [
                        NewOrganization(name="dup", slug=old.slug),
                        NewOrganization(name="dup", slug=f"x-{fresh}", id=old.id),
                    ]
                )
            )
            call: Callable[[], object] = lambda: self.repos.organizations.create(new)  # noqa: E731
        elif table == "users":
            # the e-mail address in another case or a look-alike form (the same key), or
            # the Cognito subject (global: an identity) in any organization
            email = data.draw(st.sampled_from([old.email.upper(), _look_alike(old.email)]))
            new = data.draw(
                st.sampled_from(
                    [
                        NewUser(org_id=old.org_id, email=email, cognito_sub=fresh),
                        NewUser(
                            org_id=data.draw(st.sampled_from(sorted(self.model.orgs))),
                            email=f"{fresh}@example.com",
                            cognito_sub=old.cognito_sub,
                        ),
                    ]
                )
            )
            call = lambda: self.repos.users.create(new)  # noqa: E731
        elif table == "apps":  # an API key hash is global (an identity), in any organization
            new = NewApplication(
                org_id=data.draw(st.sampled_from(sorted(self.model.orgs))),
                name="dup",
                api_key_hash=old.api_key_hash,
            )
            call = lambda: self.repos.applications.create(new)  # noqa: E731
        else:
            new = NewInferenceRequest(
                org_id=old.org_id,
                app_id=old.app_id,
                request_id=old.request_id,
                provider="p",
                model="m",
            )
            call = lambda: self.repos.inference_requests.create(new)  # noqa: E731
        self.fails(ConflictError, call, db=True)

    def create_with_a_key_taken_elsewhere(self, data: st.DataObject) -> None:
        """An e-mail address (in any case or look-alike form) or a request id that another
        organization has: unique per organization only, so the row is created."""
        choices = [name for name in ("users", "requests") if self.model.table(name)]
        table = data.draw(st.sampled_from(choices), label="table")
        old = self.model.table(table)[data.draw(st.sampled_from(sorted(self.model.table(table))))]
        if table == "users":
            others = sorted(set(self.model.orgs) - {old.org_id})
            if not others:
                return
            email = data.draw(
                st.sampled_from([old.email, old.email.upper(), _look_alike(old.email)])
            )
            org_id = data.draw(st.sampled_from(others), label="org")
            if model.email_taken(self.model.users.values(), org_id, email):
                return
            new: Any = NewUser(
                org_id=org_id, email=email, cognito_sub=uuid.uuid4().hex, id=self.next_id()
            )
            row = self.made(table, self.succeeds(lambda: self.repos.users.create(new)))
            assert (row.email, row.email_key) == (email, model.email_key(email))
            return
        apps = sorted(a.id for a in self.model.apps.values() if a.org_id != old.org_id)
        if not apps:
            return
        app = self.model.apps[data.draw(st.sampled_from(apps), label="app")]
        if model.request_id_taken(self.model.requests.values(), app.org_id, old.request_id):
            return
        new = NewInferenceRequest(
            org_id=app.org_id,
            app_id=app.id,
            request_id=old.request_id,
            provider="p",
            model="m",
            id=self.next_id(),
        )
        row = self.made(table, self.succeeds(lambda: self.repos.inference_requests.create(new)))
        assert row.request_id == old.request_id

    # -- updates: current version, stale version, missing row -------------------------------

    @precondition(lambda self: not self.aborted and self.ever["orgs"])
    @rule(
        table=st.sampled_from(["orgs", "apps", "users", "policies", "requests"]),
        delta=st.just(0) | st.just(0) | st.integers(-3, 3).filter(bool),
        data=st.data(),
    )
    def update(self, table: str, delta: int, data: st.DataObject) -> None:
        """With the row's current version (``delta`` 0) the update succeeds; with another
        version it is a ConflictError (a ValidationError below 1) and changes nothing; a
        deleted row is a NotFoundError."""
        if not self.ever[table]:
            return
        row_id = self.pick(data, table)
        current = self.row(table, row_id)
        changes = data.draw(self.changes(table, current), label="changes")
        update = self._updaters()[table]
        version = current.version + delta
        # the organization the update names (row.org_id): mostly the row's own
        scope = {} if table == "orgs" else {"org_id": self.scope_of(data, table, row_id)}
        attempt = msgspec.structs.replace(current, version=version, **changes, **scope)
        own = table == "orgs" or attempt.org_id == current.org_id
        if version < 1:
            self.fails(ValidationError, lambda: update(attempt), db=False)
        elif row_id not in self.model.table(table) or not own:
            self.fails(NotFoundError, lambda: update(attempt), db=False)
        elif delta != 0:
            self.fails(ConflictError, lambda: update(attempt), db=False)
        elif table == "users" and model.email_taken(
            self.model.users.values(), attempt.org_id, attempt.email, besides=row_id
        ):
            self.fails(ConflictError, lambda: update(attempt), db=True)
        else:
            updated = self.succeeds(lambda: update(attempt))
            expected = msgspec.structs.replace(attempt, version=current.version + 1)
            if table == "users":
                expected = msgspec.structs.replace(
                    expected, email_key=model.email_key(attempt.email)
                )
            assert _without_updated_at(updated) == _without_updated_at(expected)
            self.model.table(table)[row_id] = updated
            self.model.touched.discard(row_id)

    def _updaters(self) -> dict[str, Callable[[Any], Any]]:
        """The update method of each table."""
        return {
            "orgs": self.repos.organizations.update,
            "apps": self.repos.applications.update,
            "users": self.repos.users.update,
            "policies": self.repos.policies.update,
            "requests": self.repos.inference_requests.update,
        }

    def _updatable_tables(self) -> list[str]:
        tables = ("apps", "users", "policies", "requests", "orgs")
        return [table for table in tables if self.model.table(table)]

    @precondition(lambda self: not self.aborted and self._updatable_tables())
    @rule(data=st.data())
    def lost_update(self, data: st.DataObject) -> None:
        """Two writers read the same row; the first update wins, the second writes back its
        copy of an older version: a ConflictError, and the first update stays."""
        table = data.draw(st.sampled_from(self._updatable_tables()), label="table")
        row_id = data.draw(st.sampled_from(sorted(self.model.table(table))), label="row")
        update = self._updaters()[table]
        copy_read = self.row(table, row_id)
        first = msgspec.structs.replace(
            copy_read, **data.draw(self.changes(table, copy_read), label="first")
        )
        updated = self.succeeds(lambda: update(first))
        self.model.table(table)[row_id] = updated
        self.model.touched.discard(row_id)
        stale = msgspec.structs.replace(
            copy_read, **data.draw(self.changes(table, copy_read), label="second")
        )
        self.fails(ConflictError, lambda: update(stale), db=False)

    def changes(self, table: str, current: Any) -> st.SearchStrategy[dict[str, Any]]:
        """New values for the columns an update of ``table`` may change."""
        if table == "orgs":
            slug = st.builds(lambda: {"slug": f"renamed-{uuid.uuid4().hex[:12]}"})
            return st.builds(
                lambda name, other: {"name": name} | other,
                lst.texts(lean=True),
                slug | st.builds(dict),
            )
        if table == "apps":
            return st.fixed_dictionaries(
                {
                    "name": lst.texts(lean=True),
                    "description": st.none() | lst.texts(min_size=0, lean=True),
                }
            )
        if table == "users":
            # the same address in another case or in a look-alike form (the same key), a
            # new one, or one that a user of another organization has (e-mail addresses
            # are unique per organization); a conflicting one: see create_with_a_taken_key
            users = self.model.users.values()
            elsewhere = sorted(
                user.email
                for user in users
                if user.org_id != current.org_id
                and not model.email_taken(users, current.org_id, user.email, besides=current.id)
            )
            emails = st.sampled_from(
                [current.email, current.email.upper(), _look_alike(current.email)]
            )
            emails |= st.builds(lambda: f"renamed.{uuid.uuid4().hex}@example.com")
            if elsewhere:
                emails |= st.sampled_from(elsewhere)
            return st.fixed_dictionaries(
                {
                    "role": st.sampled_from(UserRole),
                    "display_name": st.none() | st.just("renamed"),
                    "email": emails,
                }
            )
        if table == "policies":
            return st.builds(
                lambda config, priority, enabled: {
                    "config": config,
                    "policy_type": PolicyType(type(config).__struct_config__.tag),
                    "priority": priority,
                    "enabled": enabled,
                },
                lst.policy_configs(lean=True),
                st.integers(-3, 3),
                st.booleans(),
            )
        return st.builds(
            lambda status, prompt, completion, cost, done: {
                "status": status,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "cost": cost,
                "completed_at": current.created_at if done else None,
            },
            st.sampled_from(InferenceStatus),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            st.decimals(min_value=0, max_value=1000, places=6),
            st.booleans(),
        )

    # -- deletes, with their cascades -----------------------------------------------------

    @precondition(lambda self: not self.aborted and self.ever["orgs"])
    @rule(
        table=st.sampled_from(["policies", "policies", "users", "users", "apps", "apps", "orgs"]),
        data=st.data(),
    )
    def delete(self, table: str, data: st.DataObject) -> None:
        """Delete a row: what follows, follows (rows deleted, references set to NULL, the
        audit trail left as it is); a row that is gone, or asked for under another
        organization, is a NotFoundError."""
        if not self.ever[table]:
            return
        row_id = self.pick(data, table)
        if table == "orgs":
            self._delete_row(
                table,
                row_id,
                lambda: self.repos.organizations.delete(row_id),
                lambda: self.repos.organizations.get_by_id(row_id),
                own=True,
            )
            return
        org_id = self.scope_of(data, table, row_id)
        repo: Any = {"apps": self.repos.applications, "users": self.repos.users}.get(
            table, self.repos.policies
        )
        self._delete_row(
            table,
            row_id,
            lambda: repo.delete(org_id, row_id),
            lambda: repo.get_by_id(org_id, row_id),
            own=org_id == self.row(table, row_id).org_id,
        )

    def _delete_row(
        self,
        table: str,
        row_id: uuid.UUID,
        delete: Callable[[], None],
        get: Callable[[], object],
        *,
        own: bool,
    ) -> None:
        if row_id not in self.model.table(table) or not own:
            self.fails(NotFoundError, delete, db=False)
            return
        before = copy.deepcopy(self.model)
        self.succeeds(delete)
        self.model.delete(table, row_id)
        self.bury(before)
        assert get() is None

    def scope_of(self, data: st.DataObject, table: str, row_id: uuid.UUID) -> uuid.UUID:
        """The organization a call about ``row_id`` names: mostly the row's own, sometimes
        another one (the row is then as missing as a deleted one)."""
        own = self.row(table, row_id).org_id
        others = sorted(set(self.ever["orgs"]) - {own})
        if not others:
            return own  # type: ignore[no-any-return]
        return data.draw(
            st.sampled_from([own, own, own]) | st.sampled_from(others), label="org of the call"
        )

    # -- transactions and savepoints -------------------------------------------------------

    @precondition(lambda self: not self.stack)
    @rule(style=st.sampled_from(["begin", "block"]))
    def begin(self, style: str) -> None:
        if style == "begin":
            handle: Any = self.tx.begin()
        else:
            handle = self.tx.transaction()
            handle.__enter__()
        assert self.tx.current() is not None
        self.stack.append(Frame(style, handle, copy.deepcopy(self.model)))

    @precondition(lambda self: self.stack and not self.aborted and len(self.stack) < 4)
    @rule()
    def open_savepoint(self) -> None:
        handle = self.tx.transaction()
        handle.__enter__()
        self.stack.append(Frame("savepoint", handle, copy.deepcopy(self.model)))

    @precondition(lambda self: len(self.stack) > 1 and not self.aborted)
    @rule()
    def release_savepoint(self) -> None:
        frame = self.stack.pop()
        frame.handle.__exit__(None, None, None)

    @precondition(lambda self: len(self.stack) > 1)
    @rule()
    def roll_back_savepoint(self) -> None:
        """A savepoint whose block raised: undone, and the transaction usable again."""
        frame = self.stack.pop()
        assert frame.handle.__exit__(Boom, Boom(), None) is False  # the exception goes on
        self.restore(frame.saved)

    @precondition(lambda self: len(self.stack) == 1)
    @rule()
    def commit(self) -> None:
        """Commit; a transaction whose statement failed is refused (TransactionError) and
        rolled back, never silently "committed"."""
        frame = self.stack.pop()

        def finish() -> None:
            if frame.kind == "begin":
                frame.handle.commit()
            else:
                frame.handle.__exit__(None, None, None)

        if self.aborted:
            with pytest.raises(TransactionError):
                finish()
            self.restore(frame.saved)
        else:
            finish()
        assert self.tx.current() is None

    @precondition(lambda self: len(self.stack) == 1)
    @rule()
    def roll_back(self) -> None:
        frame = self.stack.pop()
        if frame.kind == "begin":
            frame.handle.rollback()
        else:
            assert frame.handle.__exit__(Boom, Boom(), None) is False
        self.restore(frame.saved)
        assert self.tx.current() is None

    @precondition(lambda self: self.stack and not self.aborted and self.model.orgs)
    @rule(data=st.data())
    def fail_in_transaction(self, data: st.DataObject) -> None:
        """A statement fails and the caller catches the error: the transaction (or the
        innermost savepoint) is aborted until it is rolled back."""
        org = self.model.orgs[data.draw(st.sampled_from(sorted(self.model.orgs)))]
        with pytest.raises(ConflictError):
            self.repos.organizations.create(NewOrganization(name="dup", slug=org.slug))
        self.aborted = True

    # not through a pooler: it finds the backend by the client's pid, which is the pooler's
    @precondition(lambda self: self.stack and pooler_url() is None)
    @rule(commit=st.booleans(), savepoints_raise=st.booleans())
    def lose_the_connection(self, commit: bool, savepoints_raise: bool) -> None:
        """The server drops the transaction's connection (a restart, a terminated backend):
        the next call fails, and the transaction ends with nothing committed, whether the
        caller then commits (DatabaseUnavailableError) or rolls back (quietly)."""
        current = self.tx.current()
        assert current is not None
        pid = current.connection.info.backend_pid
        terminate_backends(self.factory.database.config.url, pid)
        with pytest.raises(DatabaseUnavailableError):
            self.repos.organizations.list(1)
        while len(self.stack) > 1:  # savepoints end quietly: there is nothing to release
            savepoint = self.stack.pop()
            if savepoints_raise:
                assert savepoint.handle.__exit__(Boom, Boom(), None) is False
            else:
                savepoint.handle.__exit__(None, None, None)
        frame = self.stack.pop()
        if commit:
            with pytest.raises(DatabaseUnavailableError):
                if frame.kind == "begin":
                    frame.handle.commit()
                else:
                    frame.handle.__exit__(None, None, None)
        elif frame.kind == "begin":
            frame.handle.rollback()
        else:
            assert frame.handle.__exit__(Boom, Boom(), None) is False
        self.restore(frame.saved)
        assert self.tx.current() is None
        if self.pin is not None and self.pinned_outside:  # the pinned connection died too
            block, self.pin = self.pin, None
            block.__exit__(None, None, None)

    # -- pinned connections -------------------------------------------------------------------

    @precondition(lambda self: self.pin is None)
    @rule()
    def pin_a_connection(self) -> None:
        """Every call from here on runs on one connection (the transaction's, if one is open)."""
        self.pin = self.tx.pinned()
        conn = self.pin.__enter__()
        self.pinned_outside = not self.stack
        assert self.tx.bound_connection() is conn

    @precondition(
        lambda self: (
            self.pin is not None
            and (
                not self.pinned_outside
                or not self.stack
                or [f.kind for f in self.stack] == ["begin"]
            )
        )
    )
    @rule()
    def unpin(self) -> None:
        """Leave the pinned block (blocks nest, so only a ``begin()`` may still be open): a
        transaction begun in the block and left open is rolled back, with an error."""
        block, self.pin = self.pin, None
        if self.pinned_outside and self.stack:
            frame = self.stack.pop()
            with pytest.raises(TransactionError):
                block.__exit__(None, None, None)
            self.restore(frame.saved)
            assert self.tx.current() is None
        else:
            block.__exit__(None, None, None)
        if not self.stack:
            assert self.tx.bound_connection() is None

    # -- the check after every step ----------------------------------------------------------

    @invariant()
    def database_equals_model(self) -> None:
        if self.aborted:  # an aborted transaction refuses every statement until rolled back
            with pytest.raises(TransactionError):
                self.repos.organizations.list(1)
            return
        org_ids = sorted(set(self.ever["orgs"]))
        assert_matches(read_all(self.repos, org_ids), self.model, org_ids)
        # another factory, outside the transaction, sees only what was committed
        committed = self.stack[0].saved if self.stack else self.model
        assert_matches(read_all(self.observer.repositories(), org_ids), committed, org_ids)

    def teardown(self) -> None:
        while self.stack:  # roll back whatever is open, innermost first
            frame = self.stack.pop()
            if frame.kind == "begin":
                frame.handle.rollback()
            else:
                frame.handle.__exit__(Boom, Boom(), None)
        if self.pin is not None:
            self.pin.__exit__(None, None, None)
        wipe(self.owner_url)


@pytest.fixture(scope="module")
def observer(private_factory: RepositoryFactory) -> Iterator[RepositoryFactory]:
    """A second factory on the same database (its own pool, no shared transaction)."""
    config = dataclasses.replace(private_factory.database.config, min_size=0)
    with RepositoryFactory.connect(config) as factory:
        yield factory


def wipe(owner_url: str) -> None:
    """Empty every table, the audit trail included: it refuses TRUNCATE and DELETE to
    everyone, the owner too, so its guard is switched off for this one transaction (DDL:
    the owner's or a superuser's), and the ids of the next example start afresh."""
    with psycopg.connect(owner_url) as conn:
        conn.execute("TRUNCATE organizations CASCADE")
        conn.execute("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
        conn.execute("TRUNCATE audit_logs")
        conn.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only")


def test_repositories_behave_like_the_model(
    private_factory: RepositoryFactory, observer: RepositoryFactory, private_owner_url: str
) -> None:
    machine = type(
        "Machine",
        (RepositoryMachine,),
        {"factory": private_factory, "observer": observer, "owner_url": private_owner_url},
    )
    run_state_machine_as_test(
        machine, settings=settings(max_examples=scaled(40), stateful_step_count=40)
    )


# per attribute of a tenant: its repository, and the changes of an update of a row
UPDATES: dict[str, tuple[str, Callable[[Any], dict[str, object]]]] = {
    "org": ("organizations", lambda row: {"name": "second", "slug": f"s-{uuid.uuid4().hex}"}),
    "app": ("applications", lambda row: {"name": "second", "description": "second"}),
    "user": ("users", lambda row: {"display_name": "second", "role": UserRole.ADMIN}),
    "policy": ("policies", lambda row: {"priority": row.priority + 1, "enabled": False}),
    "request": ("inference_requests", lambda row: {"status": InferenceStatus.FAILED}),
}


@examples(30)
@given(
    rows=st.lists(st.sampled_from(sorted(UPDATES)), min_size=1, max_size=5, unique=True),
    writes=st.integers(1, 3),
    data=st.data(),
)
def test_every_stale_copy_is_refused_and_changes_nothing(
    llmcp_factory: RepositoryFactory, rows: list[str], writes: int, data: st.DataObject
) -> None:
    """Read a row, let ``writes`` updates go through, then write back the copy read first
    (or any other version but the current one): a ConflictError, and the row is unchanged."""
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):
        tenant = make_tenant(repos)
        for name in rows:
            table, change = UPDATES[name]
            repo = getattr(repos, table)
            first_read = current = getattr(tenant, name)
            for _ in range(writes):
                current = repo.update(msgspec.structs.replace(current, **change(current)))
            assert current.version == first_read.version + writes

            def other_version(v: int, now: int = current.version) -> bool:
                return v != now

            version = data.draw(
                st.integers(1, 2**31 - 1).filter(other_version) | st.just(first_read.version),
                label="stale version",
            )
            stale = msgspec.structs.replace(first_read, version=version, **change(first_read))
            with pytest.raises(ConflictError):
                repo.update(stale)
            if name == "org":
                assert repo.get_by_id(current.id) == current
            else:
                assert repo.get_by_id(current.org_id, current.id) == current
