"""Database pools shared by every policy of the operator, and bounded together.

One pool per distinct database URL, whatever the number of policies naming it: fifty teams'
policies on one River database hold at most the cap's connections, not four each. The cap is
shared out between pools in proportion to the policies using each (at least one connection a
pool); within a pool, psycopg's pool serves waiting policies first come, first served, and a
policy holds one connection at a time, so none can starve the others. A policy whose Secret
names a new URL moves to that URL's pool; a pool left without policies is closed.
"""

import asyncio
import hashlib
import logging
from collections.abc import Callable

from lifeguard.metrics import Metrics
from lifeguard.river.database import RiverDatabase

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 10
# Surplus connections of a pool whose share shrank close after this long idle.
POOL_MAX_IDLE_SECONDS = 60.0

PoolFactory = Callable[[str, int], RiverDatabase]


def _open_pool(dsn: str, max_size: int) -> RiverDatabase:
    return RiverDatabase(dsn, max_size=max_size, max_idle=POOL_MAX_IDLE_SECONDS)


def database_identity(dsn: str, schema: str | None) -> str:
    """An opaque name for one database and schema (the ownership rule compares them); a
    digest, so the URL's password never reaches a status, a log or a metric label."""
    digest = hashlib.sha256(dsn.encode()).hexdigest()[:16]
    return f"{digest}/{schema or ''}"


def shares(users: dict[str, int], cap: int) -> dict[str, int]:
    """Connections per pool: one each, the rest of the cap in proportion to its policies
    (largest remainders first, ties by URL order). More pools than the cap: one each."""
    if not users:
        return {}
    allotted = dict.fromkeys(users, 1)
    spare = cap - len(users)
    if spare <= 0:
        return allotted
    total = sum(users.values())
    exact = {key: spare * count / total for key, count in users.items()}
    for key, value in exact.items():
        allotted[key] += int(value)
    left = cap - sum(allotted.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - int(exact[k])), k))[:left]:
        allotted[key] += 1
    return allotted


class SharedPools:
    """The operator's database pools, by URL, with the policies (holders) using each."""

    def __init__(
        self,
        *,
        cap: int = DEFAULT_MAX_CONNECTIONS,
        metrics: Metrics | None = None,
        factory: PoolFactory = _open_pool,
    ) -> None:
        if cap < 1:
            raise ValueError("the connection cap must be at least 1")
        self.cap = cap
        self._metrics = metrics
        self._factory = factory
        self._pools: dict[str, RiverDatabase] = {}
        self._holders: dict[str, str] = {}
        # Changes whenever a holder's URL does: what `identity` answers may have changed.
        self.holders_version = 0
        self._lock = asyncio.Lock()
        self._over_cap_warned = False

    async def use(self, holder: str, dsn: str) -> RiverDatabase:
        """The pool for `dsn`, for policy `holder`; leaves the holder's previous pool.

        Raises what RiverDatabase raises for a URL that does not parse.
        """
        async with self._lock:
            previous = self._holders.get(holder)
            if previous == dsn:
                return self._pools[dsn]
            pool = self._pools.get(dsn)
            if pool is None:
                pool = self._factory(dsn, 1)
                await pool.open()
                self._pools[dsn] = pool
                self._track(pool)
            self._holders[holder] = dsn
            self.holders_version += 1
            if previous is not None:
                await self._leave(previous)
            await self._rebalance()
            return pool

    async def release(self, holder: str) -> None:
        """The policy no longer uses a database (deleted, or its Secret is gone)."""
        async with self._lock:
            dsn = self._holders.pop(holder, None)
            self.holders_version += 1
            if dsn is not None:
                await self._leave(dsn)
                await self._rebalance()

    async def close_all(self) -> None:
        async with self._lock:
            self._holders.clear()
            self.holders_version += 1
            for dsn in list(self._pools):
                await self._leave(dsn)

    def identity(self, holder: str, schema: str | None) -> str:
        """The database identity of the holder's URL and `schema`; "" when it uses none."""
        dsn = self._holders.get(holder)
        return database_identity(dsn, schema) if dsn is not None else ""

    def connections(self) -> int:
        """Connections held by every pool now."""
        return sum(pool.connections() for pool in self._pools.values())

    def pools(self) -> int:
        return len(self._pools)

    async def _leave(self, dsn: str) -> None:
        if dsn in self._holders.values():
            return
        pool = self._pools.pop(dsn)
        await pool.close()
        self._untrack(pool)
        log.info("closed the pool of %s: no policy uses it", pool.target)

    async def _rebalance(self) -> None:
        users: dict[str, int] = dict.fromkeys(self._pools, 0)
        for dsn in self._holders.values():
            users[dsn] += 1
        allotted = shares(users, self.cap)
        if len(allotted) > self.cap and not self._over_cap_warned:
            self._over_cap_warned = True
            log.warning(
                "%d databases but a cap of %d connections: one connection each",
                len(allotted),
                self.cap,
            )
        for dsn, size in allotted.items():
            pool = self._pools[dsn]
            if pool.max_size != size:
                await pool.resize(size)

    # -- the lifeguard_database_connections gauge, per target (host:port/db, no secrets) --
    def _track(self, pool: RiverDatabase) -> None:
        if self._metrics is None:
            return
        target = pool.target
        self._metrics.database_connections.labels(target).set_function(
            lambda: float(sum(p.connections() for p in self._pools.values() if p.target == target))
        )

    def _untrack(self, pool: RiverDatabase) -> None:
        if self._metrics is None:
            return
        if not any(p.target == pool.target for p in self._pools.values()):
            self._metrics.forget_database(pool.target)
