"""Joining scanned jobs with a frozen view of pods and nodes, and keeping the status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifeguard.cluster.inventory import Inventory
from lifeguard.model.conditions import CIRCUIT_OPEN, DATABASE_CONNECTED, READY, ConditionStatus
from lifeguard.model.enums import Action, Cause, HeartbeatStore
from lifeguard.model.limits import AdaptiveSpec
from lifeguard.model.observation import JobFacts, Observation
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.status import RecentAction
from lifeguard.reconcile import ClientIds, InventoryView, StatusBook, observe
from lifeguard.river.durations import KindDurations
from lifeguard.supervisor.gather import scan_query
from lifeguard.supervisor.stats import adaptive_limits, kind_stats, quantile_seconds

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
Json = dict[str, Any]


def spec(**overrides: Any) -> JobPolicySpec:
    raw: Json = {
        "database": {"secretRef": {"name": "db"}},
        "workers": {"podSelector": {"matchLabels": {"app": "w"}}},
        **overrides,
    }
    return JobPolicySpec.model_validate(raw)


def job(client_id: str | None, **fields: Any) -> JobFacts:
    base: Json = {
        "id": 1,
        "kind": "report",
        "queue": "default",
        "priority": 1,
        "attempt": 1,
        "max_attempts": 25,
        "attempted_at": NOW - timedelta(minutes=1),
        "client_id": client_id,
        "running_for": 60.0,
        "beat_age": 1.0,
    }
    return JobFacts(**(base | fields))


def pod(name: str, labels: Json | None = None, started: str = "2026-11-27T08:00:00Z") -> Json:
    return {
        "metadata": {"name": name, "namespace": "jobs", "labels": labels or {"app": "w"}},
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "worker", "state": {"running": {"startedAt": started}}}],
        },
    }


def inventory(*pods: Json) -> Inventory:
    found = Inventory()
    found.load(
        pods,
        [
            {
                "metadata": {"name": "n1"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
        ],
    )
    return found


def observed(
    found: Inventory,
    jobs: JobFacts,
    policy: JobPolicySpec | None = None,
    adaptive_limits: dict[str, float] | None = None,
) -> Observation:
    """The job's observation from a view frozen from `found`, as the supervisor makes it."""
    policy = policy or spec()
    pods, nodes = found.freeze("jobs", ClientIds.of(policy).prefixes([jobs]), at=0.0)
    view = InventoryView(pods, nodes, found.nodes_observed)
    (obs,) = observe([jobs], NOW, policy, view, adaptive_limits=adaptive_limits)
    return obs


def test_scan_query_carries_the_selector_and_the_store() -> None:
    query = scan_query(
        spec(
            selector={"queues": ["a", "b"], "priorities": [1]},
            heartbeat={"store": "Metadata", "metadataKey": "health_check_at"},
            database={"secretRef": {"name": "db"}, "schema": "jobs"},
        )
    )
    assert query.queues == ("a", "b") and query.kinds is None and query.priorities == (1,)
    assert query.store is HeartbeatStore.METADATA and query.metadata_key == "health_check_at"
    assert query.schema == "jobs"


def test_job_maps_to_its_pod_and_node_through_rivers_default_client_id() -> None:
    obs = observed(inventory(pod("report-w.1")), job("report-w_1_2026_11_27T08_00_05_000000"))
    assert obs.pod is not None and obs.pod.name == "report-w.1"
    assert obs.node is not None and obs.node.ready
    assert obs.client_started_at == datetime(2026, 11, 27, 8, 0, 5, tzinfo=UTC)


def test_client_id_outside_the_pattern_attributes_no_pod() -> None:
    obs = observed(inventory(), job("laptop-of-dev"))
    assert obs.pod_name is None and obs.pod is None


def test_pod_not_selected_by_the_policy_is_not_attributed() -> None:
    found = inventory(pod("other-1", labels={"app": "x"}))
    obs = observed(found, job("other-1_2026_11_27T08_00_05_000000"))
    assert obs.pod is None and obs.pod_name == "other-1"
    assert obs.pod_unselected  # known to the cluster: its verdict does not call it unknown


def test_unknown_pod_keeps_the_mapped_name_for_messages() -> None:
    obs = observed(inventory(), job("gone-1_2026_11_27T08_00_05_000000"))
    assert obs.pod is None and obs.pod_name == "gone-1"
    assert not obs.pod_unselected


def test_long_names_sharing_a_prefix_resolve_to_the_pod_running_before_the_client() -> None:
    base = "report-" + "x" * 60
    early, late = pod(base + "-aaaaa"), pod(base + "-bbbbb", started="2026-11-27T08:30:00Z")
    prefix = base[:60]
    obs = observed(inventory(early, late), job(f"{prefix}_2026_11_27T08_10_00_000000"))
    assert obs.pod is not None and obs.pod.name == base + "-aaaaa"


def failed(body: Json, started: str, finished: str) -> Json:
    """The pod's worker ran from `started` to `finished` and failed (a Job's pod: Never)."""
    body["status"]["phase"] = "Failed"
    body["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 1, "startedAt": started, "finishedAt": finished}
    }
    return body


def test_a_jobs_failed_pod_and_its_replacement_each_keep_their_own_jobs() -> None:
    # A Job named past River's 60 characters: its pods share the client prefix.
    base = "mailer-" + "x" * 60
    old = failed(pod(base + "-aaaaa"), "2026-11-27T08:00:00Z", "2026-11-27T08:20:00Z")
    new = pod(base + "-bbbbb", started="2026-11-27T08:21:00Z")
    prefix = base[:60]
    found = inventory(old, new)

    on_old = observed(found, job(f"{prefix}_2026_11_27T08_00_02_000000"))
    on_new = observed(found, job(f"{prefix}_2026_11_27T08_21_02_000000", id=2))

    assert on_old.pod is not None and on_old.pod.name == base + "-aaaaa"
    assert on_new.pod is not None and on_new.pod.name == base + "-bbbbb"


def test_the_policys_worker_container_and_beats_reach_the_observation() -> None:
    policy = spec(
        workers={"podSelector": {"matchLabels": {"app": "w"}}, "container": "app"},
        heartbeat={"store": "None"},
    )
    obs = observed(inventory(pod("w-1")), job("w-1_2026_11_27T08_00_05_000000"), policy)
    assert obs.worker_container == "app"
    assert not obs.beats_expected


def test_tier_thresholds_and_adaptive_limits_apply_per_job() -> None:
    policy = spec(tiers=[{"match": {"kinds": ["report"]}, "staleAfter": "90s"}])
    obs = observed(inventory(), job(None), policy, adaptive_limits={"report": 600.0})
    assert obs.thresholds.stale_after == 90.0
    assert obs.thresholds.adaptive_limit == 600.0


def test_each_observation_carries_the_beats_of_the_policys_jobs_on_its_node() -> None:
    """Node loss needs every job on a node: one beating neighbour keeps the node alive."""
    policy = spec()
    found = inventory(pod("a-1"), pod("b-1"))
    jobs = [
        job("a-1_2026_11_27T08_00_05_000000", id=1, beat_age=25.0),
        job("b-1_2026_11_27T08_00_05_000000", id=2, beat_age=2.0),
        job("laptop-of-dev", id=3, beat_age=50.0),
    ]
    pods, nodes = found.freeze("jobs", ClientIds.of(policy).prefixes(jobs), at=0.0)

    quiet, beating, elsewhere = observe(
        jobs, NOW, policy, InventoryView(pods, nodes, found.nodes_observed)
    )

    assert quiet.node_beats == beating.node_beats
    assert quiet.node_beats is not None
    assert (quiet.node_beats.jobs, quiet.node_beats.beating) == (2, 1)
    assert elsewhere.node_beats is None  # no pod, no node


def test_status_book_sets_every_condition_on_first_sight_as_unknown() -> None:
    book = StatusBook(generation=3)
    book.ensure_conditions(NOW)
    types = {c.type: c.status for c in book.conditions}
    assert types == {
        READY: ConditionStatus.UNKNOWN,
        DATABASE_CONNECTED: ConditionStatus.UNKNOWN,
        CIRCUIT_OPEN: ConditionStatus.UNKNOWN,
    }
    assert all(c.observed_generation == 3 for c in book.conditions)


def test_condition_reports_a_status_change_and_keeps_transition_time_otherwise() -> None:
    book = StatusBook(generation=1)
    book.ensure_conditions(NOW)
    assert book.condition(READY, ConditionStatus.TRUE, "Scanning", "ok", NOW)
    later = NOW + timedelta(minutes=5)
    assert not book.condition(READY, ConditionStatus.TRUE, "Scanning", "still ok", later)
    ready = next(c for c in book.conditions if c.type == READY)
    assert ready.last_transition_time == NOW and ready.message == "still ok"


def test_status_is_patched_only_when_more_than_the_scan_time_changed() -> None:
    book = StatusBook(generation=1)
    book.ensure_conditions(NOW)
    book.scanned([Cause.HEALTHY], NOW)
    first = book.changes()
    assert first is not None and first["jobs"]["running"] == 1
    book.patched(first)
    book.scanned([Cause.HEALTHY], NOW + timedelta(seconds=5))
    assert book.changes() is None
    book.scanned([Cause.HEALTHY, Cause.STUCK], NOW + timedelta(seconds=10))
    changed = book.changes()
    assert changed is not None and changed["jobs"]["stuck"] == 1


def test_totals_and_recent_actions_survive_an_operator_restart() -> None:
    book = StatusBook(generation=1)
    book.record(
        RecentAction(
            time=NOW,
            job_id=7,
            kind="report",
            pod="w",
            cause=Cause.STUCK,
            reason="ProgressStale",
            action=Action.CANCEL,
            applied=True,
        )
    )
    resumed = StatusBook.resume(book.render(), generation=2)
    assert resumed.totals.cancelled == 1 and resumed.totals.rescued == 1
    assert resumed.recent_actions[0].job_id == 7
    assert resumed.generation == 2


def durations(kind: str, samples: int, p50: float, p95: float, p99: float) -> KindDurations:
    return KindDurations(kind=kind, samples=samples, p50=p50, p95=p95, p99=p99)


def test_adaptive_limit_is_factor_times_the_quantile_once_there_are_enough_samples() -> None:
    adaptive = AdaptiveSpec(enabled=True, quantile=0.99, factor=3, min_samples=20)
    stats = [durations("report", 50, 10, 20, 40), durations("rare", 5, 1, 2, 3)]
    assert adaptive_limits(stats, adaptive) == {"report": 120.0}
    assert adaptive_limits(stats, AdaptiveSpec(enabled=False)) == {}


def test_quantiles_between_the_read_percentiles_are_interpolated() -> None:
    stats = durations("report", 50, 10, 20, 40)
    assert quantile_seconds(stats, 0.5) == 10
    assert quantile_seconds(stats, 0.97) == pytest.approx(30)
    assert quantile_seconds(stats, 0.999) == 40


def test_kind_stats_keep_the_busiest_kinds_with_their_limits() -> None:
    stats = [durations(f"k{i}", i, 1, 2, 3) for i in range(30)]
    listed = kind_stats(stats, {"k29": 9.0})
    assert len(listed) == 20
    assert listed[0].kind == "k29" and listed[0].adaptive_limit_seconds == 9.0
    assert listed[1].adaptive_limit_seconds is None


def test_jobs_of_one_scan_get_their_own_kinds_limits_and_their_own_pods() -> None:
    policy = spec(tiers=[{"match": {"queues": ["tight"]}, "staleAfter": "20s"}])
    found = inventory(pod("report-w.1"), pod("report-w.2"))
    jobs = [
        job("report-w_1_2026_11_27T08_00_05_000000", id=1, kind="report"),
        job("report-w_2_2026_11_27T08_00_05_000000", id=2, kind="export", queue="tight"),
        job("report-w_1_2026_11_27T08_00_05_000000", id=3, kind="export"),
    ]
    prefixes = ClientIds.of(policy).prefixes(jobs)
    pods, nodes = found.freeze("jobs", prefixes, at=0.0)
    view = InventoryView(pods, nodes, found.nodes_observed)
    limits = {"report": 600.0, "export": 60.0}
    first, second, third = observe(jobs, NOW, policy, view, adaptive_limits=limits)
    assert [o.thresholds.adaptive_limit for o in (first, second, third)] == [600.0, 60.0, 60.0]
    assert [o.thresholds.stale_after for o in (first, second, third)] == [30.0, 20.0, 30.0]
    assert [o.pod.name if o.pod else None for o in (first, second, third)] == [
        "report-w.1",
        "report-w.2",
        "report-w.1",
    ]
