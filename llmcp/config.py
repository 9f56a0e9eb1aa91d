"""DatabaseConfig: where the database is and how the pool behaves."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from llmcp import conninfo
from llmcp.errors import ValidationError
from llmcp.paging import MIN_SECRET_LENGTH

_ENV_PREFIX = "LLMCP_"
URL_VARIABLE = f"{_ENV_PREFIX}DATABASE_URL"
MIGRATION_URL_VARIABLE = f"{_ENV_PREFIX}MIGRATION_URL"
REPLICA_URLS_VARIABLE = f"{_ENV_PREFIX}REPLICA_URLS"
LISTEN_URL_VARIABLE = f"{_ENV_PREFIX}LISTEN_URL"

# what PostgreSQL's synchronous_commit accepts (its synonyms true/false/yes/no left out)
SYNCHRONOUS_COMMIT_LEVELS = ("off", "local", "remote_write", "on", "remote_apply")
POOLER_VARIABLE = f"{_ENV_PREFIX}POOLER"
POOLER_PREPARED_VARIABLE = f"{_ENV_PREFIX}POOLER_PREPARED_STATEMENTS"

Pooler = Literal["transaction"]
"""What ``DatabaseConfig.pooler`` may name: a transaction-mode pooler (PgBouncer)."""
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def migration_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``LLMCP_MIGRATION_URL`` (the owner role's URL, for migrating), or None when unset;
    the one reader of that variable (:meth:`DatabaseConfig.from_env`, ``llmcp db``)."""
    env = os.environ if environ is None else environ
    return env.get(MIGRATION_URL_VARIABLE) or None


@dataclass(frozen=True, slots=True, repr=False)
class DatabaseConfig:
    """Connection and pool settings (times in seconds).

    ``url`` is what the service runs as (the application role); ``migration_url``,
    when given, is what :meth:`Database.migrate` and ``llmcp db`` migrate through
    (the owner role), else ``url`` serves both (:attr:`migrating_url`).

    ``from_env()`` reads ``LLMCP_DATABASE_URL`` and, when present,
    ``LLMCP_MIGRATION_URL``, ``LLMCP_POOL_MIN_SIZE``, ``LLMCP_POOL_MAX_SIZE``, ``LLMCP_MAX_LIFETIME``,
    ``LLMCP_MAX_IDLE``, ``LLMCP_CONNECT_TIMEOUT``, ``LLMCP_ACQUIRE_TIMEOUT``,
    ``LLMCP_STATEMENT_TIMEOUT``, ``LLMCP_APPLICATION_NAME``,
    ``LLMCP_AUDIT_DETAILS_MAX_BYTES``, ``LLMCP_JSON_MAX_DEPTH``,
    ``LLMCP_CURSOR_SECRET``, ``LLMCP_REPLICA_URLS`` (URLs separated by whitespace,
    which a URL cannot hold unencoded; a comma can, in a multi-host URL),
    ``LLMCP_SYNCHRONOUS_COMMIT``, ``LLMCP_POOLER``,
    ``LLMCP_POOLER_PREPARED_STATEMENTS``, ``LLMCP_ADMISSION_CACHE_SIZE`` and
    ``LLMCP_LISTEN_URL``.

    ``replica_urls``: read replicas (streaming standbys) for the reads a caller
    marks stale-tolerant (``tx.stale_ok()``, see llmcp.routing); empty, every
    call goes to ``url``. ``synchronous_commit``: when set, every transaction
    llmcp commits (explicit ones, single calls, the audit writer's batches) sets
    it transaction-locally, never for the session (see README, Replicas and
    failover); None leaves the server's (role's, database's) own.

    ``pooler="transaction"`` says that ``url`` reaches the server through a
    transaction-mode pooler (PgBouncer): no session state is relied on, and
    statements are parsed unnamed on each call unless
    ``pooler_prepared_statements`` says the pooler tracks protocol-level prepared
    statements (PgBouncer 1.21+ with ``max_prepared_statements`` > 0). Left None, a
    pooler is detected when the pool opens (see :mod:`llmcp.pooled`).

    ``admission_cache_size``: entries of the admission cache (:mod:`llmcp.cache_async`),
    0 (the default) for none. Its listener connects to ``listen_url``, which must
    reach the server itself (LISTEN does not pass a transaction pooler); None:
    ``url``, refused behind a pooler.
    """

    url: str
    # migrations (and `llmcp db grant`) run through this URL when set: the owner role
    migration_url: str | None = None
    min_size: int = 1
    max_size: int = 10
    max_lifetime: float = 3600.0
    max_idle: float = 600.0
    connect_timeout: float = 10.0
    acquire_timeout: float = 30.0
    statement_timeout: float | None = 30.0
    application_name: str = "llmcp"
    # a pooled connection idle longer than this is pinged before it is handed out
    check_after_idle: float = 1.0
    # signs keyset cursors; set the same secret on every instance of a service
    # (None: a random secret for this process, see llmcp.paging.process_secret)
    cursor_secret: bytes | None = None
    # an audit log's details, encoded as JSON, may be at most this long (1 MiB);
    # a larger one is a ValidationError from insert and async_insert
    audit_details_max_bytes: int = 1 << 20
    # untyped JSON (audit details) may nest at most this deep
    json_max_depth: int = 64
    # streaming replicas for stale-tolerant reads (llmcp.routing), tried round-robin
    replica_urls: tuple[str, ...] = ()
    # a replica that failed is left alone this long (its reads go to the primary)
    replica_retry_after: float = 1.0
    # set_config('synchronous_commit', ..., true) in each transaction; None: the server's
    synchronous_commit: str | None = None
    # the server is behind a transaction-mode pooler (None: detected at open)
    pooler: Pooler | None = None
    # that pooler keeps protocol-level prepared statements per client (PgBouncer >= 1.21
    # with max_prepared_statements): llmcp's named statements are then safe through it
    pooler_prepared_statements: bool = False
    # the admission cache's entries (llmcp.cache_async); 0: no cache
    admission_cache_size: int = 0
    # where its listener connects (LISTEN): the server itself; None: url (not behind a pooler)
    listen_url: str | None = None

    def __post_init__(self) -> None:
        if not self.url:
            raise ValidationError("url: a database URL is required")
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            raise ValidationError("pool sizes: need 0 <= min_size <= max_size and max_size >= 1")
        for name in ("max_lifetime", "max_idle", "connect_timeout", "acquire_timeout",
                     "replica_retry_after"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValidationError(f"{name}: must be positive")
        if self.statement_timeout is not None and self.statement_timeout <= 0:
            raise ValidationError("statement_timeout: must be positive or None")
        if self.audit_details_max_bytes < 1 or self.json_max_depth < 1:
            raise ValidationError("audit_details_max_bytes and json_max_depth: must be positive")
        if self.cursor_secret is not None and len(self.cursor_secret) < MIN_SECRET_LENGTH:
            raise ValidationError(f"cursor_secret: needs at least {MIN_SECRET_LENGTH} bytes")
        if isinstance(self.replica_urls, str) or not all(self.replica_urls):
            raise ValidationError("replica_urls: a tuple of database URLs")
        if (
            self.synchronous_commit is not None
            and self.synchronous_commit not in SYNCHRONOUS_COMMIT_LEVELS
        ):
            raise ValidationError(
                f"synchronous_commit: one of {', '.join(SYNCHRONOUS_COMMIT_LEVELS)}, or None"
            )
        if self.pooler is not None and self.pooler not in get_args(Pooler):
            raise ValidationError("pooler: 'transaction' or None")
        if self.pooler_prepared_statements and self.pooler is None:
            raise ValidationError(
                "pooler_prepared_statements: applies behind a pooler; set pooler='transaction' too"
            )
        if self.admission_cache_size < 0:
            raise ValidationError("admission_cache_size: 0 (no cache) or more")
        if self.admission_cache_size and self.pooler is not None and self.listen_url is None:
            raise ValidationError(
                "listen_url: behind a transaction pooler the admission cache needs a direct URL"
                " to LISTEN on (LLMCP_LISTEN_URL)"
            )
        conninfo.remember(self.url)  # masked in every message and log record from now on
        if self.listen_url is not None:
            conninfo.remember(self.listen_url)
        if self.migration_url is not None:
            conninfo.remember(self.migration_url)
        for replica_url in self.replica_urls:
            conninfo.remember(replica_url)

    @property
    def migrating_url(self) -> str:
        """The URL migrations run through: :attr:`migration_url`, else :attr:`url`."""
        return self.migration_url or self.url

    def __repr__(self) -> str:
        shown = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name in ("url", "migration_url", "listen_url") and value is not None:
                value = conninfo.redact(value, value)
            elif spec.name == "replica_urls":
                value = tuple(conninfo.redact(url, url) for url in value)
            elif spec.name == "cursor_secret" and value is not None:
                value = conninfo.MASK
            shown.append(f"{spec.name}={value!r}")
        return f"DatabaseConfig({', '.join(shown)})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> DatabaseConfig:
        """Settings from ``LLMCP_*`` variables; keyword arguments win over them."""
        env = os.environ if environ is None else environ
        url = env.get(URL_VARIABLE, "")
        config = cls(url=url) if url else None
        values: dict[str, object] = {}
        for name, kind in (
            ("min_size", int), ("max_size", int), ("max_lifetime", float), ("max_idle", float),
            ("connect_timeout", float), ("acquire_timeout", float),
            ("statement_timeout", float), ("application_name", str),
            ("audit_details_max_bytes", int), ("json_max_depth", int),
            ("replica_retry_after", float), ("synchronous_commit", str),
            ("admission_cache_size", int),
        ):  # fmt: skip
            pool = "POOL_" if name in ("min_size", "max_size") else ""
            raw = env.get(f"{_ENV_PREFIX}{pool}{name.upper()}")
            if raw is not None:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValidationError(
                        f"{name}: cannot read {raw!r} from the environment"
                    ) from None
        migration_url = migration_url_from_env(env)
        if migration_url is not None:
            values["migration_url"] = migration_url
        listen_url = env.get(LISTEN_URL_VARIABLE)
        if listen_url:
            values["listen_url"] = listen_url
        replica_urls = env.get(REPLICA_URLS_VARIABLE)
        if replica_urls is not None:
            values["replica_urls"] = tuple(replica_urls.split())
        values.update(_pooler_from_env(env))
        secret = env.get(f"{_ENV_PREFIX}CURSOR_SECRET")
        if secret:
            values["cursor_secret"] = secret.encode()
        values.update(overrides)
        if config is None:
            if "url" not in values:
                raise ValidationError("LLMCP_DATABASE_URL is not set")
            return cls(**values)  # type: ignore[arg-type]
        return replace(config, **values)  # type: ignore[arg-type]

    def connection_kwargs(self) -> dict[str, Any]:
        """What every pooled connection is opened with: libpq parameters only, no
        startup ``options`` (a transaction-mode PgBouncer refuses them), so that the
        URL's own ``options``, if any, stay as given. The settings llmcp needs are
        applied after connecting: :meth:`session_settings`."""
        return {
            "autocommit": True,  # transactions are explicit (llmcp.transactions)
            # llmcp prepares its statements itself (llmcp.pipelined); psycopg's own
            # cache would send DEALLOCATE ALL after any ROLLBACK and drop them too
            "prepare_threshold": None,
            "connect_timeout": max(1, round(self.connect_timeout)),
            "application_name": self.application_name,
        }

    def connection_settings(self) -> tuple[tuple[str, str], ...]:
        """llmcp's per-connection settings, as (name, value): TimeZone UTC (timestamps of
        the years 1 and 9999 read back whatever the server's TimeZone) and
        ``statement_timeout`` in milliseconds (if not None: else the server's own)."""
        settings = [("TimeZone", "UTC")]
        if self.statement_timeout is not None:
            settings.append(("statement_timeout", str(int(self.statement_timeout * 1000))))
        return tuple(settings)

    def session_settings(self) -> str:
        """The SET statements run on every new connection (:meth:`connection_settings`);
        behind a transaction pooler, see :mod:`llmcp.pooled` instead."""
        return "; ".join(f"SET {name} = '{value}'" for name, value in self.connection_settings())


def _pooler_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """``pooler`` and ``pooler_prepared_statements`` from ``LLMCP_POOLER`` (``transaction``;
    ``none`` or empty: not set) and ``LLMCP_POOLER_PREPARED_STATEMENTS`` (true / false)."""
    values: dict[str, object] = {}
    pooler = env.get(POOLER_VARIABLE)
    if pooler is not None:
        pooler = pooler.strip().lower()
        values["pooler"] = None if pooler in ("", "none") else pooler
    prepared = env.get(POOLER_PREPARED_VARIABLE)
    if prepared is not None:
        flag = prepared.strip().lower()
        if flag not in _TRUE + _FALSE:
            raise ValidationError(
                "pooler_prepared_statements: cannot read it from the environment (true or false)"
            )
        values["pooler_prepared_statements"] = flag in _TRUE
    return values
