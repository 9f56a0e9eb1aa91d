"""Rows and inputs to JSON and back: plain msgspec, no hooks.

Every struct a caller meets is found here, not listed: the msgspec structs of
the generated modules, of ``llmcp.inputs`` and ``llmcp.policy_config``, and
every struct named (at any depth) by the signature of a public repository
method, what it takes and what it returns (``Page[AuditLog]``, ...). A new
row, input or page type is covered without anyone adding it. Each is drawn by
hypothesis from its field types (and each input also from its strategy in
``llmcp.testing.strategies``, valid by construction), then sent through
``msgspec.json`` and through ``msgspec.to_builtins`` (with the standard
library's ``json`` in between, as another framework would) and must come back
equal. Rows read back from the database (an audit log with an IPv4 and an
IPv6 address, money, enums, policy configs) too.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from importlib import import_module
from pkgutil import iter_modules
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmcp.generated
from llmcp import inputs, policy_config
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.generated.models import AuditAction, AuditLog, InferenceStatus, Policy, PolicyType
from llmcp.inputs import (
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
)
from llmcp.json_types import JsonValue
from llmcp.paging import Page
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst
from tests.properties.budget import examples
from tests.repositories.helpers import make_tenant

# -- discovery ---------------------------------------------------------------------------


def _structs_of(module: types.ModuleType) -> set[type[msgspec.Struct]]:
    return {
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__module__ == module.__name__
    }


def _repository_classes() -> Iterator[type]:
    import llmcp.repositories

    for info in iter_modules(llmcp.repositories.__path__):
        module = import_module(f"llmcp.repositories.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                yield value


def _named_structs(annotation: Any, found: set[Any]) -> None:
    """Every struct type ``annotation`` names, at any depth (fields included);
    a generic struct with its arguments (``Page[AuditLog]``)."""
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and issubclass(origin, msgspec.Struct):
        if annotation not in found:
            found.add(annotation)
            for field in _fields(annotation):
                _named_structs(field[1], found)
        return
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation not in found and not getattr(annotation, "__parameters__", ()):
            found.add(annotation)
            for field in _fields(annotation):
                _named_structs(field[1], found)
        return
    for argument in typing.get_args(annotation):
        _named_structs(argument, found)


def _fields(struct: Any) -> list[tuple[str, Any]]:
    """(name, type) of a struct's fields, a generic one's type variables substituted."""
    origin = typing.get_origin(struct) or struct
    hints = typing.get_type_hints(origin)
    bound = dict(zip(getattr(origin, "__parameters__", ()), typing.get_args(struct), strict=False))
    return [(name, _substitute(hints[name], bound)) for name in origin.__struct_fields__]


def _substitute(annotation: Any, bound: dict[Any, Any]) -> Any:
    if isinstance(annotation, TypeVar):
        return bound.get(annotation, annotation)
    arguments = typing.get_args(annotation)
    if not bound or not arguments:
        return annotation
    origin = typing.get_origin(annotation)
    new = tuple(_substitute(a, bound) for a in arguments)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new]  # noqa: UP007  (built from a tuple)
    return origin[new]


def every_struct() -> list[Any]:
    found: set[Any] = set()
    modules = [
        import_module(f"llmcp.generated.{m.name}") for m in iter_modules(llmcp.generated.__path__)
    ]
    for module in [*modules, inputs, policy_config]:
        for struct in _structs_of(module):
            _named_structs(struct, found)
    for repository in _repository_classes():
        for name, method in inspect.getmembers(repository, inspect.isfunction):
            if not name.startswith("_"):
                for annotation in typing.get_type_hints(method).values():
                    _named_structs(annotation, found)
    return sorted(found, key=repr)


STRUCTS = every_struct()


def test_discovery_finds_rows_inputs_configs_and_pages() -> None:
    names = {repr(s).rsplit(".", 1)[-1].rstrip("'>") for s in STRUCTS}
    expected = {
        "AuditLog",
        "Policy",
        "NewAuditLog",
        "NewPolicy",
        "RateLimitConfig",
        "GetMetricsRow",
    }
    assert expected <= names, names
    assert any(typing.get_origin(s) is not None for s in STRUCTS), "no Page[...] found"


# -- values ------------------------------------------------------------------------------

_INT64 = st.integers(-(2**63), 2**63 - 1)
# JSON (RFC 3339) carries a UTC offset in whole minutes (msgspec cuts the seconds of
# one such as a local mean time's): draw offsets in whole minutes
_MINUTE_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m))
)
_DATETIMES = st.datetimes(
    min_value=datetime.datetime(2, 1, 1),
    max_value=datetime.datetime(9998, 12, 31),
    timezones=st.just(datetime.UTC) | _MINUTE_OFFSETS,
)
_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False)
_JSON = st.deferred(lambda: lst.json_objects())  # dict[str, JsonValue]
_SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    uuid.UUID: st.uuids(),
    str: st.text(),
    int: _INT64,
    bool: st.booleans(),
    float: st.floats(allow_nan=False, allow_infinity=False),
    Decimal: _DECIMALS,
    datetime.datetime: _DATETIMES,
    datetime.date: st.dates(),
    datetime.time: st.times(),
    datetime.timedelta: st.timedeltas(),
    bytes: st.binary(),
}


def _json_values() -> st.SearchStrategy[JsonValue]:
    return st.none() | _INT64 | st.text() | _JSON


def strategy_for(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of ``annotation``, from the field types down."""
    if annotation is Any:  # JsonValue at run time (llmcp.json_types)
        return _json_values()
    if annotation is policy_config.PolicyConfig:
        return lst.policy_configs()
    if annotation in typing.get_args(policy_config.PolicyConfig):  # constrained (msgspec.Meta)
        return lst.policy_configs([annotation])
    if annotation is type(None) or annotation is None:
        return st.none()
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(annotation)
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, msgspec.Struct):
        return st.fixed_dictionaries({n: strategy_for(t) for n, t in _fields(annotation)}).map(
            lambda values: origin(**values)
        )
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in arguments])
    if origin is typing.Literal:
        return st.sampled_from(arguments)
    if origin is list:
        return st.lists(strategy_for(arguments[0]), max_size=3)
    if origin is dict:
        if arguments == (str, JsonValue):
            return _JSON
        return st.dictionaries(strategy_for(arguments[0]), strategy_for(arguments[1]), max_size=3)
    if origin is tuple:
        return st.tuples(*(strategy_for(a) for a in arguments))
    if origin is typing.Annotated:
        return strategy_for(arguments[0])
    raise AssertionError(f"no strategy for {annotation!r}: teach strategy_for")


# -- the round trips ---------------------------------------------------------------------


def _type_of(value: Any, struct: Any) -> Any:
    return struct if typing.get_origin(struct) is not None else type(value)


def assert_round_trips(value: Any, struct: Any) -> None:
    """``value`` through msgspec.json, and through to_builtins + the standard library's
    json (another framework's encoder), comes back equal."""
    kind = _type_of(value, struct)
    encoded = msgspec.json.encode(value)
    assert msgspec.json.decode(encoded, type=kind) == value
    builtins = msgspec.to_builtins(value)
    assert isinstance(builtins, dict)
    assert msgspec.convert(json.loads(json.dumps(builtins)), kind) == value
    assert msgspec.convert(builtins, kind) == value


@pytest.mark.parametrize("struct", STRUCTS, ids=repr)
def test_every_struct_round_trips(struct: Any) -> None:
    @examples(30)
    @given(value=strategy_for(struct))
    def round_trip(value: Any) -> None:
        assert_round_trips(value, struct)

    round_trip()


_ORG = uuid.UUID(int=1)
_IDS = st.none() | st.uuids()
_WHEN = st.none() | _DATETIMES
INPUT_STRATEGIES: dict[type, Callable[[], st.SearchStrategy[Any]]] = {
    inputs.NewOrganization: lambda: lst.new_organizations(ids=_IDS, created_at=_WHEN),
    inputs.NewApplication: lambda: lst.new_applications(_ORG, ids=_IDS, created_at=_WHEN),
    inputs.NewUser: lambda: lst.new_users(_ORG, ids=_IDS, created_at=_WHEN),
    inputs.NewPolicy: lambda: lst.new_policies(
        _ORG, app_ids=[uuid.UUID(int=2)], user_ids=[uuid.UUID(int=3)], ids=_IDS, created_at=_WHEN
    ),
    inputs.NewAuditLog: lambda: lst.new_audit_logs(
        _ORG, app_ids=[uuid.UUID(int=2)], ids=_IDS, created_at=_WHEN
    ),
    inputs.NewInferenceRequest: lambda: lst.new_inference_requests(
        _ORG, [uuid.UUID(int=2)], ids=_IDS, created_at=_WHEN
    ),
}


def test_every_input_has_its_strategy() -> None:
    assert set(INPUT_STRATEGIES) == _structs_of(inputs)


_MINUTE = datetime.timedelta(minutes=1)


def _as_json_carries(value: Any) -> Any:
    """``value`` with each datetime's UTC offset rounded to the minute, as msgspec writes
    it: RFC 3339 has no seconds in an offset (the strategies draw such offsets, a local
    mean time's, for the database's sake; rows read back are UTC)."""
    changes = {}
    for name in value.__struct_fields__:
        moment = getattr(value, name)
        offset = moment.utcoffset() if isinstance(moment, datetime.datetime) else None
        if offset is not None and offset % _MINUTE:
            carried = msgspec.json.decode(msgspec.json.encode(moment), type=datetime.datetime)
            assert carried.replace(tzinfo=None) == moment.replace(tzinfo=None)
            assert abs(carried - moment) <= _MINUTE / 2
            changes[name] = carried
    return msgspec.structs.replace(value, **changes) if changes else value


@pytest.mark.parametrize("struct", sorted(INPUT_STRATEGIES, key=repr), ids=repr)
def test_inputs_from_their_strategies_round_trip(struct: type) -> None:
    @examples(30)
    @given(value=INPUT_STRATEGIES[struct]())
    def round_trip(value: Any) -> None:
        assert_round_trips(_as_json_carries(value), struct)

    round_trip()


def test_the_json_of_a_row_is_plain() -> None:
    """IP addresses as their text, money as a decimal string, enums as their value."""
    log = AuditLog(
        id=uuid.UUID(int=5), org_id=_ORG, app_id=None, user_id=None,
        action=AuditAction.USER_CREATED, resource_type="user", resource_id=None,
        request_id=None, details={"n": 1}, ip_address="2001:db8::1", user_agent=None,
        created_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    )  # fmt: skip
    assert msgspec.to_builtins(log)["ip_address"] == "2001:db8::1"
    assert b'"action":"user_created"' in msgspec.json.encode(log)
    cost = msgspec.to_builtins(NewInferenceRequest(
        org_id=_ORG, app_id=_ORG, request_id="r", provider="p", model="m", cost=Decimal("0.10")
    ))["cost"]  # fmt: skip
    assert cost == "0.10"


# -- rows read back from the database ---------------------------------------------------


def _tenant(repos: Repositories) -> lst.Tenant:
    """An organization with an application, a user and a policy of every type at every
    level (lean configs)."""
    org, app, user = make_tenant(repos)
    levels = [(None, None), (app.id, None), (None, user.id), (app.id, user.id)]
    policies = [
        repos.policies.create(
            NewPolicy(org_id=org.id, name=f"p{i}", config=config, app_id=a, user_id=u)
        )
        for i, (config, (a, u)) in enumerate(
            (config, level) for config in lst._LEAN_CONFIGS.values() for level in levels
        )
    ]
    return lst.Tenant(org, [app], [user], policies)


def test_rows_read_back_round_trip(llmcp_factory: RepositoryFactory) -> None:
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):
        tenant = _tenant(repos)
        org, app, user = tenant.organization, tenant.applications[0], tenant.users[0]
        logs = [
            repos.audit_logs.insert(
                NewAuditLog(
                    org_id=org.id,
                    app_id=app.id,
                    user_id=user.id,
                    action=AuditAction.INFERENCE_COMPLETED,
                    resource_type="inference",
                    details={"tokens": [1, 2], "price": 1.5},
                    ip_address=address,
                )
            )
            for address in ("192.0.2.7", "2001:db8::1")
        ]
        assert [log.ip_address for log in logs] == ["192.0.2.7", "2001:db8::1"]
        request = repos.inference_requests.create(
            NewInferenceRequest(
                org_id=org.id, app_id=app.id, user_id=user.id, request_id="r-1",
                provider="openai", model="gpt-4o", status=InferenceStatus.COMPLETED,
                prompt_tokens=3, completion_tokens=4, cost=Decimal("0.012345"),
            )
        )  # fmt: skip
        now = datetime.datetime.now(datetime.UTC)
        day = datetime.timedelta(days=1)
        rows: list[Any] = [org, app, user, *tenant.policies, *logs, request]
        rows.append(repos.inference_requests.get_metrics(org.id, now - day, now + day))
        rows.append(repos.policies.get_applicable_policies(org.id, app.id, user.id)[0])
        for row in rows:
            assert_round_trips(row, type(row))
        assert_round_trips(repos.audit_logs.page_by_org_id(org.id, limit=1), Page[AuditLog])
        assert b'"ip_address":"2001:db8::1"' in msgspec.json.encode(logs[1])
        assert b'"cost":"0.012345"' in msgspec.json.encode(request)
        assert msgspec.to_builtins(request)["status"] == "completed"
        resolved = repos.policies.resolve(org.id, app.id, user.id)
        assert len(resolved) == len(PolicyType)
        encoded = msgspec.json.encode(resolved)
        assert msgspec.json.decode(encoded, type=dict[PolicyType, Policy]) == resolved


@examples(20)
@given(new=lst.new_audit_logs(_ORG))
def test_drawn_audit_logs_read_back_round_trip(
    llmcp_factory: RepositoryFactory, new: NewAuditLog
) -> None:
    """Any valid audit log (IPv4, IPv6 or no address, any JSON details) stored and read
    back encodes and decodes equal."""
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):
        token = uuid.uuid4().hex[:12]
        org = repos.organizations.create(NewOrganization(name="o", slug=f"o-{token}"))
        log = repos.audit_logs.insert(msgspec.structs.replace(new, org_id=org.id))
        assert_round_trips(log, AuditLog)
        assert_round_trips(repos.audit_logs.get_by_id(org.id, log.id), AuditLog)
