"""The Snapshot: everything one reconcile cycle may know, frozen at the start of the cycle.

Owns the shape of the cycle's input: the scan (jobs, the database's `now`, whether it was
truncated), a view of the inventory for the policy's namespace taken at one instant (pods and
tombstones by River client prefix, nodes with their Lease ages), the adaptive limits and
per-kind statistics, the database outcome of this cycle, and the clock readings. Nothing in
`reconcile` reads a clock or a cache: what is not in the Snapshot is not known.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from lifeguard.model.observation import JobFacts, NodeFacts, OwnerJobFacts, PodFacts
from lifeguard.model.ownership import FleetView, PolicyFacts
from lifeguard.model.status import KindStat
from lifeguard.plan.types import BeatingJob, PodRef


@dataclass(frozen=True, slots=True)
class InventoryView:
    """Pods (live and recently deleted) of one namespace and their nodes, at one instant."""

    # Pods by River client prefix, live first, then tombstones (the inventory's order).
    pods_by_prefix: Mapping[str, tuple[PodFacts, ...]] = field(default_factory=dict)
    # Nodes by name, their Lease age measured at the freeze.
    nodes: Mapping[str, NodeFacts] = field(default_factory=dict)
    # False when the operator may not read nodes: node loss is then judged by beats alone.
    nodes_observed: bool = True
    # Pods of the same client prefixes in other watched namespaces (only prefixes that have
    # some): which namespace a job's pod lives in, for the ownership rule.
    elsewhere: Mapping[str, tuple[PodFacts, ...]] = field(default_factory=dict)
    # The batch/v1 Jobs that control those pods, by name (deleted ones as their last facts).
    jobs: Mapping[str, OwnerJobFacts] = field(default_factory=dict)
    # The node Leases could be listed before but not lately (the apiserver is unreachable): no
    # Lease age is evidence meanwhile (`nodes` then carries none).
    leases_blind: bool = False

    def pods_with_prefix(self, prefix: str) -> tuple[PodFacts, ...]:
        return self.pods_by_prefix.get(prefix, ())

    def pods_anywhere(self, prefix: str) -> tuple[PodFacts, ...]:
        """Pods with the prefix in this namespace and every other watched one."""
        here = self.pods_by_prefix.get(prefix, ())
        there = self.elsewhere.get(prefix)
        return here + there if there else here

    def node(self, name: str | None) -> NodeFacts | None:
        return self.nodes.get(name) if name else None

    def job(self, name: str | None) -> OwnerJobFacts | None:
        return self.jobs.get(name) if name else None


@dataclass(frozen=True, slots=True)
class Scanned:
    """One scan of the policy's running jobs; `now` is the database's clock."""

    jobs: tuple[JobFacts, ...]
    now: datetime
    # The scan read only its first rows: the policy covers more running jobs.
    truncated: bool = False
    # Every running job the policy's selector matches, read or not (None: not counted).
    running: int | None = None
    # Of the jobs a truncated scan did not read, those whose beats are stale by the policy-wide
    # threshold (or who never beat past the startup grace), by kind: the circuit breaker counts
    # them as stale without a pod-level explanation, but for kinds known never to beat.
    unread_stale_by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Connected:
    """The database answered the scan."""

    target: str
    scan: Scanned


@dataclass(frozen=True, slots=True)
class NoDatabase:
    """No URL to connect to (Secret missing, unreadable, not a URL): a reason and a message."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class DatabaseFailed:
    """The database did not answer the scan: the condition's reason (Unreachable,
    AuthenticationFailed, Timeout, ...) and the Warning Event's (DatabaseUnreachable, ...)."""

    reason: str
    message: str
    event_reason: str = "DatabaseUnreachable"


@dataclass(frozen=True, slots=True)
class ApiserverOutage:
    """The last apiserver outage the operator saw end: when it began (monotonic), how long it
    lasted, and the first error."""

    started: float
    seconds: float
    error: str


DatabaseOutcome = Connected | NoDatabase | DatabaseFailed


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One cycle's frozen input."""

    # The JobPolicy's name, for messages.
    policy: str
    # The host's wall clock, for conditions set when the database gave no `now`.
    wall: datetime
    # The host's monotonic clock, for throttles (status refresh).
    monotonic: float
    inventory: InventoryView = field(default_factory=InventoryView)
    # None when the cycle did not get as far as the database (an invalid spec).
    database: DatabaseOutcome | None = None
    # Learned per-kind limits (adaptive); absent kinds have none.
    adaptive_limits: Mapping[str, float] = field(default_factory=dict)
    # The busiest kinds' run times for the status; None: not read yet (keep what the status has).
    kind_stats: tuple[KindStat, ...] | None = None
    # The operator's policies and this one among them (ownership: which jobs this policy
    # judges). None: the policy judges every job it scans (no fleet to share them with).
    fleet: FleetView | None = None
    me: PolicyFacts | None = None
    # The last apiserver outage that ended, reported once per policy.
    apiserver_outage: ApiserverOutage | None = None
    # Jobs other policies last saw beating, by pod: a pod that runs them is not restarted.
    beating_elsewhere: Mapping[PodRef, tuple[BeatingJob, ...]] = field(default_factory=dict)

    @property
    def scan(self) -> Scanned | None:
        return self.database.scan if isinstance(self.database, Connected) else None
