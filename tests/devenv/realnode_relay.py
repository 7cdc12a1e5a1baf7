"""Loopback inside a pod: relays a port of the pod's own loopback to the host's loopback.

The control plane and PostgreSQL listen on the host's 127.0.0.1 only, and the network rule of
the test machine allows traffic to loopback and inside network namespaces the environment
creates. The operator's pod has a network namespace of its own (the restricted Pod Security
Standard forbids hostNetwork), so the environment opens a listening socket on 127.0.0.1:PORT
*inside* that namespace and connects each accepted connection to 127.0.0.1:PORT of the host.
Both legs are loopback; the pod sees the apiserver and PostgreSQL at the addresses the host
uses. Linux switches network namespaces per thread (setns), so the listening socket is made
in the pod's namespace and everything else runs in the host's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path

CLONE_NEWNET = 0x40000000
LOOPBACK = "127.0.0.1"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def pod_pid(pod_uid: str) -> int | None:
    """A process of the pod (any of its containers, or its sandbox), found by its cgroup."""
    marker = f"pod{pod_uid}"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cgroup").read_text():
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
