"""The demo's timeline: what Kubernetes, Lifeguard and River say, as it happens.

A background thread polls three sources twice a second and prints a row for each change:
- Kubernetes: the worker pods (running, OOMKilled, terminating, gone) and the nodes' readiness;
- Lifeguard: the JobPolicy's status.recentActions (verdict and action, in database time);
- River: the state, attempt and worker of each tracked job.
Nothing here decides anything; it only watches, so the scenario's own waits stay the judge.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from demo.output import Narrator
from devenv.nodeagent.kube import ApiError
from devenv.scenario import Scenario

Json = dict[str, Any]
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Decision:
    """One entry of the policy's status.recentActions."""

    time: datetime
    job_id: int
    kind: str
    pod: str | None
    cause: str
    reason: str
    action: str
    applied: bool

    @classmethod
    def from_status(cls, entry: Json) -> Decision:
        return cls(
            time=datetime.fromisoformat(entry["time"].replace("Z", "+00:00")),
            job_id=int(entry["jobId"]),
            kind=entry["kind"],
            pod=entry.get("pod"),
            cause=entry["cause"],
            reason=entry["reason"],
            action=entry["action"],
            applied=bool(entry["applied"]),
        )

    @property
    def verdict(self) -> str:
        return f"{self.cause}/{self.reason}"


@dataclass
class Timeline:
    """Polls in a thread between `start()` and `stop()`; `decisions` keeps every one seen."""

    world: Scenario
    policy: str
    out: Narrator
    decisions: list[Decision] = field(default_factory=list)
    _jobs: dict[int, str] = field(default_factory=dict)
    _job_states: dict[int, tuple[str, int, str]] = field(default_factory=dict)
    _pod_states: dict[str, str] = field(default_factory=dict)
    _node_states: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[int, str, str]] = field(default_factory=set)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _polled: threading.Condition = field(default_factory=threading.Condition)
    _polls: int = 0
    errors: list[str] = field(default_factory=list)

    def track(self, job_id: int, kind: str) -> None:
        with self._lock:
            self._jobs[job_id] = kind

    def start(self) -> None:
        self.out.timeline_header()
        self._thread = threading.Thread(target=self._run, name="demo-timeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def catch_up(self, timeout: float = 10.0) -> None:
        """Returns once a poll that began after this call has finished, so the rows printed so
        far include everything that happened before it (the story's next line comes after)."""
        with self._polled:
            target = self._polls + 2
            self._polled.wait_for(
                lambda: self._polls >= target or self._thread is None, timeout=timeout
            )

    def decisions_for(self, job_id: int) -> list[Decision]:
        with self._lock:
            return [d for d in self.decisions if d.job_id == job_id]

    # -- polling ---------------------------------------------------------------------------
    def _run(self) -> None:
        with psycopg.connect(self.world.dsn, autocommit=True, row_factory=dict_row) as conn:
            while not self._stopping.wait(POLL_SECONDS):
                self.poll(conn)
            self.poll(conn)  # the last word: changes since the previous poll

    def poll(self, conn: psycopg.Connection[Json]) -> None:
        sources = (self._nodes, self._pods, self._actions, lambda: self._river(conn))
        for source in sources:
            try:
                source()
            except (ApiError, OSError, psycopg.Error) as exc:
                # A slow apiserver or database must not end the timeline: the next poll retries.
                self.errors.append(str(exc))
        with self._polled:
            self._polls += 1
            self._polled.notify_all()

    def _nodes(self) -> None:
        for node in self.world.kube.get("/api/v1/nodes").get("items") or []:
            name = node["metadata"]["name"]
            conditions = (node.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c["type"] == "Ready"), None)
            state = "Ready" if ready and ready["status"] == "True" else "NotReady"
            if self._node_states.get(name, "Ready") != state:
                self.out.timeline(_now(), None, "", "", f"node {name} {state}")
            self._node_states[name] = state

    def _pods(self) -> None:
        path = f"/api/v1/namespaces/{self.world.namespace}/pods"
        pods = {p["metadata"]["name"]: p for p in self.world.kube.get(path).get("items") or []}
        for name in sorted(set(self._pod_states) | set(pods)):
            state = pod_state(pods[name]) if name in pods else "deleted"
            previous = self._pod_states.get(name)
            if previous != state and not (previous is None and state == "running"):
                self.out.timeline(_now(), None, "", name, f"pod {state}")
            self._pod_states[name] = state

    def _actions(self) -> None:
        status = self.world.policy(self.policy).get("status") or {}
        entries = [Decision.from_status(e) for e in status.get("recentActions") or []]
        for decision in sorted(entries, key=lambda d: d.time):
            key = (decision.job_id, decision.time.isoformat(), decision.action)
            if key in self._seen:
                continue
            self._seen.add(key)
            with self._lock:
                self.decisions.append(decision)
            action = decision.action if decision.applied else f"{decision.action} (not applied)"
            self.out.timeline(
                decision.time,
                decision.job_id,
                decision.kind,
                decision.pod or "",
                decision.verdict,
                action=f"-> {action}",
            )

    def _river(self, conn: psycopg.Connection[Json]) -> None:
        with self._lock:
            ids = list(self._jobs)
        if not ids:
            return
        table = f'"{self.world.schema}".river_job' if self.world.schema else "river_job"
        rows = conn.execute(
            f"SELECT id, kind, state::text AS state, attempt, attempted_by FROM {table}"
            " WHERE id = ANY(%s) ORDER BY id",
            (ids,),
        ).fetchall()
        for row in rows:
            worker = client_pod(row["attempted_by"], self._pod_states)
            key = (row["state"], row["attempt"], worker)
            if self._job_states.get(row["id"]) == key:
                continue
            self._job_states[row["id"]] = key
            if row["state"] in ("available", "scheduled"):
                continue  # waiting to be fetched: not worth a row of its own
            pod = worker if row["state"] == "running" else ""
            self.out.timeline(_now(), row["id"], row["kind"], pod, f"River: {describe_state(row)}")


def _now() -> datetime:
    return datetime.now(UTC)


def pod_state(pod: Json) -> str:
    """running, terminating, or the container's end (e.g. "Failed: OOMKilled, exit 137")."""
    if pod["metadata"].get("deletionTimestamp"):
        return "terminating"
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        ended = (container.get("state") or {}).get("terminated")
        if ended:
            return f"{status.get('phase', 'Failed')}: {ended.get('reason', 'Error')}" + (
                f", exit {ended['exitCode']}" if "exitCode" in ended else ""
            )
        if (container.get("state") or {}).get("running"):
            return "running"
    return str(status.get("phase", "Pending")).lower()


def client_pod(attempted_by: list[str] | None, known_pods: dict[str, str]) -> str:
    """The pod behind River's last client ID (River's default ID is "<hostname>_<time>")."""
    if not attempted_by:
        return ""
    client = attempted_by[-1]
    for pod in known_pods:
        if client.startswith(pod.replace(".", "_") + "_"):
            return pod
    return client


def describe_state(row: Json) -> str:
    return f"{row['state']}, attempt {row['attempt']}"
