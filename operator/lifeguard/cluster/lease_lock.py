"""The leader Lease itself: conditional reads and writes, and a watch of its releases.

Each write is conditional on the resourceVersion last read, so two replicas never both take the
Lease. The calls get a thread of their own: the shared worker threads may be busy with
evictions or Events when a renewal is due, and a renewal that waits its turn behind them could
cost the leader its term. The watch (a field selector on the Lease's name, in a thread of its
own) only tells the campaign that the holder was emptied; it decides nothing.
"""

import asyncio
import functools
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
import kubernetes.watch
import urllib3
from kubernetes.client.exceptions import ApiException

from lifeguard.cluster.election import OPERATOR_LEASE_LABELS, LeaseRecord
from lifeguard.cluster.kube import ClusterError

log = logging.getLogger(__name__)

# How long one watch request of the Lease lasts (the apiserver ends it), and the pause after a
# failed one.
WATCH_SECONDS = 300
WATCH_RETRY_SECONDS = 5.0


class LeaseConflict(ClusterError):
    """The Lease changed since it was read (HTTP 409): someone else wrote it first."""


class LeaseLock:
    """Reads and writes one Lease; each write is conditional on the resourceVersion read."""

    def __init__(
        self, api_client: kubernetes.client.ApiClient, namespace: str, name: str, timeout: float
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.uid = ""
        self._api = kubernetes.client.CoordinationV1Api(api_client)
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leader-lease")
        self._resource_version = ""
        self._kept_metadata: dict[str, Any] = {}
        self._closed = threading.Event()
        self._watch: kubernetes.watch.Watch | None = None
        self._watcher: threading.Thread | None = None

    def describe(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    async def get(self) -> LeaseRecord | None:
        try:
            body = await self._call(
                self._api.read_namespaced_lease, self.name, self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._error("reading", exc) from None
        return self._remember(body)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        lease = self._body({"labels": dict(OPERATOR_LEASE_LABELS)}, record)
        try:
            body = await self._call(
                self._api.create_namespaced_lease, self.namespace, lease, _preload_content=False
            )
        except ApiException as exc:
            raise self._error("creating", exc) from None
        return self._remember(body)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """Replaces the spec only if nobody wrote the Lease since this lock last read it."""
        # A replace writes the whole object: keep the labels and annotations it had (the
        # chart's, by which `lifeguard explain` finds the Lease).
        lease = self._body(
            {**self._kept_metadata, "resourceVersion": self._resource_version}, record
        )
        try:
            body = await self._call(
                self._api.replace_namespaced_lease,
                self.name,
                self.namespace,
                lease,
                _preload_content=False,
            )
        except ApiException as exc:
            raise self._error("updating", exc) from None
        return self._remember(body)

    def watch_releases(self, on_released: Callable[[], None]) -> None:
        """Calls `on_released` (from a thread of its own) whenever the watch sees the Lease with
        no holder; stops at `close`."""
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._follow, args=(on_released,), name="leader-lease-watch", daemon=True
            )
            self._watcher.start()

    def close(self) -> None:
        self._closed.set()
        watch = self._watch
        if watch is not None:
            # Ends the stream at its next event or timeout; the thread is a daemon meanwhile.
            watch.stop()  # type: ignore[no-untyped-call]
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _follow(self, on_released: Callable[[], None]) -> None:
        """The watch's thread: one request after another until `close`; a failed one is tried
        again after a pause (logged at debug level: the periodic tries log what matters)."""
        failing = False
        while not self._closed.is_set():
            self._watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self._api.list_namespaced_lease,
                    self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=WATCH_SECONDS,
                    _request_timeout=(self._timeout, WATCH_SECONDS + self._timeout),
                ):
                    failing = False
                    spec = (event.get("raw_object") or {}).get("spec") or {}
                    if event.get("type") in ("ADDED", "MODIFIED") and not spec.get(
                        "holderIdentity"
                    ):
                        on_released()
            except ApiException as exc:
                if exc.status == 403:
                    log.info(
                        "leader election: may not watch %s; a standby takes over at its next"
                        " try after a release (grant list and watch on it to take over at once)",
                        self.describe(),
                    )
                    return
                failing = self._watch_failed(failing, f"{exc.status} {exc.reason}")
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                failing = self._watch_failed(failing, str(exc))
            except RuntimeError:
                return  # the event loop it reports to is closed: the process is ending
            except Exception as exc:  # never worth a dead thread's traceback: tries go on
                log.warning(
                    "leader election: stopped watching %s (%s: %s); a standby takes over at"
                    " its next try after a release",
                    self.describe(),
                    type(exc).__name__,
                    exc,
                )
                return

    def _watch_failed(self, failing: bool, error: str) -> bool:
        if not failing and not self._closed.is_set():
            log.debug("leader election: watching %s: %s", self.describe(), error)
        self._closed.wait(WATCH_RETRY_SECONDS)
        return True

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        call = functools.partial(method, *args, _request_timeout=self._timeout, **kwargs)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._executor, call)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{self.describe()}: {exc}") from None
        body: dict[str, Any] = json.loads(response.data)
        return body

    def _body(self, metadata: dict[str, Any], record: LeaseRecord) -> dict[str, Any]:
        """The Lease object to write: this lock's name and namespace over `metadata`."""
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {**metadata, "name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }

    def _remember(self, body: dict[str, Any]) -> LeaseRecord:
        metadata = body.get("metadata") or {}
        self._resource_version = str(metadata.get("resourceVersion") or "")
        self.uid = str(metadata.get("uid") or "")
        self._kept_metadata = {
            key: metadata[key] for key in ("labels", "annotations") if metadata.get(key)
        }
        return LeaseRecord.from_spec(body.get("spec"))

    def _error(self, doing: str, exc: ApiException) -> ClusterError:
        if exc.status == 409:
            return LeaseConflict(f"{doing} {self.describe()}: changed meanwhile")
        if exc.status == 403:
            return ClusterError(
                f"not allowed {doing} {self.describe()}: the operator's Role must grant get,"
                " create and update on this Lease"
            )
        return ClusterError(f"{doing} {self.describe()}: {exc.status} {exc.reason}")
