"""Shared, bounded database pools against a real PostgreSQL: connections counted by the server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from devenv.postgres import PostgresCluster
from lifeguard.metrics import Metrics
from lifeguard.river.database import APPLICATION_NAME, RiverDatabase
from lifeguard.river.errors import describe_dsn
from lifeguard.supervisor.pools import SharedPools

_names = itertools.count(1)


def server_connections(postgres: PostgresCluster, database: str) -> int:
    """The operator's connections to `database`, as pg_stat_activity counts them."""
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database, APPLICATION_NAME),
        ).fetchone()
    assert row is not None
    return int(row[0])


def new_database(postgres: PostgresCluster) -> tuple[str, str]:
    name = f"pools_{next(_names)}"
    return name, postgres.create_database(name)


@pytest.fixture
async def pools() -> AsyncIterator[SharedPools]:
    shared = SharedPools(cap=4, metrics=Metrics(CollectorRegistry()))
    yield shared
    await shared.close_all()


async def busy(db: RiverDatabase, seconds: float) -> None:
    async with db.connection(schema=None, doing="test") as conn:
        await conn.execute("SELECT pg_sleep(%s)", (seconds,))


async def watch_peak(postgres: PostgresCluster, database: str, done: asyncio.Event) -> int:
    peak = 0
    while not done.is_set():
        peak = max(peak, await asyncio.to_thread(server_connections, postgres, database))
        await asyncio.sleep(0.02)
    return peak


async def test_fifty_policies_on_one_url_share_one_pool_within_the_cap(
    postgres: PostgresCluster, pools: SharedPools
) -> None:
    name, dsn = new_database(postgres)
    dbs = [await pools.use(f"team-{i}/policy", dsn) for i in range(50)]
    assert len({id(db) for db in dbs}) == 1

    done = asyncio.Event()
    peak = asyncio.create_task(watch_peak(postgres, name, done))
    # Every policy runs a statement at once: they queue for the cap's connections.
    await asyncio.gather(*(busy(db, 0.05) for db in dbs))
    done.set()

    assert 1 <= await peak <= 4
    assert pools.pools() == 1
    assert pools.connections() <= 4


async def test_two_urls_share_the_cap_by_their_policies(
    postgres: PostgresCluster, pools: SharedPools
) -> None:
    (big, big_dsn), (small, small_dsn) = new_database(postgres), new_database(postgres)
    on_big = [await pools.use(f"big/{i}", big_dsn) for i in range(3)]
    on_small = await pools.use("small/0", small_dsn)

    await asyncio.gather(*(busy(db, 0.2) for db in on_big * 3), busy(on_small, 0.2))

    assert server_connections(postgres, big) + server_connections(postgres, small) <= 4
    assert (on_big[0].max_size, on_small.max_size) == (3, 1)


async def test_a_policy_moves_to_its_new_url_and_the_old_pool_closes(
    postgres: PostgresCluster, pools: SharedPools
) -> None:
    (old, old_dsn), (new, new_dsn) = new_database(postgres), new_database(postgres)
    before = await pools.use("team/policy", old_dsn)
    await busy(before, 0)
    assert server_connections(postgres, old) >= 1

    after = await pools.use("team/policy", new_dsn)
    await busy(after, 0)

    assert after is not before
    assert server_connections(postgres, old) == 0
    assert server_connections(postgres, new) >= 1
    assert pools.pools() == 1


async def test_a_pool_stays_while_one_policy_uses_it_and_closes_with_the_last(
    postgres: PostgresCluster, pools: SharedPools
) -> None:
    name, dsn = new_database(postgres)
    db = await pools.use("a/one", dsn)
    await pools.use("b/two", dsn)
    await busy(db, 0)

    await pools.release("a/one")
    await busy(db, 0)
    assert server_connections(postgres, name) >= 1

    await pools.release("b/two")
    assert server_connections(postgres, name) == 0
    assert pools.pools() == 0


async def test_connections_gauge_per_target_without_secrets(postgres: PostgresCluster) -> None:
    metrics = Metrics(CollectorRegistry())
    pools = SharedPools(cap=4, metrics=metrics)
    name, dsn = new_database(postgres)
    db = await pools.use("team/policy", dsn)
    await busy(db, 0)
    target = describe_dsn(dsn)

    value = metrics.registry.get_sample_value("lifeguard_database_connections", {"target": target})
    counted = server_connections(postgres, name)
    await pools.release("team/policy")
    gone = metrics.registry.get_sample_value("lifeguard_database_connections", {"target": target})

    assert value is not None and value >= 1
    assert value == counted
    assert gone is None
    assert "@" not in target
