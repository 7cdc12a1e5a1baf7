"""A minimal Kubernetes API client for the node agent: JSON over HTTPS from a kubeconfig.

The agent needs a handful of calls (get, create, patch, delete, watch) and must control every
byte of its status patches, so it speaks plain HTTPS instead of a generated client.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Json = dict[str, Any]

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class ApiError(RuntimeError):
    """The apiserver answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


def _material(entry: dict[str, Any], key: str, secrets_dir: Path, base: Path) -> Path | None:
    """A certificate/key path from `<key>-data` (written to `secrets_dir`) or `<key>` (a file)."""
    data = entry.get(f"{key}-data")
    if data:
        path = secrets_dir / key
        path.write_bytes(base64.b64decode(data))
        path.chmod(0o600)
        return path
    name = entry.get(key)
    if name:
        return (base / name) if not Path(name).is_absolute() else Path(name)
    return None


class KubeClient:
    """Thread-safe: each thread keeps its own HTTPS connection to the apiserver."""

    def __init__(self, kubeconfig: Path, timeout: float = 30.0) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config.get("current-context") or config["contexts"][0]["name"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(
            (u.get("user") or {} for u in config.get("users", []) if u["name"] == context["user"]),
            {},
        )
        url = urllib.parse.urlsplit(cluster["server"])
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 443
        self.timeout = timeout
        # Key material stays in a private temp dir for ssl.load_cert_chain, which wants files.
        self._secrets = tempfile.TemporaryDirectory(prefix="nodeagent-kube-")
        secrets_dir, base = Path(self._secrets.name), kubeconfig.parent
        self.context = ssl.create_default_context()
        ca = _material(cluster, "certificate-authority", secrets_dir, base)
        if ca is not None:
            self.context.load_verify_locations(cafile=str(ca))
        if cluster.get("insecure-skip-tls-verify"):
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        cert = _material(user, "client-certificate", secrets_dir, base)
        key = _material(user, "client-key", secrets_dir, base)
        if cert is not None:
            self.context.load_cert_chain(str(cert), str(key) if key else None)
        self.headers = {"Accept": "application/json", "User-Agent": "lifeguard-nodeagent"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self._local = threading.local()

    def _connection(self, timeout: float | None = None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout or self.timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Json | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Json:
        """One API call; returns the decoded JSON answer or raises ApiError."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        payload = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if payload is not None:
            headers["Content-Type"] = content_type
        # One retry on a fresh connection: a kept-alive connection may have been closed.
        for attempt in range(2):
            conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._connection()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                text = response.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 1:
                    raise ApiError(0, method, path, str(exc)) from exc
                continue
            if response.status >= 400:
                raise ApiError(response.status, method, path, text)
            return json.loads(text) if text else {}
        raise AssertionError("unreachable")

    def get(self, path: str, **query: str) -> Json:
        return self.request("GET", path, query=query or None)

    def create(self, path: str, body: Json) -> Json:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Json, content_type: str = STRATEGIC_MERGE) -> Json:
        return self.request("PATCH", path, body, content_type=content_type)

    def delete(self, path: str, body: Json | None = None) -> Json:
        return self.request("DELETE", path, body)

    def watch(self, path: str, timeout_seconds: int = 60, **query: str) -> Iterator[Json]:
        """Yields watch events ({type, object}) until the server ends the watch."""
        params = {**query, "watch": "true", "timeoutSeconds": str(timeout_seconds)}
        full = f"{path}?{urllib.parse.urlencode(params)}"
        conn = self._connection(timeout=timeout_seconds + 15)
        try:
            conn.request("GET", full, headers=self.headers)
            response = conn.getresponse()
            if response.status >= 400:
                raise ApiError(response.status, "WATCH", full, response.read().decode())
            while True:
                line = response.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(0, "WATCH", full, str(exc)) from exc
        finally:
            conn.close()
