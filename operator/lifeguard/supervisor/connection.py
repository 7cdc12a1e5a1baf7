"""The database of one policy: its URL read from the policy's Secret, and one pool for it.

The Secret is read again every minute, so a rotated password or a moved database is picked up
without a restart; the pool is replaced only when the URL changed.
"""

import logging
import time

from lifeguard.cluster.kube import (
    ClusterError,
    Forbidden,
    KubeClient,
    SecretKeyMissing,
    SecretNotFound,
)
from lifeguard.model.policy import JobPolicySpec
from lifeguard.river.database import RiverDatabase

log = logging.getLogger(__name__)

SECRET_CACHE_SECONDS = 60.0

_REASONS: dict[type[ClusterError], str] = {
    SecretNotFound: "SecretNotFound",
    SecretKeyMissing: "SecretKeyMissing",
    Forbidden: "SecretForbidden",
}


class ConnectionProblem(Exception):
    """No database to talk to: a CamelCase reason and a message naming the field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseSource:
    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self._kube = kube
        self._namespace = namespace
        self._db: RiverDatabase | None = None
        self._dsn: str | None = None
        self._read_at = 0.0

    def forget_secret(self) -> None:
        """The Secret reference may have changed: read it at the next use."""
        self._read_at = 0.0

    async def database(self, spec: JobPolicySpec) -> RiverDatabase:
        """The pool for the URL in the policy's Secret; ConnectionProblem when there is none."""
        if self._db is not None and time.monotonic() - self._read_at < SECRET_CACHE_SECONDS:
            return self._db
        ref = spec.database.secret_ref
        try:
            dsn = await self._kube.read_secret_value(self._namespace, ref.name, ref.key)
        except (SecretNotFound, SecretKeyMissing, Forbidden) as exc:
            await self.close()
            raise ConnectionProblem(
                _REASONS[type(exc)], f"spec.database.secretRef: {exc}."
            ) from None
        except ClusterError as exc:
            # The apiserver hiccupped: keep using the URL we have, if any.
            log.warning("namespace %s: %s", self._namespace, exc)
            if self._db is None:
                raise ConnectionProblem("SecretUnreadable", str(exc)) from None
            return self._db
        self._read_at = time.monotonic()
        if dsn == self._dsn and self._db is not None:
            return self._db
        await self.close()
        try:
            db = RiverDatabase(dsn)
        except Exception as exc:  # libpq's parser rejects the URL
            raise ConnectionProblem(
                "InvalidDatabaseURL",
                f"spec.database.secretRef: the value of key {ref.key} in Secret {ref.name} is"
                f" not a valid PostgreSQL URL ({type(exc).__name__})",
            ) from None
        await db.open()
        self._db, self._dsn = db, dsn
        return db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db, self._dsn = self._db, None, None
            await db.close()
