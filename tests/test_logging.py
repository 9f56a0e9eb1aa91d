"""Logging: query name, duration and rows at DEBUG; failures with SQLSTATE at WARNING; no values."""

from __future__ import annotations

import logging

import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError
from llmcp.factory import RepositoryFactory
from llmcp.inputs import NewOrganization

SECRET_NAME = "Sekret Customer Name 4711"


def test_queries_are_logged_without_parameter_values(
    db_config: DatabaseConfig, caplog: pytest.LogCaptureFixture
) -> None:
    assert logging.getLogger("llmcp").handlers == []  # the library configures no handler
    caplog.set_level(logging.DEBUG, logger="llmcp")
    with RepositoryFactory.connect(db_config) as factory:
        organizations = factory.repositories().organizations
        org = organizations.create(NewOrganization(name=SECRET_NAME, slug="secret-slug-4711"))
        organizations.get_by_id(org.id)
        with pytest.raises(ConflictError):
            organizations.create(NewOrganization(name=SECRET_NAME, slug="secret-slug-4711"))

    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("organizations.create:") and "ms, 1 row" in m for m in debug), debug
    assert any(m.startswith("organizations.get_by_id:") for m in debug), debug
    assert warnings == ["organizations.create failed with SQLSTATE 23505"]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for value in (SECRET_NAME, "secret-slug-4711", str(org.id)):
        assert value not in everything
