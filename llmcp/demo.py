"""``llmcp demo``: migrate a database and show what is in it."""

from __future__ import annotations

import psycopg

from llmcp.migrate import Migrator
from llmcp.target import database_url

_TABLES = """
SELECT c.relname, count(a.attnum)
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
GROUP BY c.relname
ORDER BY c.relname
"""


def run() -> int:
    with database_url() as url:
        migrator = Migrator(url)
        migrator.up()
        status = migrator.status()
        with psycopg.connect(url) as conn:
            tables = conn.execute(_TABLES).fetchall()
            version = conn.execute("SHOW server_version").fetchone()
    print(f"PostgreSQL {version[0] if version else '?'}")
    print("\nmigrations")
    for migration in status.migrations:
        print(f"  [{'X' if migration.applied else ' '}] {migration.name}")
    print(f"\ntables ({len(tables)})")
    for name, columns in tables:
        print(f"  {name:<24} {columns:>3} columns")
    return 0
