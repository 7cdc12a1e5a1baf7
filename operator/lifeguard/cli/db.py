"""`lifeguard db migrate`: creates the heartbeat table next to River's tables."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from lifeguard.river import DatabaseError, RiverDatabase, migrate_heartbeat_table
from lifeguard.river.errors import describe_schema

DATABASE_URL_ENV = "DATABASE_URL"


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="manage Lifeguard's tables in a River database")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="create the river_job_heartbeat table (idempotent)",
        description=(
            "Creates <schema>.river_job_heartbeat, the Table heartbeat store, next to River's"
            " tables. Safe to run repeatedly and alongside the Go heartbeat.Migrate."
        ),
    )
    migrate.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV),
        required=DATABASE_URL_ENV not in os.environ,
        help=f"PostgreSQL URL (default: ${DATABASE_URL_ENV})",
    )
    migrate.add_argument(
        "--schema",
        default=None,
        help="the schema holding River's tables (default: the connection's search path)",
    )
    migrate.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    return asyncio.run(_migrate_async(args.database_url, args.schema))


async def _migrate_async(dsn: str, schema: str | None) -> int:
    database = RiverDatabase(dsn)
    try:
        async with database:
            created = await migrate_heartbeat_table(database, schema=schema)
    except DatabaseError as exc:
        print(f"lifeguard db migrate: {exc}", file=sys.stderr)
        return 1
    where = f"{database.target} ({describe_schema(schema)})"
    if created:
        print(f"created river_job_heartbeat in {where}")
    else:
        print(f"river_job_heartbeat already exists in {where}")
    return 0
