"""River's schema, created by River's own migrator (the `river` tool in tools/river)."""

from __future__ import annotations

import subprocess
from typing import Protocol

import psycopg
from psycopg import sql

from devenv.postgres import PostgresCluster
from devenv.tools import tool_bin
from lifeguard.river import heartbeat_table_ddl


class RiverDatabase(Protocol):
    """The `river_database` fixture: a fresh database with River migrated; returns its DSN."""

    def __call__(self, schema: str | None = None) -> str: ...


class MigrationError(RuntimeError):
    """River's migrator failed."""


def _river(*args: str) -> str:
    argv = [str(tool_bin("river")), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=180)
    if done.returncode != 0:
        raise MigrationError(
            f"`{' '.join(argv)}` failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def migrate(dsn: str, schema: str | None = None) -> str:
    """Runs River's migrations up to the latest version; returns the migrator's output.

    River's migrator qualifies its tables with the schema but does not create it
    (rivermigrate runs `CREATE TABLE <schema>.river_migration`), so a custom schema is
    created here first.
    """
    args = ["migrate-up", "--database-url", dsn]
    if schema:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        args += ["--schema", schema]
    return _river(*args)


def create_database(
    postgres: PostgresCluster, name: str, schema: str | None = None, *, heartbeats: bool = False
) -> str:
    """A new database `name` with River's schema (in `schema`); its DSN.

    With `heartbeats`, Lifeguard's heartbeat table beside River's (the DDL `lifeguard db
    migrate` runs, without starting the CLI).
    """
    dsn = postgres.create_database(name)
    migrate(dsn, schema)
    if heartbeats:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(heartbeat_table_ddl(schema))
    return dsn


def migrate_list(dsn: str, schema: str | None = None) -> str:
    """River's `migrate-list`: one line per migration, `*` marking the applied ones."""
    args = ["migrate-list", "--database-url", dsn]
    if schema:
        args += ["--schema", schema]
    return _river(*args)
