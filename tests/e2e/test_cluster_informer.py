"""Lifeguard's pod informer against the real apiserver, and against one that never answers.

What the outage test (test_operator_restarts.py) relies on, checked on its own: the informer
lists, then follows additions and deletions through a quiet watch that outlives the page
timeout, and a request that gets no answer fails after one read timeout instead of urllib3's
four, then is tried again by the informer itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator

import kubernetes
import pytest

from devenv.controlplane import ControlPlane
from lifeguard.cluster.informer import PODS, Informer, Key, Sink
from lifeguard.cluster.kube import KubeClient
from lifeguard.model.observation import PodFacts

pytestmark = pytest.mark.e2e

NAMESPACE = "informer"
# A page's read timeout much shorter than the quiet spell below: a watch bound by it would fail
# (and say so) several times over.
SHORT = (5.0, 0.5)


class Recorder:
    """A sink that keeps what the informer delivered, in order."""

    def __init__(self) -> None:
        self.put: list[str] = []
        self.dropped: list[str] = []
        self.listed = asyncio.Event()

    def sink(self) -> Sink[PodFacts]:
        def vanished(_namespace: str | None, _seen: set[Key]) -> Iterable[PodFacts]:
            return ()

        async def listed(_what: str) -> None:
            self.listed.set()

        return Sink(
            put=lambda pod: self.put.append(pod.name),
            drop=lambda pod: self.dropped.append(pod.name),
            vanished=vanished,
            listed=listed,
        )


def pod(name: str) -> str:
    # Bound to a node no kubelet runs: the pod exists and is watched, nothing runs it.
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "nodeName": "informer-nowhere",
                "containers": [{"name": "c", "image": "lifeguard.invalid/none"}],
            },
        }
    )


async def until(check: Callable[[], bool], what: str) -> None:
    """Waits up to 20 s for `check`, on the loop the informer delivers on."""
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not seen in 20 s: {what}")


async def running(informer: Informer[PodFacts], body: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.create_task(informer.run())
    try:
        await body()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_a_quiet_watch_outlives_the_page_timeout_and_sees_what_follows(
    control_plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    plane = control_plane
    plane.kubectl("create", "namespace", NAMESPACE)
    plane.kubectl("apply", "-f", "-", input=pod("before"))
    api = kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig))
    seen = Recorder()
    informer = Informer(KubeClient(api), PODS, seen.sink(), namespace=NAMESPACE, timeout=SHORT)

    async def body() -> None:
        await asyncio.wait_for(seen.listed.wait(), 20)
        assert seen.put == ["before"]
        await asyncio.sleep(3.0)  # six read timeouts of nothing on the watch
        await asyncio.to_thread(plane.kubectl, "apply", "-f", "-", input=pod("after"))
        await until(lambda: "after" in seen.put, "the pod created after a quiet spell")
        await asyncio.to_thread(
            plane.kubectl, "delete", "pod", "before", "-n", NAMESPACE, "--grace-period=0", "--force"
        )
        await until(lambda: seen.dropped == ["before"], "the deleted pod")

    with caplog.at_level(logging.INFO, logger="lifeguard.cluster.informer"):
        asyncio.run(running(informer, body))
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    plane.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A loopback port that accepts connections and never answers: an apiserver whose
    requests hang. Yields the port and the connections accepted so far."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_a_request_without_an_answer_fails_after_one_read_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with silent_server() as (port, accepted):
        configuration = kubernetes.client.Configuration()
        configuration.host = f"http://127.0.0.1:{port}"
        kube = KubeClient(kubernetes.client.ApiClient(configuration))
        seen = Recorder()
        informer = Informer(kube, PODS, seen.sink(), namespace=NAMESPACE, timeout=SHORT)

        def failures() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

        async def body() -> None:
            await until(lambda: bool(failures()), "the failed listing said")
            # urllib3's default would have made three more tries on new connections first.
            assert len(accepted) == 1
            await asyncio.sleep(1.5)  # the informer tries again after its own pause ...

        with caplog.at_level(logging.INFO, logger="lifeguard.cluster.informer"):
            asyncio.run(running(informer, body))
        # ... said once for the whole streak, and nothing was listed meanwhile.
        assert len(accepted) >= 2
        assert len(failures()) == 1, failures()
        assert "read timed out" in failures()[0].lower(), failures()
        assert not seen.listed.is_set()
