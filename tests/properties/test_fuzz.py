"""Fuzzing every public repository method, and valid values read back verbatim.

The fuzz: each public method of the six repositories (found by introspection,
so a new method cannot be forgotten) is called with arguments, and input
structs with fields, that are valid or replaced by hypothesis-generated bad
input: empty, huge, NUL and other control characters, arbitrary Unicode with
lone surrogates, SQL fragments, wrong types, naive datetimes, out-of-range and
non-finite numbers. Whatever happens, only ``llmcp.errors.LlmcpError`` may come
out, the transaction stays usable, and no pooled connection is left checked out.

The properties at the end of this module pin four escapes the fuzz found (lone
surrogates in a policy config, aware datetimes outside years 1..9999 in UTC,
committing a transaction whose statement failed, non-struct arguments); they
were xfail(strict=True) until the fixes landed.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import ipaddress
import string
import time
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcp.errors import LlmcpError, TransactionError, ValidationError
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.generated.models import AuditAction, InferenceStatus
from llmcp.inputs import (
    NewApplication,
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
    NewUser,
)
from llmcp.policy_config import (
    ContentFilterConfig,
    CostBudgetConfig,
    ModelAllowlistConfig,
    RateLimitConfig,
)
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst
from tests.properties import model
from tests.properties.budget import examples

# the repositories, read off the factory's Repositories, so that a new one is fuzzed too
REPOSITORY_CLASSES: dict[str, type] = typing.get_type_hints(Repositories)
REPOSITORIES = tuple(REPOSITORY_CLASSES)

# -- bad input ------------------------------------------------------------------------------

CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\x7f"]
SURROGATES = st.characters(categories=["Cs"])


def bad_texts(*, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Strings the validation must refuse, or pass as data: empty, huge, with control
    characters, arbitrary Unicode (with lone surrogates unless told), SQL fragments."""
    any_char = st.characters(codec="utf-8")
    if surrogates:
        any_char = any_char | SURROGATES
    options = [
        st.just(""),
        st.sampled_from(["x" * 100_000, "é" * 1_000_001, "'; DROP TABLE organizations; --" * 50]),
        st.builds(
            lambda a, c, b: a + c + b,
            st.text(max_size=5),
            st.sampled_from(CONTROLS),
            st.text(max_size=5),
        ),
        st.sampled_from(lst.SQL_FRAGMENTS),
        st.text(any_char, max_size=30),
        st.text(string.printable, max_size=30),
    ]
    if surrogates:
        options.append(st.builds(lambda a, s: a + s, st.text(max_size=5), SURROGATES))
    return st.one_of(options)


WRONG_TYPES = st.sampled_from(
    [
        None, 0, -1, 1.5, float("nan"), float("inf"), True, False,
        b"bytes", bytearray(b"x"), [], {}, (), {1, 2}, object(),
        Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("1e1000"),
        uuid.UUID(int=0), datetime.date(2024, 1, 1), datetime.time(12),
        datetime.timedelta(days=1), "00000000-0000-0000-0000-000000000000", "not-a-uuid",
        ipaddress.ip_address("::1"), NewOrganization(name="x", slug="x"),
        {"type": "rate_limit", "requests": 1, "window_seconds": 1}, {"a": float("nan")},
        {1: "not a str key"}, AuditAction.USER_CREATED, InferenceStatus.FAILED,
    ]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**31, -(2**31) - 1, 2**31 - 1, 2**63, -(2**63) - 1, 2**64, 10**100, -1]),
    st.floats(),
    st.decimals(),
    st.sampled_from([Decimal("1e14"), Decimal("0.0000001"), Decimal("-0.01"), Decimal("1E+30")]),
)
NAIVE = st.datetimes()


def _beyond_python(moment: datetime.datetime, hours: int) -> datetime.datetime:
    """An aware datetime whose UTC instant is just outside years 1..9999."""
    return moment.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=hours)))


EDGE_DATETIMES = st.one_of(
    st.builds(
        _beyond_python,
        st.datetimes(datetime.datetime(1, 1, 1), datetime.datetime(1, 1, 1, 22)),
        st.integers(23, 23),
    ),
    st.builds(
        _beyond_python,
        st.datetimes(datetime.datetime(9999, 12, 31, 1), datetime.datetime(9999, 12, 31, 23, 59)),
        st.integers(-23, -23),
    ),
)


def anything(*, surrogates: bool = True) -> st.SearchStrategy[Any]:
    """Any bad value, or a valid-looking one of another kind."""
    return st.one_of(
        bad_texts(surrogates=surrogates),
        WRONG_TYPES,
        NUMBERS,
        NAIVE,
        EDGE_DATETIMES,
        lst.aware_datetimes(),
        st.uuids(),
        st.none(),
    )


def _config(kind: type[Any], **fields: Any) -> Any:
    """``kind(**fields)``; when its own checks refuse them at construction, the fields
    as a plain dict (another bad config)."""
    try:
        return kind(**fields)
    except Exception:
        return {"type": kind.__struct_config__.tag, **fields}


def bad_configs(*, surrogates: bool = True) -> st.SearchStrategy[Any]:
    """Policy configs of the right struct type with fields out of their constraints."""
    text = bad_texts(surrogates=surrogates)
    anything_ = anything(surrogates=surrogates)
    return st.one_of(
        st.builds(_config, st.just(RateLimitConfig), requests=anything_, window_seconds=anything_),
        st.builds(
            _config,
            st.just(CostBudgetConfig),
            max_cost=anything_,
            currency=text,
            alert_at=anything_,
        ),
        st.builds(
            _config, st.just(ModelAllowlistConfig), models=st.lists(text, max_size=3) | anything_
        ),
        st.builds(
            _config,
            st.just(ContentFilterConfig),
            categories=st.lists(text, max_size=3),
            threshold=anything_,
            action=text,
        ),
        anything_,
    )


# Built once: a strategy is validated on its first draw, which is slow for big ones.
ANYTHING = anything()
BAD_CONFIGS = bad_configs()


# -- a tenant to call the methods on ------------------------------------------------------------


@dataclass
class Tenant:
    org: Any
    app: Any
    user: Any
    policy: Any
    log: Any
    request: Any


def make_tenant(repos: Repositories) -> Tenant:
    token = uuid.uuid4().hex[:12]
    org = repos.organizations.create(NewOrganization(name="fuzz", slug=f"fuzz-{token}"))
    app = repos.applications.create(
        NewApplication(org_id=org.id, name="app", api_key_hash=f"{token:0>64}")
    )
    user = repos.users.create(
        NewUser(org_id=org.id, email=f"{token}@example.com", cognito_sub=token)
    )
    policy = repos.policies.create(
        NewPolicy(org_id=org.id, name="p", config=RateLimitConfig(requests=1, window_seconds=1))
    )
    log = repos.audit_logs.insert(
        NewAuditLog(
            org_id=org.id,
            action=AuditAction.USER_CREATED,
            resource_type="user",
            request_id=token,
        )
    )
    request = repos.inference_requests.create(
        NewInferenceRequest(org_id=org.id, app_id=app.id, request_id=token, provider="p", model="m")
    )
    return Tenant(org, app, user, policy, log, request)


# -- the arguments of each method ----------------------------------------------------------------

PLACEHOLDER = uuid.UUID(int=0)
INPUTS: dict[str, st.SearchStrategy[Any]] = {
    "organizations": lst.new_organizations(),
    "applications": lst.new_applications(PLACEHOLDER),
    "users": lst.new_users(PLACEHOLDER),
    "policies": lst.new_policies(PLACEHOLDER),
    "audit_logs": lst.new_audit_logs(PLACEHOLDER),
    "inference_requests": lst.new_inference_requests(PLACEHOLDER, [PLACEHOLDER]),
}
OWN = object()  # "the tenant's own value" (an id, a slug, ...)
ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.just(OWN) | st.uuids(),
    "slug": st.just(OWN) | lst.slugs(),
    "api_key_hash": st.just(OWN) | lst.api_key_hashes(),
    "email": st.just(OWN) | lst.emails(),
    "cognito_sub": st.just(OWN) | lst.cognito_subs(),
    "request_id": st.just(OWN) | lst.texts(),
    "limit": st.integers(1, 1000),
    "offset": st.integers(0, 10) | st.integers(0, 2**63 - 1),
    "cursor": st.none() | st.text(string.ascii_letters + string.digits + "-_", max_size=80),
    "action": st.sampled_from(AuditAction) | st.sampled_from([a.value for a in AuditAction]),
    "status": st.sampled_from(InferenceStatus),
    "start": lst.aware_datetimes(),
    "end": lst.aware_datetimes(),
    "before": lst.aware_datetimes(),
    "reason": lst.texts(max_size=1000),
}
ROWS = {"org": "org", "app": "app", "user": "user", "policy": "policy", "request": "request"}


@st.composite
def new_input(draw: st.DrawFn, repo: str, tenant: Tenant) -> Any:
    """A valid input struct for ``repo``, naming the tenant's rows."""
    new = draw(INPUTS[repo])
    refs: dict[str, Any] = {}
    if repo != "organizations":
        refs["org_id"] = tenant.org.id
    if repo in ("policies", "audit_logs", "inference_requests"):
        refs["app_id"] = draw(st.sampled_from([tenant.app.id, None]))
        refs["user_id"] = draw(st.sampled_from([tenant.user.id, None]))
    if repo == "inference_requests":
        refs["app_id"] = tenant.app.id
    return msgspec.structs.replace(new, **refs)


@st.composite
def valid_argument(draw: st.DrawFn, name: str, repo: str, tenant: Tenant) -> Any:
    """A valid value for parameter ``name`` of a method of ``repo``."""
    if name == "new":
        return draw(new_input(repo, tenant))
    if name in ROWS:
        return getattr(tenant, ROWS[name])
    if name == "org_id":  # mostly the tenant's own organization: the call reaches the database
        value = draw(st.just(OWN) | st.just(OWN) | ARGUMENTS["id"])
        return tenant.org.id if value is OWN else value
    if (name.endswith("_id") and name != "request_id") or name == "request_pk":
        value = draw(ARGUMENTS["id"])
        if value is OWN:
            rows = [tenant.org, tenant.app, tenant.user, tenant.policy, tenant.log, tenant.request]
            return draw(st.sampled_from([row.id for row in rows]))
        return value
    if name not in ARGUMENTS:
        raise AssertionError(f"no fuzz strategy for parameter {name!r} of {repo}: add one")
    value = draw(ARGUMENTS[name])
    if value is OWN:
        owner = {
            "slug": tenant.org,
            "api_key_hash": tenant.app,
            "email": tenant.user,
            "cognito_sub": tenant.user,
            "request_id": tenant.request,
        }[name]
        return getattr(owner, name)
    return value


@st.composite
def fuzzed_struct(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` (an input struct or a row) with some of its fields replaced by bad input."""
    fields = list(msgspec.structs.asdict(valid))
    chosen = draw(st.sets(st.sampled_from(fields), min_size=1, max_size=3), label="fuzzed fields")
    changes = {}
    for name in chosen:
        changes[name] = draw(BAD_CONFIGS if name == "config" else ANYTHING, label=name)
    return msgspec.structs.replace(valid, **changes)


def _methods() -> list[str]:
    return [
        f"{repo}.{name}"
        for repo, cls in REPOSITORY_CLASSES.items()
        for name in sorted(dir(cls))
        if not name.startswith("_") and callable(getattr(cls, name))
    ]


METHODS = _methods()


@st.composite
def calls(
    draw: st.DrawFn, repos: Repositories, method: str, tenant: Tenant
) -> tuple[Callable[[], object], dict[str, Any]]:
    """A call of ``method`` whose arguments are each valid, fuzzed, or (for structs)
    valid with some fields fuzzed; at least one argument is not plainly valid."""
    repo, name = method.split(".")
    bound = getattr(getattr(repos, repo), name)
    arguments: dict[str, Any] = {}
    parameters = list(inspect.signature(bound).parameters)
    spoiled = draw(st.sampled_from(parameters), label="spoiled parameter")
    for parameter in parameters:
        valid = draw(valid_argument(parameter, repo, tenant), label=parameter)
        how = draw(st.sampled_from(["valid", "fuzz"]), label=f"{parameter} how")
        if parameter == spoiled or how == "fuzz":
            if isinstance(valid, msgspec.Struct):
                valid = draw(fuzzed_struct(valid), label=parameter)
            else:
                valid = draw(ANYTHING, label=parameter)
        arguments[parameter] = valid
    return (lambda: bound(**arguments)), arguments


def _all_returned(database: Any, wait: float = 2.0) -> bool:
    """Whether every pooled connection is back in the pool (within ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        stats = database.pool_stats()
        if stats.available == stats.size:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def test_every_public_method_is_fuzzed() -> None:
    """The fuzz finds its methods by introspection: this lists them, so that a new one shows."""
    assert "organizations.create" in METHODS and "inference_requests.page_by_status" in METHODS
    assert len(METHODS) >= 50


@examples(20)
@pytest.mark.parametrize("method", METHODS)
@given(data=st.data())
def test_bad_input_raises_only_llmcp_errors(
    private_factory: RepositoryFactory, method: str, data: st.DataObject
) -> None:
    repos = private_factory.repositories()
    tx = private_factory.transaction_manager()
    database = private_factory.database
    in_transaction = data.draw(st.booleans(), label="in a transaction")
    if in_transaction:
        with rolled_back(tx):
            tenant = make_tenant(repos)
            call, _ = data.draw(calls(repos, method, tenant), label="call")
            try:
                with tx.transaction():  # a savepoint: an error leaves the transaction usable
                    call()
            except LlmcpError:
                pass
            repos.organizations.list(1)  # the transaction is still usable
    else:  # autocommit: each statement on a pooled connection (this module's own database)
        tenant = make_tenant(repos)
        call, _ = data.draw(calls(repos, method, tenant), label="call")
        with contextlib.suppress(LlmcpError):
            call()
        writer = getattr(private_factory, "audit_writer", None)
        if writer is not None:  # it writes async_insert's rows on pooled connections
            writer.flush(timeout=10)
        assert _all_returned(database), "a pooled connection was not given back"
    assert tx.current() is None


# -- valid values are stored and read back verbatim ------------------------------------------


def _same_json(a: Any, b: Any) -> bool:
    """jsonb keeps numbers, not their Python type: 1e16 may come back as an int."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return not isinstance(b, bool) and float(a) == float(b)
    return type(a) is type(b) and a == b


def _ascii_swapcase(text: str) -> str:
    return "".join(c.swapcase() if c.isascii() else c for c in text)


def _given(new: Any, row: Any) -> None:
    """Every field given in ``new`` is in ``row`` exactly (None: left to the defaults)."""
    stored = msgspec.structs.asdict(row)
    for name, value in msgspec.structs.asdict(new).items():
        if value is None and name in ("id", "created_at"):
            continue
        if name == "details":
            assert _same_json(stored[name], value), name
        else:
            assert stored[name] == value, name
            assert type(stored[name]) is type(value) or isinstance(value, str), name


@examples(40)
@pytest.mark.parametrize("table", REPOSITORIES)
@given(data=st.data())
def test_valid_values_are_stored_and_read_back_verbatim(
    llmcp_factory: RepositoryFactory, table: str, data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):
        tenant = make_tenant(repos)
        new = data.draw(new_input(table, tenant), label="new")
        if table == "organizations":
            row: Any = repos.organizations.create(new)
            assert repos.organizations.get_by_slug(new.slug) == row
        elif table == "applications":
            row = repos.applications.create(new)
            assert repos.applications.get_by_api_key_hash(new.api_key_hash) == row
        elif table == "users":
            row = repos.users.create(new)
            assert row.email_key == model.email_key(new.email)
            assert repos.users.get_by_cognito_sub(new.cognito_sub) == row
            assert repos.users.get_by_email(new.org_id, new.email) == row
            assert repos.users.get_by_email(new.org_id, _ascii_swapcase(new.email)) == row
        elif table == "policies":
            row = repos.policies.create(new)
        elif table == "audit_logs":
            row = repos.audit_logs.insert(new)
            if new.request_id is not None:
                assert row in repos.audit_logs.get_by_request_id(new.org_id, new.request_id)
        else:
            row = repos.inference_requests.create(new)
            assert repos.inference_requests.get_by_request_id(new.org_id, new.request_id) == row
        _given(new, row)
        if table == "organizations":
            assert repos.organizations.get_by_id(row.id) == row
        else:
            assert getattr(repos, table).get_by_id(row.org_id, row.id) == row


# -- escapes the fuzz found, pinned ----------------------------------------------------------------------------


@examples(20)
@given(data=st.data())
def test_lone_surrogates_in_policy_configs_are_validation_errors(
    llmcp_factory: RepositoryFactory, data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    text = st.builds(
        lambda a, s, b: a + s + b, st.text(max_size=3), SURROGATES, st.text(max_size=3)
    )
    config = data.draw(
        st.builds(ModelAllowlistConfig, models=st.lists(text, min_size=1, max_size=2))
        | st.builds(ContentFilterConfig, categories=st.lists(text, min_size=1, max_size=2)),
        label="config",
    )
    with rolled_back(llmcp_factory.transaction_manager()):
        tenant = make_tenant(repos)
        with pytest.raises(ValidationError):
            repos.policies.create(NewPolicy(org_id=tenant.org.id, name="p", config=config))
        with pytest.raises(ValidationError):
            repos.policies.update(msgspec.structs.replace(tenant.policy, config=config))


@examples(20)
@given(moment=EDGE_DATETIMES, table=st.sampled_from(REPOSITORIES), data=st.data())
def test_datetimes_that_python_cannot_read_back_are_refused_before_the_database(
    private_factory: RepositoryFactory, moment: datetime.datetime, table: str, data: Any
) -> None:
    repos = private_factory.repositories()
    tx = private_factory.transaction_manager()
    with rolled_back(tx):
        tenant = make_tenant(repos)
        new = msgspec.structs.replace(data.draw(new_input(table, tenant)), created_at=moment)
        if table == "inference_requests":
            new = msgspec.structs.replace(new, completed_at=None)
        create = getattr(getattr(repos, table), "insert" if table == "audit_logs" else "create")
        with pytest.raises(ValidationError), tx.transaction():
            create(new)
        # whatever happened, the listings still read
        repos.organizations.list(1000)
        repos.audit_logs.get_by_org_id(tenant.org.id, 1000)


@examples(10)
@given(use_begin=st.booleans(), new=lst.new_organizations(lean=True))
def test_commit_after_a_failed_statement_is_an_error(
    private_factory: RepositoryFactory, use_begin: bool, new: NewOrganization
) -> None:
    repos = private_factory.repositories()
    tx = private_factory.transaction_manager()
    taken = repos.organizations.create(NewOrganization(name="t", slug=f"t-{uuid.uuid4().hex}"))

    def work() -> None:
        repos.organizations.create(new)
        with contextlib.suppress(LlmcpError):  # caught: the caller carries on
            repos.organizations.create(NewOrganization(name="dup", slug=taken.slug))

    with pytest.raises(TransactionError):
        if use_begin:
            transaction = tx.begin()
            work()
            transaction.commit()
        else:
            with tx.transaction():
                work()
    assert repos.organizations.get_by_slug(new.slug) is None


WRITES = ("create", "insert", "async_insert", "update")


WRITES = ("create", "insert", "async_insert", "update")


@examples(20)
@given(
    method=st.sampled_from([m for m in METHODS if m.rsplit(".", 1)[1] in WRITES]),
    value=st.sampled_from([None, "x", 1, {"name": "x"}, [], object()]),
)
def test_wrong_argument_types_are_validation_errors(
    llmcp_factory: RepositoryFactory, method: str, value: Any
) -> None:
    repo, name = method.split(".")
    with pytest.raises(ValidationError):
        getattr(getattr(llmcp_factory.repositories(), repo), name)(value)
