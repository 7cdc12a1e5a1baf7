"""Prometheus metrics, all prefixed `lifeguard_`, in base units.

No job ids or pod names as labels: a label value per job would grow without bound. Kinds are
bounded too (the first MAX_KINDS seen; the rest count as "other").
"""

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

MAX_KINDS = 50
OTHER_KIND = "other"

# Seconds, from sub-second fast-path rescues to hour-long jobs.
_AGE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
_RESCUE_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 120, 300, 900, 3600)
_SCAN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The operator's metrics, in their own registry so tests can make a fresh set."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.verdicts = Counter(
            "lifeguard_verdicts",
            "Verdicts reached, counted once per job attempt and cause.",
            ["policy", "cause", "reason"],
            registry=r,
        )
        self.actions = Counter(
            "lifeguard_actions",
            "Actions decided, by result: applied, fenced (the job had moved on), blocked (a"
            " PodDisruptionBudget), dry_run, deferred (beyond maxActionsPerMinute, counted at"
            " each scan that defers it), failed.",
            ["policy", "action", "cause", "result"],
            registry=r,
        )
        self.rescue_seconds = Histogram(
            "lifeguard_rescue_seconds",
            "From the evidence of a job's death (container termination, pod deletion, beat"
            " going stale) to the applied action.",
            ["cause"],
            buckets=_RESCUE_BUCKETS,
            registry=r,
        )
        self.heartbeat_age = Histogram(
            "lifeguard_heartbeat_age_seconds",
            "Beat age of running jobs, observed at every scan.",
            ["policy"],
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.scan_duration = Histogram(
            "lifeguard_scan_duration_seconds",
            "Wall time of one gather, decide, act and report cycle.",
            ["policy"],
            buckets=_SCAN_BUCKETS,
            registry=r,
        )
        self.running_jobs = Gauge(
            "lifeguard_running_jobs",
            "Running jobs covered by a policy, by the cause of their verdict.",
            ["policy", "cause"],
            registry=r,
        )
        self.circuit_open = Gauge(
            "lifeguard_circuit_open",
            "1 while a policy's circuit breaker pauses heartbeat-based actions.",
            ["policy"],
            registry=r,
        )
        self.database_errors = Counter(
            "lifeguard_database_errors",
            "Failed database round trips.",
            ["policy"],
            registry=r,
        )
        self.heartbeat_rows_pruned = Counter(
            "lifeguard_heartbeat_rows_pruned",
            "Heartbeat rows deleted because their job no longer runs that attempt (rows of"
            " workers that died before removing their own).",
            ["policy"],
            registry=r,
        )
        self.apiserver_reachable = Gauge(
            "lifeguard_apiserver_reachable",
            "0 while the operator's own Kubernetes calls fail for want of an apiserver (no"
            " answer, timeout, or 5xx); database scans go on meanwhile.",
            registry=r,
        )
        self.apiserver_outages = Counter(
            "lifeguard_apiserver_outages",
            "Apiserver outages the operator saw (counted when each began).",
            registry=r,
        )
        self.apiserver_reachable.set(1)
        self.job_duration = Histogram(
            "lifeguard_job_duration_seconds",
            "Run time of jobs when they stopped running, by kind (bounded).",
            ["kind"],
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.database_connections = Gauge(
            "lifeguard_database_connections",
            "Connections the operator holds to a database (host:port/dbname), shared by every"
            " policy naming it.",
            ["target"],
            registry=r,
        )
        self.leader = Gauge(
            "lifeguard_leader",
            "1 while this replica holds the leader Lease and acts; 0 on a standby.",
            registry=r,
        )
        self._kinds: set[str] = set()

    def kind_label(self, kind: str) -> str:
        if kind in self._kinds:
            return kind
        if len(self._kinds) < MAX_KINDS:
            self._kinds.add(kind)
            return kind
        return OTHER_KIND

    def forget_policy(self, policy: str, causes: list[str]) -> None:
        """Drops a deleted policy's gauges so dashboards do not show it forever."""
        for cause in causes:
            with contextlib.suppress(KeyError):
                self.running_jobs.remove(policy, cause)
        with contextlib.suppress(KeyError):
            self.circuit_open.remove(policy)

    def apiserver_changed(self, reachable: bool) -> None:
        self.apiserver_reachable.set(1 if reachable else 0)
        if not reachable:
            self.apiserver_outages.inc()

    def forget_database(self, target: str) -> None:
        with contextlib.suppress(KeyError):
            self.database_connections.remove(target)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
