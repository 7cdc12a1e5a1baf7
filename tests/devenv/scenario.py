"""A namespace with a River database, a JobPolicy, worker pods and a running operator.

The helpers speak of what a scenario does (start a worker pod, enqueue a job, wait for the job
to be retryable) so each end-to-end test reads like the story it checks.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from devenv.controlplane import ControlPlane
from devenv.nodeagent.kube import ApiError, KubeClient

# Re-exported: tests and the bench wait through the scenario helpers.
from devenv.waiting import wait_for as wait_for  # noqa: PLC0414

T = TypeVar("T")
Json = dict[str, Any]

CRD = Path(__file__).resolve().parents[2] / "crds" / "lifeguard.dev_jobpolicies.yaml"
WORKER_LABELS = {"app": "river-worker"}
POLICY_PATH = "/apis/lifeguard.dev/v1alpha1/namespaces/{ns}/jobpolicies"


def install_crd(plane: ControlPlane) -> None:
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))

    def established() -> bool:
        crd = plane.kubectl_json("get", "crd", "jobpolicies.lifeguard.dev")
        status = crd.get("status")
        conditions = (status.get("conditions") if isinstance(status, dict) else None) or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, 60, "the JobPolicy CRD to be Established")


def fast_policy_spec(secret: str = "river-db", **overrides: Any) -> Json:
    """A policy with second-scale timings so scenarios play out in seconds."""
    spec: Json = {
        "database": {"secretRef": {"name": secret}},
        "workers": {"podSelector": {"matchLabels": dict(WORKER_LABELS)}},
        "heartbeat": {"interval": "1s", "missedBeats": 3, "startupGrace": "8s"},
        "tiers": [
            {"match": {"queues": ["stuck"]}, "progressTimeout": "4s"},
        ],
        "actions": {
            "stuck": {"action": "Cancel", "then": "RestartPod", "after": "6s"},
            "unresponsive": {"action": "RestartPod", "then": "Retry", "after": "6s"},
        },
        "scanInterval": "1s",
    }
    spec.update(overrides)
    return spec


@dataclass
class Scenario:
    """One namespace's world: kube client, database, worker binary, and what was created."""

    plane: ControlPlane
    kube: KubeClient
    namespace: str
    dsn: str
    worker: Path
    schema: str | None = None
    pods: list[str] = field(default_factory=list)

    # -- setup ---------------------------------------------------------------------------
    def create_namespace(self) -> None:
        self.kube.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
        )
        # The namespace's default ServiceAccount comes from the controller; pods need it.
        wait_for(
            lambda: _exists(
                self.kube, f"/api/v1/namespaces/{self.namespace}/serviceaccounts/default"
            ),
            60,
            "the default ServiceAccount",
        )

    def create_secret(self, name: str, url: str, key: str = "url") -> None:
        self.kube.create(
            f"/api/v1/namespaces/{self.namespace}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "data": {key: base64.b64encode(url.encode()).decode()},
            },
        )

    def apply_policy(self, name: str, spec: Json) -> Json:
        body = policy_body(self.namespace, name, spec)
        done = self.plane.kubectl(
            "apply", "-n", self.namespace, "-f", "-", input=json.dumps(body), check=False
        )
        assert done.returncode == 0, done.stderr
        return self.policy(name)

    def policy(self, name: str) -> Json:
        return self.kube.get(POLICY_PATH.format(ns=self.namespace) + f"/{name}")

    def condition(self, policy: str, type_: str) -> Json | None:
        conditions = (self.policy(policy).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), None)

    def wait_condition(
        self, policy: str, type_: str, status: str, timeout: float = 60, reason: str | None = None
    ) -> Json:
        def matches() -> Json | None:
            found = self.condition(policy, type_)
            if (
                found
                and found["status"] == status
                and (reason is None or found["reason"] == reason)
            ):
                return found
            return None

        return wait_for(matches, timeout, f"{policy} {type_}={status} {reason or ''}")

    # -- workers -------------------------------------------------------------------------
    def worker_pod(
        self,
        name: str,
        queue: str,
        *,
        env: dict[str, str] | None = None,
        memory: str | None = None,
        node: str | None = None,
        restart_policy: str = "Never",
        labels: dict[str, str] | None = None,
        grace_seconds: int = 5,
    ) -> str:
        """Starts a pod running the example River worker on `queue`; waits until it runs."""
        body = self.worker_pod_body(
            name,
            queue,
            env=env,
            memory=memory,
            node=node,
            restart_policy=restart_policy,
            labels=labels,
            grace_seconds=grace_seconds,
        )
        self.start_pods([body])
        return name

    def worker_pod_body(
        self,
        name: str,
        queue: str,
        *,
        env: dict[str, str] | None = None,
        memory: str | None = None,
        node: str | None = None,
        restart_policy: str = "Never",
        labels: dict[str, str] | None = None,
        grace_seconds: int = 5,
    ) -> Json:
        """The manifest of a pod running the example River worker on `queue` (beats every 1 s
        unless `env` says otherwise)."""
        variables = {
            "DATABASE_URL": self.dsn,
            "WORKER_QUEUES": queue,
            "HEARTBEAT_INTERVAL": "1s",
            "SHUTDOWN_TIMEOUT": "2s",
            **({"RIVER_SCHEMA": self.schema} if self.schema else {}),
            **(env or {}),
        }
        container: Json = {
            "name": "worker",
            "image": "lifeguard/example-worker:dev",
            "command": ["worker", "run"],
            "env": [{"name": k, "value": v} for k, v in variables.items()],
        }
        if memory:
            container["resources"] = {"limits": {"memory": memory}}
        spec: Json = {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": grace_seconds,
            "containers": [container],
        }
        if node:
            spec["nodeName"] = node
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {**WORKER_LABELS, **(labels or {})}},
            "spec": spec,
        }

    def start_pods(self, bodies: list[Json], timeout: float = 60) -> list[str]:
        """Creates the pods at once, then waits until every one runs."""
        names = [str(body["metadata"]["name"]) for body in bodies]
        for body in bodies:
            self.kube.create(f"/api/v1/namespaces/{self.namespace}/pods", body)
            self.pods.append(body["metadata"]["name"])
        for name in names:
            wait_for(lambda n=name: self.running(n), timeout, f"pod {name} to run")  # type: ignore[misc]
        return names

    def pod(self, name: str) -> Json | None:
        try:
            return self.kube.get(f"/api/v1/namespaces/{self.namespace}/pods/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def delete_pod(self, name: str, grace: int = 0) -> None:
        self.kube.delete(
            f"/api/v1/namespaces/{self.namespace}/pods/{name}", {"gracePeriodSeconds": grace}
        )

    def running(self, name: str) -> bool:
        """Whether the pod's (first) container runs."""
        pod = self.pod(name)
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
        return bool(statuses and (statuses[0].get("state") or {}).get("running"))

    # -- jobs ----------------------------------------------------------------------------
    def enqueue(
        self, kind: str, args: Json | None = None, *, queue: str, max_attempts: int = 0
    ) -> int:
        """Inserts one job with the example worker's own `insert`; its id."""
        return self.enqueue_many(kind, args, queue=queue, max_attempts=max_attempts)[0]

    def enqueue_many(
        self,
        kind: str,
        args: Json | None = None,
        *,
        queue: str,
        count: int = 1,
        max_attempts: int = 0,
    ) -> list[int]:
        """Inserts `count` identical jobs with one `insert`; their ids."""
        argv = [
            str(self.worker),
            "insert",
            "--kind",
            kind,
            "--args",
            json.dumps(args or {}),
            "--queue",
            queue,
            "--count",
            str(count),
        ]
        if max_attempts:
            argv += ["--max-attempts", str(max_attempts)]
        env = {"DATABASE_URL": self.dsn, "PATH": "/usr/bin:/bin"}
        if self.schema:
            env["RIVER_SCHEMA"] = self.schema
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"worker insert: {done.stdout}{done.stderr}"
        ids: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
        return ids

    def job(self, job_id: int) -> Json:
        table = f'"{self.schema}".river_job' if self.schema else "river_job"
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(
                f"SELECT id, state::text AS state, attempt, max_attempts, attempted_at,"
                f" attempted_by, errors, metadata, scheduled_at, finalized_at FROM {table}"
                " WHERE id = %s",
                (job_id,),
            ).fetchone()
            assert row is not None, f"job {job_id} is missing"
            names = [
                "id",
                "state",
                "attempt",
                "max_attempts",
                "attempted_at",
                "attempted_by",
                "errors",
                "metadata",
                "scheduled_at",
                "finalized_at",
            ]
            return dict(zip(names, row, strict=True))

    def wait_job(self, job_id: int, states: str | tuple[str, ...], timeout: float = 60) -> Json:
        wanted = (states,) if isinstance(states, str) else states
        last: list[Json] = []

        def reached() -> Json | None:
            row = self.job(job_id)
            last[:] = [row]
            return row if row["state"] in wanted else None

        try:
            return wait_for(reached, timeout, f"job {job_id} to be {'/'.join(wanted)}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {last[0] if last else None}") from None

    def wait_running_on(self, job_id: int, pod: str, timeout: float = 60) -> Json:
        def on_pod() -> Json | None:
            row = self.job(job_id)
            by = row["attempted_by"] or []
            return (
                row
                if row["state"] == "running"
                and by
                and by[-1].startswith(pod.replace(".", "_")[:60])
                else None
            )

        return wait_for(on_pod, timeout, f"job {job_id} to run on {pod}")

    # -- reports -------------------------------------------------------------------------
    def events(self, reason: str | None = None, kind: str = "JobPolicy") -> list[Json]:
        items = self.kube.get(f"/api/v1/namespaces/{self.namespace}/events").get("items") or []
        return [
            e
            for e in items
            if e["involvedObject"].get("kind") == kind and (reason is None or e["reason"] == reason)
        ]

    def wait_event(
        self, reason: str, timeout: float = 30, kind: str = "JobPolicy", containing: str = ""
    ) -> Json:
        return wait_for(
            lambda: next(
                (e for e in self.events(reason, kind) if containing in e["message"]), None
            ),
            timeout,
            f"an Event {reason} on a {kind}"
            + (f" mentioning {containing!r}" if containing else ""),
        )

    def cleanup(self) -> None:
        self.plane.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)


def _exists(kube: KubeClient, path: str) -> bool:
    try:
        kube.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def policy_body(namespace: str, name: str, spec: Json) -> Json:
    """A JobPolicy as a user writes it."""
    return {
        "apiVersion": "lifeguard.dev/v1alpha1",
        "kind": "JobPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def migrate_heartbeats(dsn: str, schema: str | None = None) -> None:
    argv = [sys.executable, "-m", "lifeguard.cli", "db", "migrate", "--database-url", dsn]
    if schema:
        argv += ["--schema", schema]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def lifeguard_errors(row: Json) -> list[str]:
    return [e["error"] for e in row["errors"] or [] if e["error"].startswith("lifeguard:")]


def untouched(row: Json) -> bool:
    """No Lifeguard trace at all on a job row."""
    metadata = row["metadata"] or {}
    return not lifeguard_errors(row) and not any(k.startswith("lifeguard:") for k in metadata)


def new_world(
    plane: ControlPlane, kube: KubeClient, namespace: str, dsn: str, worker: Path
) -> Scenario:
    world = Scenario(plane=plane, kube=kube, namespace=namespace, dsn=dsn, worker=worker)
    world.create_namespace()
    world.create_secret("river-db", dsn)
    return world
