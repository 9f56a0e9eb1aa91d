"""Scope a raw connection's transaction to one tenant, as llmcp scopes each call:
row-level security then shows the application role that organization's rows."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from llmcp.tenancy import ORG_ID

_SET = "SELECT set_config(%s, %s, true)"  # transaction-local


def set_tenant(conn: psycopg.Connection[Any], org_id: uuid.UUID) -> None:
    """``org_id`` for the rest of ``conn``'s current transaction."""
    conn.execute(_SET, (ORG_ID, str(org_id)))


async def aset_tenant(conn: psycopg.AsyncConnection[Any], org_id: uuid.UUID) -> None:
    await conn.execute(_SET, (ORG_ID, str(org_id)))
