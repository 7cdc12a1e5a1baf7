"""What the operator currently knows of pods and nodes, kept small and queried by supervisors.

Fed by the informers (pods, batch/v1 Jobs) and kopf's node watch in the operator, or by one
listing in `lifeguard explain`. Deleted pods are remembered for a while (tombstones) so a job
whose pod vanished can still be told apart: evicted, OOM-killed, or deleted.
"""

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace

from lifeguard.cluster.facts import Body, job_facts, node_facts, pod_facts
from lifeguard.model.client_id import client_prefix
from lifeguard.model.observation import NodeFacts, OwnerJobFacts, PodFacts

PodKey = tuple[str, str]

# The Lease follower lists every 2 s: a view older than several periods means it cannot read
# them (apiserver or etcd down, or the follower is restarting).
LEASE_VIEW_FRESH_SECONDS = 15.0


class Inventory:
    """Pods by namespace and name, pods by River client prefix, nodes by name, tombstones."""

    def __init__(
        self,
        *,
        tombstone_ttl: float = 900.0,
        tombstone_limit: int = 10_000,
        lease_view_fresh_for: float = LEASE_VIEW_FRESH_SECONDS,
    ) -> None:
        self._pods: dict[PodKey, PodFacts] = {}
        self._by_prefix: dict[tuple[str, str], set[str]] = {}
        self._tombstones: OrderedDict[PodKey, tuple[float, PodFacts]] = OrderedDict()
        self._tombs_by_prefix: dict[tuple[str, str], set[str]] = {}
        # The namespaces holding a pod (live or tombstone) of a prefix: which namespace's pod a
        # client is (ownership), without a pass over every pod.
        self._namespaces_by_prefix: dict[str, set[str]] = {}
        self._nodes: dict[str, NodeFacts] = {}
        # batch/v1 Jobs of the watched namespaces, and the last facts of deleted ones (kept
        # as long as pod tombstones, so a job whose Job was deleted is told apart).
        self._jobs: dict[PodKey, OwnerJobFacts] = {}
        self._job_tombstones: OrderedDict[PodKey, tuple[float, OwnerJobFacts]] = OrderedDict()
        # Per node: the Lease's last renewTime seen, when it was first seen (monotonic), duration.
        self._leases: dict[str, tuple[str, float, float]] = {}
        # When the Leases were last listed (monotonic), None before the first listing.
        self.leases_read_at: float | None = None
        self._lease_view_fresh_for = lease_view_fresh_for
        self._tombstone_ttl = tombstone_ttl
        self._tombstone_limit = tombstone_limit
        # False when the operator may not read nodes: node loss is then judged by beats alone.
        self.nodes_observed = True

    # -- feeding ---------------------------------------------------------------------------
    def upsert_pod(self, body: Body) -> PodFacts:
        facts = pod_facts(body)
        self.put_pod(facts)
        return facts

    def delete_pod(self, body: Body) -> PodFacts:
        facts = pod_facts(body, gone=True)
        self.drop_pod(facts)
        return facts

    def put_pod(self, facts: PodFacts) -> None:
        """A pod listed, added or modified."""
        key = (facts.namespace, facts.name)
        self._pods[key] = facts
        prefix = client_prefix(facts.name)
        self._by_prefix.setdefault((facts.namespace, prefix), set()).add(facts.name)
        self._namespaces_by_prefix.setdefault(prefix, set()).add(facts.namespace)
        self._forget_tombstone(key)

    def drop_pod(self, facts: PodFacts) -> None:
        """A pod deleted: its last facts (gone) stay as a tombstone for a while."""
        key = (facts.namespace, facts.name)
        self._pods.pop(key, None)
        prefix = client_prefix(facts.name)
        names = self._by_prefix.get((facts.namespace, prefix))
        if names is not None:
            names.discard(facts.name)
            if not names:
                del self._by_prefix[(facts.namespace, prefix)]
        self._tombstones[key] = (time.monotonic(), facts)
        self._tombstones.move_to_end(key)
        self._tombs_by_prefix.setdefault((facts.namespace, prefix), set()).add(facts.name)
        self._namespaces_by_prefix.setdefault(prefix, set()).add(facts.namespace)
        self._expire_tombstones()

    def vanished_pods(self, namespace: str | None, listed: set[PodKey]) -> list[PodFacts]:
        """The live pods of `namespace` (None: every namespace) a new listing lacks, as gone:
        deleted while their watch was down."""
        return [
            replace(facts, gone=True)
            for key, facts in self._pods.items()
            if key not in listed and (namespace is None or key[0] == namespace)
        ]

    def upsert_job(self, body: Body) -> OwnerJobFacts:
        facts = job_facts(body)
        self.put_job(facts)
        return facts

    def delete_job(self, body: Body) -> OwnerJobFacts:
        facts = job_facts(body, gone=True)
        self.drop_job(facts)
        return facts

    def put_job(self, facts: OwnerJobFacts) -> None:
        key = (facts.namespace, facts.name)
        self._jobs[key] = facts
        self._job_tombstones.pop(key, None)

    def drop_job(self, facts: OwnerJobFacts) -> None:
        key = (facts.namespace, facts.name)
        self._jobs.pop(key, None)
        self._job_tombstones[key] = (time.monotonic(), facts)
        self._job_tombstones.move_to_end(key)
        self._expire_job_tombstones()

    def vanished_jobs(self, namespace: str | None, listed: set[PodKey]) -> list[OwnerJobFacts]:
        """The live batch/v1 Jobs of `namespace` (None: all) a new listing lacks, as gone."""
        return [
            replace(facts, gone=True)
            for key, facts in self._jobs.items()
            if key not in listed and (namespace is None or key[0] == namespace)
        ]

    def upsert_node(self, body: Body) -> NodeFacts:
        facts = node_facts(body)
        self._nodes[facts.name] = facts
        return facts

    def delete_node(self, name: str) -> None:
        self._nodes.pop(name, None)
        self._leases.pop(name, None)

    def observe_leases(self, leases: Iterable[Body]) -> None:
        """Node Leases (kube-node-lease): a renewTime that stops changing is a silent kubelet.

        Ages are measured on this host's monotonic clock from when a new renewTime was first
        seen, never by comparing the kubelet's timestamps with ours. Silence is only evidence
        while the operator was looking: after a listing gap longer than a fresh view allows
        (the apiserver was down, and its kubelets could not renew either), every age starts
        again from this listing.
        """
        now = time.monotonic()
        blind = not self.leases_fresh(now)
        self.leases_read_at = now
        seen = set()
        for lease in leases:
            name = str((lease.get("metadata") or {}).get("name", ""))
            spec = lease.get("spec") or {}
            renewed = str(spec.get("renewTime") or "")
            duration = float(spec.get("leaseDurationSeconds") or 0)
            seen.add(name)
            previous = self._leases.get(name)
            if previous is None or previous[0] != renewed or blind:
                self._leases[name] = (renewed, now, duration)
            else:
                self._leases[name] = (renewed, previous[1], duration)
        for name in set(self._leases) - seen:
            del self._leases[name]

    def load(
        self, pods: Iterable[Body], nodes: Iterable[Body] | None, jobs: Iterable[Body] = ()
    ) -> None:
        for pod in pods:
            self.upsert_pod(pod)
        for job in jobs:
            self.upsert_job(job)
        if nodes is None:
            self.nodes_observed = False
        else:
            for node in nodes:
                self.upsert_node(node)

    # -- queries ---------------------------------------------------------------------------
    def pod(self, namespace: str, name: str) -> PodFacts | None:
        """The live pod, else the last facts of a recently deleted one."""
        live = self._pods.get((namespace, name))
        if live is not None:
            return live
        tomb = self._tombstones.get((namespace, name))
        return tomb[1] if tomb else None

    def pods_with_prefix(self, namespace: str, prefix: str) -> list[PodFacts]:
        """Live and recently deleted pods whose River client prefix is `prefix`."""
        self._expire_tombstones()
        names = self._by_prefix.get((namespace, prefix), set()) | self._tombs_by_prefix.get(
            (namespace, prefix), set()
        )
        found = (self.pod(namespace, name) for name in sorted(names))
        return [facts for facts in found if facts is not None]

    def pods_with_prefix_elsewhere(self, namespace: str, prefix: str) -> list[PodFacts]:
        """Live and recently deleted pods with River client prefix `prefix` in every namespace
        but `namespace`: the other homes a client of that prefix may have (ownership)."""
        self._expire_tombstones()
        others = sorted(self._namespaces_by_prefix.get(prefix, set()) - {namespace})
        return [pod for other in others for pod in self.pods_with_prefix(other, prefix)]

    def node(self, name: str | None, at: float | None = None) -> NodeFacts | None:
        """The node's facts, with its Lease's age (measured at monotonic reading `at`, default
        now) only while the Lease view is fresh."""
        facts = self._nodes.get(name) if name else None
        now = time.monotonic() if at is None else at
        if facts is None or name not in self._leases or not self.leases_fresh(now):
            return facts
        _, renewed_at, duration = self._leases[name]
        return replace(facts, lease_age=now - renewed_at, lease_duration=duration)

    def freeze(
        self, namespace: str, prefixes: Iterable[str], at: float
    ) -> tuple[dict[str, tuple[PodFacts, ...]], dict[str, NodeFacts]]:
        """The pods (live and tombstones) of `namespace` with these client prefixes, and their
        nodes with Lease ages measured at `at`: one instant's view, copied out of the cache."""
        pods = {prefix: tuple(self.pods_with_prefix(namespace, prefix)) for prefix in prefixes}
        names = {p.node_name for found in pods.values() for p in found if p.node_name}
        nodes = {name: node for name in names if (node := self.node(name, at)) is not None}
        return pods, nodes

    def owner_jobs(
        self, namespace: str, pods: dict[str, tuple[PodFacts, ...]]
    ) -> dict[str, OwnerJobFacts]:
        """The batch/v1 Jobs (live or recently deleted) that control these pods, by name."""
        names = {p.owner_job for found in pods.values() for p in found if p.owner_job}
        return {name: job for name in names if (job := self.job(namespace, name)) is not None}

    def leases_fresh(self, now: float | None = None) -> bool:
        """Whether the last Lease listing is recent enough for ages to be evidence."""
        view_age = self.lease_view_age(now)
        return view_age is not None and view_age <= self._lease_view_fresh_for

    def lease_view_age(self, now: float | None = None) -> float | None:
        """Seconds since the Leases were last listed; None if they never were."""
        if self.leases_read_at is None:
            return None
        return (time.monotonic() if now is None else now) - self.leases_read_at

    def leases_blind(self, now: float | None = None) -> bool:
        """Leases were read before and the view has gone stale: the operator cannot see
        kubelets now (NodesObserved=False)."""
        return self.leases_read_at is not None and not self.leases_fresh(now)

    def job(self, namespace: str, name: str | None) -> OwnerJobFacts | None:
        """The live batch/v1 Job, else the last facts of a recently deleted one."""
        if name is None:
            return None
        live = self._jobs.get((namespace, name))
        if live is not None:
            return live
        self._expire_job_tombstones()
        tomb = self._job_tombstones.get((namespace, name))
        return tomb[1] if tomb else None

    def freeze_elsewhere(
        self, namespace: str, prefixes: Iterable[str]
    ) -> dict[str, tuple[PodFacts, ...]]:
        """The pods of these prefixes in other namespaces, for the prefixes that have some."""
        found = {}
        for prefix in prefixes:
            namespaces = self._namespaces_by_prefix.get(prefix)
            if namespaces and (len(namespaces) > 1 or namespace not in namespaces):
                pods = self.pods_with_prefix_elsewhere(namespace, prefix)
                if pods:
                    found[prefix] = tuple(pods)
        return found

    def __len__(self) -> int:
        return len(self._pods)

    def _expire_tombstones(self) -> None:
        deadline = time.monotonic() - self._tombstone_ttl
        while self._tombstones:
            key, (seen, _) = next(iter(self._tombstones.items()))
            if seen >= deadline and len(self._tombstones) <= self._tombstone_limit:
                break
            self._forget_tombstone(key)

    def _expire_job_tombstones(self) -> None:
        deadline = time.monotonic() - self._tombstone_ttl
        while self._job_tombstones:
            key, (seen, _) = next(iter(self._job_tombstones.items()))
            if seen >= deadline and len(self._job_tombstones) <= self._tombstone_limit:
                break
            del self._job_tombstones[key]

    def _forget_tombstone(self, key: PodKey) -> None:
        if self._tombstones.pop(key, None) is None:
            return
        namespace, name = key
        prefix = client_prefix(name)
        names = self._tombs_by_prefix.get((namespace, prefix))
        if names is not None:
            names.discard(name)
            if not names:
                del self._tombs_by_prefix[(namespace, prefix)]
        self._unindex_namespace(namespace, prefix)

    def _unindex_namespace(self, namespace: str, prefix: str) -> None:
        """Drops `namespace` from the prefix's namespaces once it holds no pod of the prefix."""
        if (namespace, prefix) in self._by_prefix or (namespace, prefix) in self._tombs_by_prefix:
            return
        namespaces = self._namespaces_by_prefix.get(prefix)
        if namespaces is not None:
            namespaces.discard(namespace)
            if not namespaces:
                del self._namespaces_by_prefix[prefix]
