"""The demo's story: workers, a mix of jobs, four failures injected one after another.

`Demo.set_up()` installs the operator with `helm install` from its own image onto the real
node (kubelet, containerd, runc), applies a policy with second-scale timings and starts the
worker pods: the importer on the real node from the worker image, the others on node agents
(one of which will die). `Demo.play()` enqueues the jobs, injects an OOM kill (reported by the
real kubelet), a node failure, a frozen process and a stuck job, waits for Lifeguard to handle
each, lets a standby worker finish what was retried, and returns the `Outcome`. `make demo`
and tests/e2e/test_demo.py run this same code.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from demo.output import Narrator
from demo.timeline import Decision, Timeline
from devenv import helm
from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.kube import KubeClient
from devenv.realnode import NODE_NAME
from devenv.realnode_relay import Relay, start_relay_daemon
from devenv.realnode_world import RealScenario, RealSite, install_operator
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    lifeguard_errors,
    migrate_heartbeats,
    wait_for,
)

Json = dict[str, Any]
POLICY = "workers"
SECRET = "river-db"
HEALTHY_SECONDS = 80.0
BILLING_SECONDS = 20.0


def demo_policy_spec() -> Json:
    """Beats every second, stale after 3 missed; progress judged on two queues after 5 s.

    An unresponsive worker's pod is restarted; if it is still not gone 45 s later (its node is
    dead, nobody carries out the restart) the job is retried. The node turns NotReady sooner
    (the control plane's node-monitor grace period is 15 s), so the demo shows NodeLost.
    """
    return fast_policy_spec(
        secret=SECRET,
        tiers=[{"match": {"queues": ["reports", "index"]}, "progressTimeout": "5s"}],
        actions={
            "stuck": {"action": "Cancel", "then": "RestartPod", "after": "6s"},
            "unresponsive": {"action": "RestartPod", "then": "Retry", "after": "45s"},
        },
    )


def policy_yaml(namespace: str, spec: Json) -> str:
    """The policy as a person would write it: keys in the spec's own order."""
    manifest = {
        "apiVersion": "lifeguard.dev/v1alpha1",
        "kind": "JobPolicy",
        "metadata": {"name": POLICY, "namespace": namespace},
        "spec": spec,
    }
    return yaml.safe_dump(manifest, sort_keys=False)


@dataclass(frozen=True)
class Stage:
    """Where the demo plays: a cluster with the real node, a steady node agent and a node
    agent that will die; `database_url` is on the PostgreSQL cluster whose socket folder the
    real node's pods mount (`real.socket_dir`)."""

    plane: ControlPlane
    database_url: str
    state_dir: Path
    worker: Path
    steady_node: str
    doomed_node: NodeAgentHandle
    real: RealSite
    namespace: str = "demo"
    release: str = "river-lifeguard"
    release_namespace: str = "lifeguard-system"


@dataclass
class Injection:
    """One injected failure and what came of it."""

    title: str
    job_id: int
    kind: str
    pod: str
    failed_at: datetime  # when the failure happened (the kill, the freeze, the last progress)
    attempted_at: datetime  # of the attempt that failed: River's rescuer counts from it
    actions: list[Decision] = field(default_factory=list)  # Lifeguard's, applied, in order

    @property
    def first(self) -> Decision | None:
        return self.actions[0] if self.actions else None

    @property
    def release(self) -> Decision | None:
        """The action that took the job out of `running`: a retry, cancel or discard."""
        return next((d for d in self.actions if d.action in RELEASING), None)

    def seconds_after_failure(self, decision: Decision | None) -> float | None:
        if decision is None:
            return None
        return max(0.0, (decision.time - self.failed_at).total_seconds())

    def story(self) -> str:
        """Lifeguard's actions, e.g. "RestartPod (Unresponsive/BeatStale), Retry (...)"."""
        return ", ".join(f"{d.action} ({d.verdict})" for d in self.actions) or "nothing seen"


RELEASING = ("Retry", "Cancel", "Discard")


@dataclass
class Outcome:
    injections: list[Injection]
    healthy: list[int]
    short: list[int]
    rows: dict[int, Json]
    decisions: list[Decision]
    healthy_seconds: float = HEALTHY_SECONDS
    kinds: dict[int, str] = field(default_factory=dict)

    def injection(self, title: str) -> Injection:
        return next(i for i in self.injections if i.title == title)


class Demo:
    def __init__(self, stage: Stage, out: Narrator) -> None:
        self.stage = stage
        self.out = out
        self.world = Scenario(
            plane=stage.plane,
            kube=KubeClient(stage.plane.kubeconfig),
            namespace=stage.namespace,
            dsn=stage.database_url,
            worker=stage.worker,
        )
        # Worker pods on the real node, in the same namespace and database.
        self.real_world = RealScenario.on(
            stage.real, stage.plane, stage.namespace, stage.database_url, stage.worker
        )
        # The operator pods' way to the apiserver and PostgreSQL on the host's loopback.
        self.relays: list[Relay] = []
        self.timeline = Timeline(self.world, POLICY, out)
        self.kinds: dict[int, str] = {}

    # -- set-up --------------------------------------------------------------------------
    def set_up(self) -> None:
        stage, out, world = self.stage, self.out, self.world
        out.step(f"namespace {stage.namespace}: the River database's Secret, the heartbeat table")
        world.create_namespace()
        world.create_secret(SECRET, stage.database_url)
        migrate_heartbeats(stage.database_url)

        image = stage.real.node.images["operator"].reference
        out.step(
            f"helm install {stage.release} charts/river-lifeguard: CRD, ServiceAccount, RBAC and"
            f" the operator's Deployment, image {image}, on node {NODE_NAME} (kubelet,"
            f" containerd, runc); namespace {stage.release_namespace} enforces the restricted"
            " Pod Security Standard"
        )
        self.relays = install_operator(
            stage.plane,
            stage.real.node,
            stage.release,
            stage.release_namespace,
            [stage.namespace],
            [stage.real.database_port],
            open_relay=self._relay,
        )

        out.step(f"kubectl apply: JobPolicy {POLICY}, with second-scale timings for the demo")
        spec = demo_policy_spec()
        out.block(policy_yaml(stage.namespace, spec))
        world.apply_policy(POLICY, spec)
        # Ready once the operator's pod runs and has checked the policy (its first start on
        # a loaded machine takes a while).
        world.wait_condition(POLICY, "Ready", "True", timeout=180)

        steady, doomed = stage.steady_node, stage.doomed_node.node_name
        worker_image = stage.real.node.images["worker"].reference
        out.step(
            f"worker pod importer on {NODE_NAME}: queue imports, memory limit 96Mi, image"
            f" {worker_image}"
        )
        self.real_world.worker_pod("importer", "imports", memory="96Mi")
        for name, queue, node, grace in (
            ("reports", "reports", steady, 5),
            ("billing", "billing", doomed, 5),
            ("mailer", "mail", steady, 2),
            ("indexer", "index", steady, 5),
        ):
            out.step(f"worker pod {name} on {node} (node agent): queue {queue}")
            world.worker_pod(name, queue, node=node, grace_seconds=grace)

    def _relay(self, uid: str, _pid: int, ports: list[int]) -> Relay:
        """A relay daemon: it outlives this process when the demo keeps running (--keep)."""
        return start_relay_daemon(self.stage.state_dir, f"operator-{uid[:8]}", uid, ports)

    # -- the story -----------------------------------------------------------------------
    def enqueue(self, kind: str, args: Json, queue: str) -> int:
        job_id = self.world.enqueue(kind, args, queue=queue)
        self.kinds[job_id] = kind
        self.timeline.track(job_id, kind)
        return job_id

    def play(self) -> Outcome:
        out, world = self.out, self.world
        out.heading("Timeline")
        out.say(
            f"2 long healthy jobs ({HEALTHY_SECONDS:.0f}s each, progress every 2s) and 3 short"
            " ones on queue reports; Lifeguard must leave them alone"
        )
        self.timeline.start()
        healthy = [
            self.enqueue(
                "sleep", {"seconds": HEALTHY_SECONDS, "progress_every_seconds": 2}, "reports"
            )
            for _ in range(2)
        ]
        short = [self.enqueue("sleep", {"seconds": s}, "reports") for s in (1, 2, 3)]
        for job_id in short:
            world.wait_job(job_id, "completed", timeout=30)

        injections = [self._oom(), self._node_failure(), self._frozen(), self._stuck()]

        self.timeline.catch_up()
        out.note(
            "Standby worker",
            "a healthy pod takes the imports, billing and mail queues; the retried jobs run"
            " again there, the cancelled one stays cancelled",
        )
        world.worker_pod(
            "standby",
            "imports,billing,mail",
            node=self.stage.steady_node,
            env={"WORKER_TAME": "true"},
        )
        for injection in injections:
            if injection.title != "Stuck job":
                world.wait_job(injection.job_id, "completed", timeout=90)
        for job_id in healthy:
            world.wait_job(job_id, "completed", timeout=HEALTHY_SECONDS + 60)
        self.timeline.catch_up()
        self.timeline.stop()

        rows = {job_id: world.job(job_id) for job_id in [*self.kinds]}
        for injection in injections:
            self._settle(injection)
        return Outcome(
            injections=injections,
            healthy=healthy,
            short=short,
            rows=rows,
            decisions=list(self.timeline.decisions),
            kinds=dict(self.kinds),
        )

    def _start(self, title: str, explanation: str, kind: str, args: Json, queue: str) -> int:
        self.timeline.catch_up()
        self.out.inject(title, explanation)
        job_id = self.enqueue(kind, args, queue)
        return job_id

    def _started(self, job_id: int, pod: str) -> datetime:
        """When `pod` began the job's current attempt (it may have ended already)."""

        def on_pod() -> Json | None:
            row = self.world.job(job_id)
            by = row["attempted_by"] or []
            return row if by and by[-1].startswith(pod + "_") else None

        attempted_at: datetime = wait_for(on_pod, 30, f"job {job_id} to start on {pod}")[
            "attempted_at"
        ]
        return attempted_at

    def _container_end(self, pod: str) -> datetime:
        def ended() -> str | None:
            found = self.world.pod(pod) or {}
            for status in (found.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated")
                if terminated and terminated.get("finishedAt"):
                    return str(terminated["finishedAt"])
            return None

        finished = wait_for(ended, 60, f"pod {pod}'s container to end")
        return datetime.fromisoformat(finished.replace("Z", "+00:00"))

    def _oom(self) -> Injection:
        job_id = self._start(
            "OOM kill",
            f"an import job on {NODE_NAME} allocates memory until its pod's 96Mi limit; the"
            " kernel kills it, the real kubelet reports OOMKilled",
            "eat",
            {"mb_per_step": 16, "step_ms": 300},
            "imports",
        )
        attempted_at = self._started(job_id, "importer")
        killed_at = self._container_end("importer")
        injection = Injection("OOM kill", job_id, "eat", "importer", killed_at, attempted_at)
        self._await_retry(injection)
        return injection

    def _node_failure(self) -> Injection:
        doomed = self.stage.doomed_node
        job_id = self._start(
            "Node failure",
            f"a {BILLING_SECONDS:.0f}s billing job starts on {doomed.node_name}; then the node"
            " dies (kubelet silent, processes killed)",
            "sleep",
            {"seconds": BILLING_SECONDS, "progress_every_seconds": 1},
            "billing",
        )
        attempted_at = self._started(job_id, "billing")
        time.sleep(3)
        doomed.fail_node("kill")
        injection = Injection("Node failure", job_id, "sleep", "billing", _now(), attempted_at)
        self.out.say(
            f"{doomed.node_name} stops renewing its Lease; Kubernetes marks it NotReady after"
            " its grace period"
        )
        self._await_retry(injection, timeout=120)
        return injection

    def _frozen(self) -> Injection:
        job_id = self._start(
            "Frozen process",
            "a mail job stops its own process with SIGSTOP after 2s: the pod stays Running,"
            " the beats stop",
            "freeze",
            {"after_seconds": 2},
            "mail",
        )
        attempted_at = self._started(job_id, "mailer")
        frozen_at = attempted_at + timedelta(seconds=2)
        injection = Injection("Frozen process", job_id, "freeze", "mailer", frozen_at, attempted_at)
        self._await_retry(injection, timeout=90)
        return injection

    def _stuck(self) -> Injection:
        job_id = self._start(
            "Stuck job",
            "an index job reports progress for 3s, then its logic stops advancing while its"
            " process keeps beating",
            "stall",
            {"progress_for_seconds": 3},
            "index",
        )
        attempted_at = self._started(job_id, "indexer")
        stalled_at = attempted_at + timedelta(seconds=3)
        injection = Injection("Stuck job", job_id, "stall", "indexer", stalled_at, attempted_at)
        self.world.wait_job(job_id, "cancelled", timeout=60)
        self._settle(injection)
        return injection

    def _await_retry(self, injection: Injection, timeout: float = 60) -> None:
        """Until Lifeguard's retry is on the row (its reason in River's errors)."""

        def retried() -> Json | None:
            row = self.world.job(injection.job_id)
            return row if lifeguard_errors(row) and row["state"] != "running" else None

        wait_for(retried, timeout, f"Lifeguard to retry job {injection.job_id}")
        self._settle(injection)

    def _settle(self, injection: Injection) -> None:
        """Fills in Lifeguard's applied actions on the injected job, as the timeline saw them."""
        decisions = self.timeline.decisions_for(injection.job_id)
        applied = [d for d in decisions if d.applied and d.time >= injection.attempted_at]
        injection.actions = sorted(applied, key=lambda d: d.time)

    # -- after ---------------------------------------------------------------------------
    def kubectl_get_jp(self) -> str:
        done = self.stage.plane.kubectl("get", "jp", "-n", self.stage.namespace)
        return done.stdout

    def explain(self) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lifeguard.cli", "explain", POLICY, "-n", self.stage.namespace],
            env={"KUBECONFIG": str(self.stage.plane.kubeconfig), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout if done.returncode == 0 else done.stderr

    def close(self, remove: Callable[[], None] | None = None) -> None:
        """Stops the timeline and the relays; `remove` also deletes what set_up made."""
        self.timeline.stop()
        for relay in self.relays:
            relay.close()
        self.relays = []
        if remove is not None:
            remove()

    def remove(self) -> None:
        """Deletes the namespace and uninstalls the chart (for a shared cluster, as in tests)."""
        for pod in [*self.world.pods, *self.real_world.pods]:
            self.world.plane.kubectl(
                "delete", "pod", pod, "-n", self.stage.namespace, "--wait=false",
                "--grace-period=0", "--force", check=False,
            )  # fmt: skip
        self.world.cleanup()
        helm.uninstall(
            self.stage.release, self.stage.release_namespace, self.stage.plane.kubeconfig
        )
        self.stage.plane.kubectl(
            "delete", "namespace", self.stage.release_namespace, "--wait=false", check=False
        )


def _now() -> datetime:
    return datetime.now(UTC)
