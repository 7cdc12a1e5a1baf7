"""Joins a snapshot's jobs with the pods and nodes of its inventory view: one Observation a job.

Owns the mapping from a job's River client ID to its pod (and the pod's node), and the
thresholds each job is judged by (tiers, adaptive limits). Pure: the view was frozen by the
shell, so the operator and `lifeguard explain` build identical observations from one snapshot.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from lifeguard.model.client_id import client_id_pod, client_id_pod_and_start
from lifeguard.model.observation import JobFacts, Observation, PodFacts, Thresholds
from lifeguard.model.ownership import could_run_client
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.thresholds import resolve_thresholds
from lifeguard.reconcile.snapshot import InventoryView
from lifeguard.verdict.nodes import with_node_beats

Mapped = tuple[str, datetime | None]


@dataclass
class ClientIds:
    """A policy's client-ID pattern, with each ID parsed once (one pod runs many jobs)."""

    pattern: re.Pattern[str]
    _parsed: dict[str, Mapped | None] = field(default_factory=dict)
    _prefixes: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: JobPolicySpec) -> "ClientIds":
        return cls(re.compile(spec.workers.client_id_pattern))

    def map(self, client_id: str | None) -> Mapped | None:
        """(pod prefix, client start) of a client ID, None when it names no pod."""
        if not client_id:
            return None
        if client_id not in self._parsed:
            self._parsed[client_id] = client_id_pod_and_start(self.pattern, client_id)
        return self._parsed[client_id]

    def prefix(self, client_id: str | None) -> str | None:
        """The pod prefix of a client ID without its start (cheaper than `map`)."""
        if not client_id:
            return None
        if client_id in self._parsed:
            mapped = self._parsed[client_id]
            return mapped[0] if mapped is not None else None
        if client_id not in self._prefixes:
            self._prefixes[client_id] = client_id_pod(self.pattern, client_id)
        return self._prefixes[client_id]

    def prefixes(self, jobs: Iterable[JobFacts]) -> set[str]:
        """The pod prefixes the jobs' client IDs map to: what the inventory view must hold."""
        return {prefix for job in jobs if (prefix := self.prefix(job.client_id)) is not None}


def observe(
    jobs: Sequence[JobFacts],
    now: datetime,
    spec: JobPolicySpec,
    view: InventoryView,
    *,
    adaptive_limits: Mapping[str, float] | None = None,
    client_ids: ClientIds | None = None,
    node_beats: bool = True,
) -> list[Observation]:
    """One observation a job, each with what the beats of the others on its node say (node
    loss compares them, verdict.nodes); `node_beats` False leaves that to the caller."""
    observer = _Observer(spec, view, adaptive_limits or {}, client_ids or ClientIds.of(spec))
    observations = [observer.observation(job, now) for job in jobs]
    return with_node_beats(observations) if node_beats else observations


@dataclass
class _Observer:
    """One cycle's joining; thresholds and pods are looked up once per distinct key, since
    thousands of jobs share a few queues and kinds, and each pod runs many jobs."""

    spec: JobPolicySpec
    view: InventoryView
    adaptive_limits: Mapping[str, float]
    client_ids: ClientIds
    _thresholds: dict[tuple[str, str, int], Thresholds] = field(default_factory=dict)
    _pods: dict[Mapped, PodFacts | None] = field(default_factory=dict)

    def observation(self, job: JobFacts, now: datetime) -> Observation:
        thresholds = self.thresholds(job.queue, job.kind, job.priority)
        mapped = self.client_ids.map(job.client_id)
        nodes_observed = self.view.nodes_observed
        if mapped is None:
            return Observation(
                job=job,
                thresholds=thresholds,
                now=now,
                nodes_observed=nodes_observed,
                beats_expected=self.spec.heartbeat.beats,
                worker_container=self.spec.workers.container,
            )
        if mapped not in self._pods:
            self._pods[mapped] = _pod_for(self.spec, self.view, *mapped)
        pod = self._pods[mapped]
        return Observation(
            job=job,
            thresholds=thresholds,
            now=now,
            pod_name=pod.name if pod else mapped[0],
            pod_unselected=pod is None and self.unselected(mapped[0]),
            pod=pod,
            node=self.view.node(pod.node_name) if pod else None,
            client_started_at=mapped[1],
            nodes_observed=nodes_observed,
            beats_expected=self.spec.heartbeat.beats,
            worker_container=self.spec.workers.container,
            owner_job=self.view.job(pod.owner_job) if pod else None,
        )

    def unselected(self, prefix: str) -> bool:
        """Pods with the prefix exist, and workers.podSelector selects none of them."""
        pods = self.view.pods_with_prefix(prefix)
        selector = self.spec.workers.pod_selector
        return bool(pods) and not any(selector.matches(dict(pod.labels)) for pod in pods)

    def thresholds(self, queue: str, kind: str, priority: int) -> Thresholds:
        key = (queue, kind, priority)
        found = self._thresholds.get(key)
        if found is None:
            found = resolve_thresholds(self.spec, queue, kind, priority)
            limit = self.adaptive_limits.get(kind)
            if limit is not None:
                found = replace(found, adaptive_limit=limit)
            self._thresholds[key] = found
        return found


def _pod_for(
    spec: JobPolicySpec, view: InventoryView, prefix: str, started: datetime | None
) -> PodFacts | None:
    selector = spec.workers.pod_selector
    candidates = [
        pod for pod in view.pods_with_prefix(prefix) if selector.matches(dict(pod.labels))
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None

    # Names longer than River keeps share a prefix (a Job's pods, a long Deployment name):
    # the pod is the one a container of which ran when the client started. A Job's failed pod
    # and the pod that replaced it are told apart this way: each keeps its own jobs.
    hosts = [pod for pod in candidates if could_run_client(pod, started)]
    if len(hosts) == 1:
        return hosts[0]
    live = [pod for pod in hosts if not pod.gone]
    return live[0] if len(live) == 1 else None
