"""What a supervisor still says when its leadership ends between two action batches."""

import logging

import kubernetes
import pytest
from builders import pod, policy_spec, running_job, snapshot

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import KubeClient
from lifeguard.metrics import Metrics
from lifeguard.reconcile import Outcome, ReconcileState, Result, reconcile
from lifeguard.supervisor.loop import Supervisor
from lifeguard.supervisor.policy import PolicyRef


def test_the_actions_taken_before_leadership_ended_are_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    snap = snapshot(
        running_job(job_id=1).on(pod("w-1").oom_killed()),
        running_job(job_id=2).on(pod("w-2").oom_killed()),
    ).snap()
    _, effects = reconcile(snap, ReconcileState(), policy_spec())
    first, second = effects.actions
    metrics = Metrics()
    supervisor = Supervisor(
        PolicyRef("jobs", "rescue", "uid-1"),
        kube=KubeClient(kubernetes.client.ApiClient()),
        inventory=Inventory(),
        metrics=metrics,
    )

    with caplog.at_level(logging.INFO, logger="lifeguard.supervisor.apply"):
        supervisor._say_taken(snap, effects, [Outcome(first, Result.APPLIED)])

    said = [r.getMessage() for r in caplog.records]
    assert any(f"job {first.job_id} " in line and "applied" in line for line in said), said
    assert not any(f"job {second.job_id} " in line for line in said), said
    applied = metrics.registry.get_sample_value(
        "lifeguard_actions_total",
        {
            "policy": "jobs/rescue",
            "action": "Retry",
            "cause": "ResourceExhausted",
            "result": "applied",
        },
    )
    assert applied == 1
    not_taken = metrics.registry.get_sample_value(
        "lifeguard_actions_total",
        {
            "policy": "jobs/rescue",
            "action": "Retry",
            "cause": "ResourceExhausted",
            "result": "failed",
        },
    )
    assert not_taken is None  # the batch never written is no failed write
