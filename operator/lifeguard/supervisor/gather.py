"""Joins one scan's jobs with what the cluster knows of their pods and nodes.

No I/O here: the scan was read from PostgreSQL and the inventory is the operator's cache (or, in
`lifeguard explain`, one listing), so the operator and the CLI build identical observations.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from lifeguard.cluster.inventory import Inventory
from lifeguard.model.client_id import client_id_pod_and_start
from lifeguard.model.enums import HeartbeatStore
from lifeguard.model.observation import JobFacts, Observation, PodFacts
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.thresholds import resolve_thresholds
from lifeguard.river.scan import ScanQuery


def scan_query(spec: JobPolicySpec) -> ScanQuery:
    """What the policy asks the database for."""
    selector = spec.selector
    heartbeat = spec.heartbeat

    return ScanQuery(
        schema=spec.database.schema_,
        store=heartbeat.store,
        metadata_key=heartbeat.metadata_key if heartbeat.store is HeartbeatStore.METADATA else None,
        queues=tuple(selector.queues) if selector.queues else None,
        kinds=tuple(selector.kinds) if selector.kinds else None,
        priorities=tuple(selector.priorities) if selector.priorities else None,
        tags=tuple(selector.tags) if selector.tags else None,
    )


@dataclass
class Gatherer:
    """Turns jobs into observations for one policy (namespace, selector, pattern, limits)."""

    namespace: str
    spec: JobPolicySpec
    inventory: Inventory
    # Learned per-kind limits (adaptive); absent kinds have none.
    adaptive_limits: Mapping[str, float] = field(default_factory=dict)
    _pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.spec.workers.client_id_pattern)

    def observe(self, jobs: Sequence[JobFacts], now: datetime) -> list[Observation]:
        return [self.observation(job, now) for job in jobs]

    def observation(self, job: JobFacts, now: datetime) -> Observation:
        thresholds = resolve_thresholds(self.spec, job.queue, job.kind, job.priority)
        limit = self.adaptive_limits.get(job.kind)
        if limit is not None:
            thresholds = replace(thresholds, adaptive_limit=limit)
        mapped = client_id_pod_and_start(self._pattern, job.client_id) if job.client_id else None
        if mapped is None:
            return Observation(
                job=job,
                thresholds=thresholds,
                now=now,
                nodes_observed=self.inventory.nodes_observed,
            )
        prefix, started = mapped
        pod = self._pod_for(prefix, started)
        return Observation(
            job=job,
            thresholds=thresholds,
            now=now,
            pod_name=pod.name if pod else prefix,
            pod=pod,
            node=self.inventory.node(pod.node_name) if pod else None,
            client_started_at=started,
            nodes_observed=self.inventory.nodes_observed,
        )

    def _pod_for(self, prefix: str, started: datetime | None) -> PodFacts | None:
        selector = self.spec.workers.pod_selector
        candidates = [
            pod
            for pod in self.inventory.pods_with_prefix(self.namespace, prefix)
            if selector.matches(dict(pod.labels))
        ]
        if len(candidates) <= 1:
            return candidates[0] if candidates else None

        # Names longer than River keeps share a prefix: prefer a live pod whose containers
        # were running before the client started (a client cannot start before its pod).
        def plausible(pod: PodFacts) -> bool:
            starts = [c.running_since for c in pod.containers if c.running_since]
            return started is None or any(s <= started for s in starts)

        live = [pod for pod in candidates if not pod.gone and plausible(pod)]
        return live[0] if len(live) == 1 else None
