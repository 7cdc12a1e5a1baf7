"""The agent's control endpoint: a tiny JSON-over-HTTP server on 127.0.0.1 for tests and demos.

Every control acts on real processes (signals) or on the node's heartbeats; the pod objects
then change because the processes did, never the other way round.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger("nodeagent.control")

Json = dict[str, Any]


class Controlled(Protocol):
    def health(self) -> Json: ...
    def pods(self) -> list[Json]: ...
    def fail_node(self, mode: str) -> Json: ...
    def pause_kubelet(self, seconds: float) -> Json: ...
    def signal_pod(self, namespace: str, name: str, sig: int) -> Json | None: ...


def parse_signal(value: str | int) -> int:
    """A signal from a number or a name ("KILL", "SIGKILL", 9)."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    name = str(value).upper()
    return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])


class ControlServer:
    def __init__(self, agent: Controlled) -> None:
        self.agent = agent
        handler = self._handler_class()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="control", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        agent = self.agent

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.info("control: " + format, *args)

            def _answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._answer(200, agent.health())
                elif self.path == "/pods":
                    self._answer(200, agent.pods())
                else:
                    self._answer(404, {"error": f"no such endpoint {self.path}"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                    self._answer(*self._dispatch(request))
                except (KeyError, ValueError) as exc:
                    self._answer(400, {"error": str(exc)})
                except Exception as exc:  # the control endpoint must survive any request
                    log.exception("control request %s failed", self.path)
                    self._answer(500, {"error": str(exc)})

            def _dispatch(self, request: Json) -> tuple[int, Json]:
                if self.path == "/fail":
                    mode = request.get("mode", "kill")
                    if mode not in ("kill", "freeze"):
                        raise ValueError(f"mode must be kill or freeze, not {mode!r}")
                    return 200, agent.fail_node(mode)
                if self.path == "/pause":
                    seconds = float(request["seconds"])
                    if not 0 < seconds <= 3600:
                        raise ValueError(f"seconds must be in (0, 3600], not {seconds}")
                    return 200, agent.pause_kubelet(seconds)
                named = {"/freeze": signal.SIGSTOP, "/thaw": signal.SIGCONT}
                if self.path in named or self.path == "/signal":
                    sig = named.get(self.path) or parse_signal(request["signal"])
                    done = agent.signal_pod(request["namespace"], request["name"], sig)
                    if done is None:
                        return 404, {"error": "no such pod on this node"}
                    return 200, done
                return 404, {"error": f"no such endpoint {self.path}"}

        return Handler
