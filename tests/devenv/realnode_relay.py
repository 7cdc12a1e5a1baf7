"""Loopback inside a pod: relays a port of the pod's own loopback to the host's loopback.

The control plane and PostgreSQL listen on the host's 127.0.0.1 only, and the network rule of
the test machine allows traffic to loopback and inside network namespaces the environment
creates. The operator's pod has a network namespace of its own (the restricted Pod Security
Standard forbids hostNetwork), so the environment opens a listening socket on 127.0.0.1:PORT
*inside* that namespace and connects each accepted connection to 127.0.0.1:PORT of the host.
Both legs are loopback; the pod sees the apiserver and PostgreSQL at the addresses the host
uses. Linux switches network namespaces per thread (setns), so the listening socket is made
in the pod's namespace and everything else runs in the host's.

A relay lives in the process that opened it (`LoopbackRelay`, for tests), or in a daemon of
its own (`start_relay_daemon`, `python -m devenv.realnode_relay`) when the pod must keep
reaching the host after its starter exits (`make demo KEEP=1`); `devenv down` stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from devenv import procs

CLONE_NEWNET = 0x40000000
LOOPBACK = "127.0.0.1"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def pod_pid(pod_uid: str) -> int | None:
    """A process of the pod (any of its containers, or its sandbox), found by its cgroup, that
    is in the pod's network namespace already: runc puts a process being created into the
    pod's cgroup before it joins the pod's namespaces, and a relay into the host's own
    namespace would find the host's ports taken (EADDRINUSE on the apiserver's port)."""
    marker = f"pod{pod_uid}"
    host = os.stat("/proc/self/ns/net").st_ino
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cgroup").read_text() and (
                os.stat(entry / "ns" / "net").st_ino != host
            ):
                return int(entry.name)
        except OSError:
            continue
    return None


def container_pids(container_id: str) -> list[int]:
    """The processes of one container (cgroupfs: its cgroup folder is named by its ID)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if container_id in (entry / "cgroup").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


class Relay(Protocol):
    """An open relay; `close` ends it."""

    def close(self) -> None: ...


class LoopbackRelay:
    """Relays 127.0.0.1:<port> in the network namespace of `pid` to 127.0.0.1:<port> here."""

    def __init__(self, pid: int, ports: Iterable[int]) -> None:
        self._listeners: list[socket.socket] = []
        self._closed = threading.Event()
        host = os.open("/proc/self/ns/net", os.O_RDONLY)
        pod = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            # In a thread of its own: a failure between the two setns calls must never leave
            # the caller's thread in the pod's namespace.
            failure: list[BaseException] = []

            def listen() -> None:
                try:
                    _setns(pod)
                    try:
                        for port in ports:
                            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                            listener.bind((LOOPBACK, port))
                            listener.listen(64)
                            self._listeners.append(listener)
                    finally:
                        _setns(host)
                except BaseException as exc:  # reported to the caller below
                    failure.append(exc)

            thread = threading.Thread(target=listen)
            thread.start()
            thread.join()
            if failure:
                self.close()
                raise failure[0]
        finally:
            os.close(host)
            os.close(pod)
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        port = listener.getsockname()[1]
        while not self._closed.is_set():
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection((LOOPBACK, port), timeout=10)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            for source, sink in ((inside, outside), (outside, inside)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        for listener in self._listeners:
            listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        source.close()


# The relay daemons' names start with it (`devenv down` stops them like any other daemon).
RELAY_PREFIX = "relay-"
_READY = "relaying"


@dataclass(frozen=True)
class RelayDaemon:
    """A relay in a process of its own (see the module's doc); `close` stops it."""

    daemon: procs.Daemon

    def close(self) -> None:
        self.daemon.stop()


def start_relay_daemon(
    state_dir: Path, name: str, pod_uid: str, ports: Iterable[int]
) -> RelayDaemon:
    """Starts `python -m devenv.realnode_relay` for the pod `pod_uid`; waits until it listens."""
    tests_dir = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")])
    argv = [sys.executable, "-m", "devenv.realnode_relay", pod_uid, *map(str, ports)]
    daemon = procs.start_daemon(
        state_dir, RELAY_PREFIX + name, argv, env={**os.environ, "PYTHONPATH": path}
    )
    procs.wait_ready(
        daemon, lambda: _READY in daemon.log_tail(5), timeout=60, what="listening in the pod"
    )
    return RelayDaemon(daemon)


def open_in_pod(pod_uid: str, ports: list[int], timeout: float) -> LoopbackRelay:
    """A relay into the pod's network namespace, through any of its processes: one found may
    be short-lived (a container being created), so a vanished one means look again."""
    deadline = time.monotonic() + timeout
    while True:
        pid = pod_pid(pod_uid)
        if pid is not None:
            try:
                return LoopbackRelay(pid, ports)
            except (FileNotFoundError, ProcessLookupError):
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no process of pod {pod_uid} to relay into within {timeout:.0f}s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.realnode_relay",
        description="Relays 127.0.0.1:PORT inside a pod's network namespace to the host's.",
    )
    parser.add_argument("pod_uid")
    parser.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args(argv)
    relay = open_in_pod(args.pod_uid, args.ports, timeout=30)
    print(f"{_READY} 127.0.0.1:{args.ports} in pod {args.pod_uid}", flush=True)
    # The relay's threads do the work; SIGTERM (procs.stop_pid_file) ends the process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
