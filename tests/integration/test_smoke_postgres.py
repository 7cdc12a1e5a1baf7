"""Smoke: the real PostgreSQL runs and River's own migrator builds its schema in it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from devenv.postgres import PostgresCluster
from devenv.river import RiverDatabase, migrate_list

pytestmark = pytest.mark.integration


def _river_job_table(dsn: str, schema: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass(%s)::text", (f"{schema}.river_job",)).fetchone()
    return None if row is None else row[0]


def test_postgres_runs_on_loopback_with_settings_for_tests(postgres: PostgresCluster) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (["listen_addresses", "fsync", "max_connections", "port"],),
            ).fetchall()
        )
        lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "max_connections": "200",
        "port": str(postgres.port),
    }
    assert lsn is not None and "/" in lsn[0]


def test_postgres_server_does_not_run_as_root(postgres: PostgresCluster) -> None:
    status = Path(f"/proc/{postgres.daemon.pid}/status").read_text()
    real_uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))

    assert real_uid != "0"


@pytest.mark.parametrize("schema", [None, "river_custom"], ids=["default-schema", "custom-schema"])
def test_river_migrate_up_creates_river_job_and_applies_every_migration(
    river_database: RiverDatabase, schema: str | None
) -> None:
    dsn = river_database(schema)

    assert _river_job_table(dsn, schema or "public") is not None
    listing = [line for line in migrate_list(dsn, schema).splitlines() if line.strip()]
    assert len(listing) >= 6, listing
    assert all(line.startswith("*") for line in listing), listing


def test_custom_schema_keeps_river_out_of_public(river_database: RiverDatabase) -> None:
    dsn = river_database("tenant_a")

    assert _river_job_table(dsn, "tenant_a") is not None
    assert _river_job_table(dsn, "public") is None
