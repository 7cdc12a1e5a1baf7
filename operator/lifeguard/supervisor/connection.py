"""The database of one policy: its URL read from the policy's Secret, and the pool for it.

The Secret is read again every minute, so a rotated password or a moved database is picked up
without a restart; the policy changes pools only when the URL changed. With `SharedPools` (the
operator), policies naming one URL share one pool; without (a single policy), it owns one. When
the re-read fails (the apiserver or etcd is down) the database is still scanned with the URL
already read: the jobs do not depend on the apiserver, and neither does judging them by their
beats.
"""

import logging
import time

from lifeguard.cluster.kube import (
    ApiserverUnreachable,
    ClusterError,
    Forbidden,
    KubeClient,
    SecretKeyMissing,
    SecretNotFound,
)
from lifeguard.model.conditions import SECRET_NOT_FOUND
from lifeguard.model.policy import JobPolicySpec
from lifeguard.river.database import RiverDatabase
from lifeguard.supervisor.pools import SharedPools, database_identity

log = logging.getLogger(__name__)

SECRET_CACHE_SECONDS = 60.0
# After a failed re-read with a URL in hand: the next try, so an outage costs one call per period.
SECRET_RETRY_SECONDS = 10.0

_REASONS: dict[type[ClusterError], str] = {
    SecretNotFound: SECRET_NOT_FOUND,
    SecretKeyMissing: "SecretKeyMissing",
    Forbidden: "SecretForbidden",
}


class ConnectionProblem(Exception):
    """No database to talk to: a CamelCase reason and a message naming the field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseSource:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        *,
        pools: SharedPools | None = None,
        holder: str = "",
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._pools = pools
        self._holder = holder or namespace
        self._db: RiverDatabase | None = None
        self._dsn: str | None = None
        self._read_at = 0.0
        self._retry_at = 0.0
        self._failing = False  # logged the current streak of failed re-reads
        # The database and schema in use, as an opaque name (ownership compares them).
        self.identity = ""

    def forget_secret(self) -> None:
        """The Secret reference may have changed: read it at the next use."""
        self._read_at = 0.0

    async def database(self, spec: JobPolicySpec) -> RiverDatabase:
        """The pool for the URL in the policy's Secret; ConnectionProblem when there is none."""
        now = time.monotonic()
        if self._db is not None and (
            now - self._read_at < SECRET_CACHE_SECONDS or now < self._retry_at
        ):
            return self._db
        ref = spec.database.secret_ref
        try:
            dsn = await self._kube.read_secret_value(self._namespace, ref.name, ref.key)
        except (SecretNotFound, SecretKeyMissing, Forbidden) as exc:
            await self.close()
            raise ConnectionProblem(
                _REASONS[type(exc)], f"spec.database.secretRef: {exc}."
            ) from None
        except Exception as exc:  # the apiserver is down or answered oddly: not the Secret's fault
            return self._keep_cached_url(exc, now)
        if self._failing:
            self._failing = False
            log.info("namespace %s: read the database Secret again", self._namespace)
        self._read_at = time.monotonic()
        if dsn == self._dsn and self._db is not None:
            return self._db
        if self._pools is None:
            await self.close()
        try:
            if self._pools is not None:
                db = await self._pools.use(self._holder, dsn)
            else:
                db = RiverDatabase(dsn)
                await db.open()
        except Exception as exc:  # libpq's parser rejects the URL
            await self.close()
            raise ConnectionProblem(
                "InvalidDatabaseURL",
                f"spec.database.secretRef: the value of key {ref.key} in Secret {ref.name} is"
                f" not a valid PostgreSQL URL ({type(exc).__name__})",
            ) from None
        self._db, self._dsn = db, dsn
        self.identity = database_identity(dsn, spec.database.schema_)
        return db

    def _keep_cached_url(self, exc: Exception, now: float) -> RiverDatabase:
        """Scanning goes on with the URL already read; with none, there is nothing to scan."""
        message = str(exc) if isinstance(exc, ClusterError) else f"{type(exc).__name__}: {exc}"
        if self._db is None:
            raise ConnectionProblem("SecretUnreadable", message) from None
        self._retry_at = now + SECRET_RETRY_SECONDS
        # The apiserver's outage is logged once by the client; anything else once per streak.
        if not self._failing and not isinstance(exc, ApiserverUnreachable):
            log.warning(
                "namespace %s: %s; scanning with the database URL read before",
                self._namespace,
                message,
            )
        self._failing = True
        return self._db

    async def close(self) -> None:
        """Leaves the pool: closes an own pool, or releases the policy's place in a shared one."""
        db, self._db, self._dsn, self.identity = self._db, None, None, ""
        if self._pools is not None:
            await self._pools.release(self._holder)
        elif db is not None:
            await db.close()
