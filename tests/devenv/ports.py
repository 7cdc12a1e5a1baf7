"""Free loopback TCP ports, chosen at run time."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"

# Ports handed out by this process: the kernel may offer a port again once its probe socket is
# closed, and two daemons started back to back must not get the same one.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found after 100 tries")
