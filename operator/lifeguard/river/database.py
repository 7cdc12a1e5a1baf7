"""One River database: an async connection pool and the translation of failures into typed errors.

Each operation of this layer is a single SQL statement (one round trip, its own transaction in
autocommit mode), so a failure never leaves a half-applied action behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from lifeguard.river.errors import (
    DatabaseError,
    DatabaseTimeout,
    DatabaseUnavailable,
    HeartbeatTableMissing,
    SchemaNotFound,
    describe_dsn,
    describe_schema,
    unavailable_class,
)

APPLICATION_NAME = "river-lifeguard"

Params = Mapping[str, Any]
Connection = psycopg.AsyncConnection[DictRow]


def qualified(schema: str | None, table: str) -> sql.Composable:
    """`"schema"."table"`, or the bare table (resolved by the search path) when schema is None."""
    if schema is None:
        return sql.Identifier(table)
    return sql.Identifier(schema, table)


class RiverDatabase:
    """A pool of connections to one DSN, shared by every policy that names it.

    Sessions run in UTC (timestamps without a zone in metadata read as UTC) with a statement
    timeout, so a slow database delays one scan instead of hanging the operator. Connections are
    checked on checkout, so a restarted server costs one failed check, not a failed scan.
    """

    def __init__(
        self,
        dsn: str,
        *,
        statement_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_size: int = 4,
        max_idle: float = 600.0,
    ) -> None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            # The text may hold a password: never echo it, nor chain the parser's message.
            raise DatabaseError(
                "the database URL cannot be parsed (expected postgresql://user@host:port/db"
                " or key=value pairs)"
            ) from None
        self._dsn = dsn
        # When the next heartbeat prune of each schema is due (monotonic seconds): on the pool,
        # so that the policies sharing it prune the database once a period, not once each.
        self.prune_due: dict[str, float] = {}
        self._password = str(params.get("password") or "")
        self.target = describe_dsn(dsn)
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            name=f"lifeguard {self.target}",
            timeout=connect_timeout,
            # Connections above a smaller share (pools resized by the operator's cap) close
            # one per idle period.
            max_idle=max_idle,
            # Give up a background reconnect quickly; the next request starts a new one.
            reconnect_timeout=max(connect_timeout * 6, 30.0),
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, round(connect_timeout)),
                "application_name": APPLICATION_NAME,
            },
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,
            connection_class=psycopg.AsyncConnection[DictRow],
        )

    async def _configure(self, conn: Connection) -> None:
        timeout_ms = max(1, round(self.statement_timeout * 1000))
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('TimeZone', 'UTC', false)",
            (f"{timeout_ms}ms",),
        )

    async def open(self) -> None:
        """Starts the pool without waiting: an unreachable database fails operations, not this."""
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @property
    def max_size(self) -> int:
        return self._pool.max_size

    async def resize(self, max_size: int) -> None:
        """A new limit for the pool; connections above it close as they idle (psycopg's pool
        shrinks one connection per `max_idle` period)."""
        await self._pool.resize(min(self._pool.min_size, max_size), max_size)

    def connections(self) -> int:
        """Connections the pool holds now (idle, in use, or being opened)."""
        return self._pool.get_stats()["pool_size"]

    async def __aenter__(self) -> RiverDatabase:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def fetch(
        self, query: sql.Composed, params: Params, *, schema: str | None, doing: str
    ) -> list[DictRow]:
        """Runs one statement and returns its rows; failures become typed errors."""
        async with self.connection(schema=schema, doing=doing) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall() if cursor.description is not None else []

    async def fetch_tuples(
        self, query: sql.Composed, params: Params, *, schema: str | None, doing: str
    ) -> list[tuple[Any, ...]]:
        """Like `fetch`, as plain tuples in PostgreSQL's binary format: for the scan, which may
        return 100k rows, where building a dict and parsing text per value dominate its time."""
        async with self.connection(schema=schema, doing=doing) as conn:
            cursor = conn.cursor(row_factory=tuple_row, binary=True)
            await cursor.execute(query, params)
            return await cursor.fetchall() if cursor.description is not None else []

    @asynccontextmanager
    async def connection(self, *, schema: str | None, doing: str) -> AsyncIterator[Connection]:
        """A pooled connection; errors raised inside are translated for `doing` in `schema`."""
        where = f"{self.target} ({describe_schema(schema)})"
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            error_class, cause = await self._connect_failure()
            raise error_class(
                f"{doing}: cannot connect to {where} within {self.connect_timeout:g}s{cause}"
            ) from exc
        except (
            pgerrors.UndefinedTable,
            pgerrors.InvalidSchemaName,
            pgerrors.UndefinedObject,
        ) as exc:
            message = self._scrub(exc.diag.message_primary or str(exc))
            if "river_job_heartbeat" in message:
                raise HeartbeatTableMissing(
                    f"{doing}: {where} has no river_job_heartbeat table ({message});"
                    " run `lifeguard db migrate` or the Go heartbeat.Migrate"
                ) from exc
            raise SchemaNotFound(
                f"{doing}: {where} has no River tables ({message}); check the schema, or run"
                " River's migrations"
            ) from exc
        except pgerrors.QueryCanceled as exc:
            raise DatabaseTimeout(
                f"{doing}: {where} did not answer within the statement timeout"
                f" ({self.statement_timeout:g}s)"
            ) from exc
        except psycopg.OperationalError as exc:
            raise unavailable_class(exc.sqlstate, str(exc))(
                f"{doing}: lost {where}: {self._scrub(str(exc))}"
            ) from exc
        except psycopg.Error as exc:
            raise DatabaseError(f"{doing}: {where} failed: {self._scrub(str(exc))}") from exc

    async def _connect_failure(self) -> tuple[type[DatabaseUnavailable], str]:
        """Why the pool has no connection, from one direct attempt (the pool hides the cause):
        the specific error class (authentication, no such database, unreachable) and a clause."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._dsn, connect_timeout=max(1, round(self.connect_timeout))
            )
        except psycopg.Error as exc:
            error_class = unavailable_class(exc.sqlstate, str(exc))
            return error_class, f": {self._scrub(str(exc)).strip()}"
        await conn.close()
        if self.connections() >= self.max_size:
            return DatabaseUnavailable, (
                f" (all {self.max_size} connections of the pool were busy; the operator's"
                " --max-database-connections bounds them)"
            )
        return DatabaseUnavailable, " (the server accepts connections again)"

    def _scrub(self, text: str) -> str:
        """Server and libpq messages do not carry the password, but never let one through."""
        return text.replace(self._password, "***") if self._password else text
