"""The operator's first contact with the apiserver: wait for it, never crash on it.

When a cluster starts cold, or its control plane is upgraded, the operator's pod can start
before the apiserver answers. A crash then would print a traceback, and the kubelet's restart
backoff (up to five minutes) would keep the operator down long after the apiserver is back. So
the operator says which URL it cannot reach and why, once per try, tries again with a backoff
(1 s doubling to 30 s), and answers /healthz meanwhile: it is waiting, not broken, and a restart
would not help. An apiserver that answers and refuses (wrong credentials: 401) will not change
its mind by waiting: that ends the start with one line and a non-zero exit.
"""

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lifeguard.cluster.kube import ApiserverUnreachable, ClusterError, KubeClient
from lifeguard.cluster.reachability import Reachability

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0

Sleep = Callable[[float], Awaitable[None]]


class StartupRefused(Exception):
    """The apiserver answered and refused the operator; the message is the one line to log."""


async def reach_apiserver(
    kube: KubeClient,
    *,
    read_nodes: bool,
    health_port: int | None = None,
    sleep: Sleep = asyncio.sleep,
    first_backoff: float = FIRST_BACKOFF_SECONDS,
    max_backoff: float = MAX_BACKOFF_SECONDS,
) -> bool:
    """Returns once the apiserver answers the operator's first call: whether nodes are readable
    (False when `read_nodes` is not asked). Until then, serves /healthz on `health_port`.

    The tries bypass `kube`'s own outage memory: an outage before the first answer is not one
    the policies need to hear of, and its fail-fast period would swallow the early tries.
    """
    probe = KubeClient(
        kube.api_client, reachability=Reachability(time.monotonic, probe_every=0.0, quiet=True)
    )
    backoff, tries, started = first_backoff, 0, time.monotonic()
    health: _WaitingHealth | None = None
    serve_health = health_port is not None
    try:
        while True:
            tries += 1
            try:
                readable = await _first_call(probe, read_nodes)
            except ApiserverUnreachable as exc:
                outage = probe.reachability.outage
                reason = outage.error if outage is not None else str(exc)
            except ClusterError as exc:
                raise StartupRefused(
                    f"cannot use the Kubernetes API at {kube.server}: {exc}"
                ) from None
            else:
                if tries > 1:
                    log.info(
                        "the Kubernetes API at %s answers, after %.0fs",
                        kube.server,
                        time.monotonic() - started,
                    )
                return readable
            log.error(
                "cannot reach the Kubernetes API at %s: %s; retrying in %.0fs",
                kube.server,
                reason,
                backoff,
            )
            if serve_health and health_port is not None:
                serve_health, health = False, _WaitingHealth.start(health_port)
            await sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
    finally:
        if health is not None:
            health.stop()


async def _first_call(kube: KubeClient, read_nodes: bool) -> bool:
    if read_nodes:
        return await kube.list_nodes() is not None
    await kube.server_version()
    return False


class _WaitingHealth:
    """/healthz while the operator waits for the apiserver; kopf serves it from then on."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="health-while-waiting", daemon=True
        )
        self._thread.start()

    @classmethod
    def start(cls, port: int) -> "_WaitingHealth | None":
        try:
            server = ThreadingHTTPServer(("0.0.0.0", port), _HealthHandler)
        except OSError as exc:
            log.warning("cannot serve /healthz on port %d while waiting: %s", port, exc)
            return None
        return cls(server)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/healthz":
            self.send_error(404)
            return
        body = json.dumps({"waiting": "for the Kubernetes API"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # a probe every few seconds is not news
