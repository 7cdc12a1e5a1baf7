"""The Kubernetes API calls Lifeguard makes outside kopf's watches.

The official client is synchronous; every call runs in a worker thread so a slow apiserver never
blocks the operator's event loop, and has a request timeout so a hung one (etcd down) never
holds a scan for long. Errors come back as the typed exceptions below, which the supervisor
turns into conditions and Events: transport failures too (urllib3's errors are not
ApiExceptions), so no caller has to know the client library.
"""

import asyncio
import base64
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from lifeguard.cluster.reachability import Reachability
from lifeguard.model.policy import GROUP, PLURAL, VERSION

COMPONENT = "river-lifeguard"
NODE_LEASE_NAMESPACE = "kube-node-lease"

# (connect, read) seconds for every call. A healthy apiserver answers these small requests in
# milliseconds; with etcd down it holds them for a minute before answering 500.
REQUEST_TIMEOUT = (5.0, 10.0)
# Answers that mean the apiserver (or its etcd) cannot serve, not that the request was wrong.
OUTAGE_STATUSES = frozenset({500, 502, 503, 504})


class ClusterError(Exception):
    """A Kubernetes API call failed; the message says which object and why."""


class ApiserverUnreachable(ClusterError):
    """No answer (connection refused, timeout) or an answer saying it cannot serve now."""


class NoCredentials(ClusterError):
    """Neither a pod's ServiceAccount nor a usable kubeconfig: nothing to talk to the API with."""


class SecretNotFound(ClusterError):
    pass


class SecretKeyMissing(ClusterError):
    pass


class Forbidden(ClusterError):
    pass


class EvictionResult(StrEnum):
    EVICTED = "Evicted"
    # A PodDisruptionBudget forbids it now (HTTP 429): try again on a later scan.
    BLOCKED = "Blocked"
    NOT_FOUND = "NotFound"
    # The uid precondition failed (HTTP 409): a new pod took the name; it is not evicted.
    REPLACED = "Replaced"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What an Event is about."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


def load_config() -> kubernetes.client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG);
    NoCredentials, with the loader's reason, when there are neither."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        try:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise NoCredentials(
                "no Kubernetes credentials: neither a pod's ServiceAccount nor a usable"
                f" kubeconfig ($KUBECONFIG or ~/.kube/config): {exc}"
            ) from None
    return kubernetes.client.ApiClient()


def current_namespace() -> str:
    """The namespace of the kubeconfig's current context, as kubectl would use it."""
    try:
        _, context = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, FileNotFoundError):
        return "default"
    return str((context or {}).get("context", {}).get("namespace") or "default")


def _json(response: Any) -> Any:
    return json.loads(response.data)


# urllib3 starts its messages with the connection ("HTTPSConnection(host='…', port=…): "); the
# caller names the URL already.
_CONNECTION_PREFIX = re.compile(r"^<?\w*HTTPS?Connection(?:Pool)?\([^)]*\)>?: ")


def _transport_error(exc: BaseException) -> str:
    """A short cause: urllib3 wraps the socket error in MaxRetryError(reason=...), and its
    timeout errors carry the connection first and the message last."""
    reason = getattr(exc, "reason", None) or exc
    last = reason.args[-1] if isinstance(reason, BaseException) and reason.args else None
    text = last if isinstance(last, str) else str(reason)
    text = _CONNECTION_PREFIX.sub("", text.strip()) or type(reason).__name__
    return text if len(text) <= 200 else text[:199] + "…"


class KubeClient:
    """Async facade over the few API calls the operator and the CLI need."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient | None = None,
        *,
        reachability: Reachability | None = None,
    ) -> None:
        self._api = api_client or load_config()
        self._core = kubernetes.client.CoreV1Api(self._api)
        self._custom = kubernetes.client.CustomObjectsApi(self._api)
        self._coordination = kubernetes.client.CoordinationV1Api(self._api)
        self._batch = kubernetes.client.BatchV1Api(self._api)
        self._host = socket.gethostname()
        self.reachability = reachability or Reachability(time.monotonic)

    async def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs one API call in a thread with the request timeout; tells `reachability`.

        ApiExceptions are re-raised for the caller to name; transport failures and fail-fast
        refusals during an outage become ApiserverUnreachable.
        """
        reach = self.reachability
        if not reach.may_call():
            error = reach.outage.error if reach.outage is not None else "unknown"
            raise ApiserverUnreachable(f"{what}: the apiserver is unreachable ({error})")
        try:
            result = await asyncio.to_thread(
                method, *args, _request_timeout=REQUEST_TIMEOUT, **kwargs
            )
        except ApiException as exc:
            if exc.status in OUTAGE_STATUSES or not exc.status:
                reach.failed(f"HTTP {exc.status} {exc.reason}")
                raise ApiserverUnreachable(
                    f"{what}: the apiserver answered {exc.status} {exc.reason}"
                ) from None
            reach.succeeded()
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            message = _transport_error(exc)
            reach.failed(message)
            raise ApiserverUnreachable(f"{what}: {message}") from None
        except BaseException:
            reach.released()
            raise
        reach.succeeded()
        return result

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        """The configured client, for callers that need an API group of their own."""
        return self._api

    @property
    def server(self) -> str:
        """The apiserver's URL, as the configuration names it."""
        return str(self._api.configuration.host)

    async def server_version(self) -> str:
        """The apiserver's version (`/version`): readable by every authenticated user."""
        try:
            info = await self._call(
                "reading the server version", kubernetes.client.VersionApi(self._api).get_code
            )
        except ApiException as exc:
            raise ClusterError(f"reading the server version: {exc.status} {exc.reason}") from None
        return str(info.git_version)

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = await self._call(
                f"reading Secret {namespace}/{name}",
                self._core.read_namespaced_secret,
                name,
                namespace,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                raise SecretNotFound(f"Secret {namespace}/{name} does not exist") from None
            if exc.status == 403:
                raise Forbidden(f"not allowed to read Secret {namespace}/{name}") from None
            raise ClusterError(f"reading Secret {namespace}/{name}: {exc.reason}") from None
        data = _json(secret).get("data") or {}
        if key not in data:
            raise SecretKeyMissing(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode().strip()

    async def evict_pod(self, namespace: str, name: str, uid: str = "") -> EvictionResult:
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if uid:
            # Never evict a successor pod that reuses the name.
            body["deleteOptions"] = {"preconditions": {"uid": uid}}
        try:
            await self._call(
                f"evicting pod {namespace}/{name}",
                self._core.create_namespaced_pod_eviction,
                name,
                namespace,
                cast(Any, body),
            )
        except ApiException as exc:
            if exc.status == 429:
                return EvictionResult.BLOCKED
            if exc.status == 404:
                return EvictionResult.NOT_FOUND
            if exc.status == 409:
                return EvictionResult.REPLACED if uid else EvictionResult.NOT_FOUND
            if exc.status == 403:
                raise Forbidden(f"not allowed to evict pod {namespace}/{name}") from None
            raise ClusterError(f"evicting pod {namespace}/{name}: {exc.reason}") from None
        return EvictionResult.EVICTED

    async def patch_policy_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            await self._call(
                f"patching status of JobPolicy {namespace}/{name}",
                self._custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": status},
            )
        except ApiException as exc:
            if exc.status == 404:
                return  # deleted meanwhile: its supervisor is being stopped
            raise ClusterError(
                f"patching status of JobPolicy {namespace}/{name}: {exc.reason}"
            ) from None

    async def get_policy(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            response = await self._call(
                f"reading JobPolicy {namespace}/{name}",
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                raise ClusterError(f"JobPolicy {namespace}/{name} not found") from None
            raise ClusterError(f"reading JobPolicy {namespace}/{name}: {exc.reason}") from None
        result: dict[str, Any] = _json(response)
        return result

    async def list_pods(self, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        try:
            response = await self._call(
                f"listing pods in {namespace}",
                self._core.list_namespaced_pod,
                namespace,
                label_selector=label_selector,
                _preload_content=False,
            )
        except ApiException as exc:
            raise ClusterError(f"listing pods in {namespace}: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def list_jobs(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's batch/v1 Jobs; none when RBAC forbids reading them."""
        try:
            response = await self._call(
                f"listing Jobs in {namespace}",
                self._batch.list_namespaced_job,
                namespace,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 403:
                return []
            raise ClusterError(f"listing Jobs in {namespace}: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def list_policies(self, namespace: str) -> list[dict[str, Any]]:
        """The JobPolicies of a namespace."""
        try:
            response = await self._call(
                f"listing JobPolicies in {namespace}",
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                _preload_content=False,
            )
        except ApiException as exc:
            raise ClusterError(f"listing JobPolicies in {namespace}: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def list_pods_everywhere(self, label_selector: str = "") -> list[dict[str, Any]] | None:
        """The pods of every namespace, or None when RBAC forbids listing them."""
        try:
            response = await self._call(
                "listing pods",
                self._core.list_pod_for_all_namespaces,
                label_selector=label_selector,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 403:
                return None
            raise ClusterError(f"listing pods: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def list_nodes(self) -> list[dict[str, Any]] | None:
        """All nodes, or None when RBAC forbids reading them."""
        try:
            response = await self._call(
                "listing nodes", self._core.list_node, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 403:
                return None
            raise ClusterError(f"listing nodes: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def list_node_leases(self) -> list[dict[str, Any]] | None:
        """The kubelets' Leases in kube-node-lease, or None when RBAC forbids reading them."""
        try:
            response = await self._call(
                "listing node Leases",
                self._coordination.list_namespaced_lease,
                NODE_LEASE_NAMESPACE,
                resource_version="0",  # served from the apiserver's cache
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 403:
                return None
            raise ClusterError(f"listing node Leases: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def list_leases(self, label_selector: str) -> list[dict[str, Any]] | None:
        """Leases in every namespace matching the selector, or None when RBAC forbids it."""
        try:
            response = await self._call(
                "listing Leases",
                self._coordination.list_lease_for_all_namespaces,
                label_selector=label_selector,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 403:
                return None
            raise ClusterError(f"listing Leases: {exc.reason}") from None
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    async def post_event(self, about: ObjectRef, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event, as `kubectl describe` shows them; failures are not fatal."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{about.name}.", "namespace": about.namespace},
            "involvedObject": {
                "apiVersion": about.api_version,
                "kind": about.kind,
                "namespace": about.namespace,
                "name": about.name,
                "uid": about.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT, "host": self._host},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._host,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._call(
                f"posting Event {reason} on {about.kind} {about.name}",
                self._core.create_namespaced_event,
                about.namespace,
                cast(Any, body),
            )
        except ApiException as exc:
            raise ClusterError(
                f"posting Event {reason} on {about.kind} {about.name}: {exc.reason}"
            ) from None
