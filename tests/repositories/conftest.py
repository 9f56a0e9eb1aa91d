"""Fixtures of the repository tests.

Most tests run on one migrated database shared by the whole run
(``shared_config``): each test makes its own organizations (random slugs,
e-mails, key hashes), so tests never see each other's rows. A test that reads
a table as a whole (``organizations.list``) takes ``db_config`` instead, a
fresh database of its own. Cloning a database costs about 0.4 s; sharing one
keeps the suite fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.testing import TestDatabases
from tests.repositories import helpers


@pytest.fixture(scope="session")
def repositories_name(databases: TestDatabases) -> str:
    """The migrated database the repository tests share."""
    return databases.clone("repositories")


@pytest.fixture(scope="session")
def repositories_db(databases: TestDatabases, repositories_name: str) -> str:
    """Its URL, as the application role."""
    return databases.url(repositories_name)


@pytest.fixture
def shared_config(repositories_db: str) -> DatabaseConfig:
    """Settings for a factory on the shared database (small pool, short timeouts)."""
    return DatabaseConfig(
        url=repositories_db, min_size=1, max_size=4, acquire_timeout=5.0, connect_timeout=5.0
    )


@pytest.fixture
def shared_owner_config(
    databases: TestDatabases, repositories_name: str, shared_config: DatabaseConfig
) -> DatabaseConfig:
    """The same, as the owner: for what only the owner may do (purge the audit trail,
    write beside the repositories)."""
    return dataclasses.replace(shared_config, url=databases.owner_url(repositories_name))


@pytest.fixture
def empty_name(databases: TestDatabases) -> Iterator[str]:
    """A new database without any table (its name), dropped afterwards."""
    name = databases.create_empty("empty")
    yield name
    databases.drop(name)


@pytest.fixture
def empty_db(databases: TestDatabases, empty_name: str) -> str:
    """``empty_name`` as the application role."""
    return databases.url(empty_name)


@pytest.fixture
def empty_owner_db(databases: TestDatabases, empty_name: str) -> str:
    """``empty_name`` as the owner, who may migrate it."""
    return databases.owner_url(empty_name)


@pytest.fixture
def one_connection(shared_config: DatabaseConfig) -> DatabaseConfig:
    """A pool of one connection, so that one which did not come back fails the next
    call; an application name of its own finds its backends, and a statement
    timeout bounds a test that waits on a lock."""
    return dataclasses.replace(
        shared_config,
        min_size=1,
        max_size=1,
        acquire_timeout=2.0,
        application_name=f"llmcp-one-{helpers.token()}",
        statement_timeout=10.0,
    )


@pytest.fixture
def locker(shared_config: DatabaseConfig) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the test's own, to hold row locks."""
    with psycopg.connect(shared_config.url) as conn:
        yield conn
