"""The operator's start with no apiserver to answer: one line per try naming the URL and the
cause, a growing backoff, /healthz answered while it waits. The client is the real one; the
apiserver's port is a closed loopback port."""

import asyncio
import logging
import socket
import urllib.request

import kubernetes
import pytest

from lifeguard.cluster.kube import KubeClient
from lifeguard.cluster.startup import reach_apiserver


class Enough(Exception):
    pass


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def client_of(url: str) -> KubeClient:
    config = kubernetes.client.Configuration()
    config.host = url
    return KubeClient(kubernetes.client.ApiClient(config))


@pytest.mark.parametrize("read_nodes", [True, False])
async def test_an_unreachable_apiserver_is_named_each_try_with_a_growing_backoff(
    caplog: pytest.LogCaptureFixture, read_nodes: bool
) -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 5:
            raise Enough

    caplog.set_level(logging.INFO)
    with pytest.raises(Enough):
        await reach_apiserver(
            client_of(url), read_nodes=read_nodes, sleep=sleep, first_backoff=1, max_backoff=4
        )
    assert waits == [1, 2, 4, 4, 4]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("lifeguard")]
    assert len(lines) == 5, lines
    for line, wait in zip(lines, waits, strict=True):
        assert line.startswith(f"cannot reach the Kubernetes API at {url}: "), line
        assert "Connection refused" in line and line.endswith(f"; retrying in {wait:.0f}s")
        assert "HTTPSConnection" not in line  # the URL is named once, by the operator


async def test_a_waiting_operator_answers_its_health_probe_and_frees_the_port_after() -> None:
    health_port = closed_port()
    answers: list[int] = []

    async def sleep(_: float) -> None:
        url = f"http://127.0.0.1:{health_port}/healthz"
        with await asyncio.to_thread(urllib.request.urlopen, url, timeout=5) as response:
            answers.append(response.status)
        raise Enough

    kube = client_of(f"https://127.0.0.1:{closed_port()}")
    with pytest.raises(Enough):
        await reach_apiserver(kube, read_nodes=True, health_port=health_port, sleep=sleep)
    assert answers == [200]
    with socket.socket() as sock:  # kopf binds it next
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", health_port))
