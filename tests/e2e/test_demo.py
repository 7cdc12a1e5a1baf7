"""The demo's scenario (`make demo`) end to end, with plain output, and what it must show.

The same code as `python -m demo` (`make demo`) plays here on the session's cluster: a real
node joins it (with a PostgreSQL cluster whose socket its pods mount), the operator is installed
by helm from its own image onto it, and four failures are injected one after another next to
long healthy jobs, the OOM kill on the real node. A second node agent is started to be killed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from demo.expected import problems
from demo.output import Narrator
from demo.report import river_rows, summary
from demo.scenario import Demo, Outcome, Stage

from devenv import realnode, river
from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.realnode_world import real_site
from devenv.scenario import lifeguard_errors, untouched

pytestmark = pytest.mark.e2e

StartAgent = Callable[[str], NodeAgentHandle]
NAMESPACE, RELEASE_NAMESPACE = "demo-e2e", "demo-e2e-system"


@dataclass
class Played:
    demo: Demo
    outcome: Outcome
    out: Narrator


@pytest.fixture(scope="module")
def played(
    state_dir: Path,
    control_plane: ControlPlane,
    worker_binary: Path,
    node_agents: list[NodeAgentHandle],
    start_agent: StartAgent,
) -> Iterator[Played]:
    with real_site(state_dir / "demo-real", control_plane) as (cluster, site):
        database_url = river.create_database(cluster, "demo")
        stage = Stage(
            plane=control_plane,
            database_url=database_url,
            state_dir=state_dir,
            worker=worker_binary,
            steady_node=node_agents[0].node_name,
            doomed_node=start_agent("node-demo-doomed"),
            real=site,
            namespace=NAMESPACE,
            release_namespace=RELEASE_NAMESPACE,
        )
        out = Narrator(stream=io.StringIO(), color=False)
        demo = Demo(stage, out)
        try:
            demo.set_up()
            outcome = demo.play()
            yield Played(demo, outcome, out)
        finally:
            print("\n".join(out.lines))
            demo.close(demo.remove)


def test_the_demo_goes_as_told(played: Played) -> None:
    assert problems(played.outcome) == []


def test_oom_kill_is_retried_at_once_counting_the_attempt(played: Played) -> None:
    oom = played.outcome.injection("OOM kill")
    row = played.outcome.rows[oom.job_id]

    assert [(d.verdict, d.action) for d in oom.actions] == [
        ("ResourceExhausted/OOMKilled", "Retry")
    ]
    assert lifeguard_errors(row)[0].startswith("lifeguard: ResourceExhausted/OOMKilled")
    assert (row["state"], row["attempt"]) == ("completed", 2)
    assert row["attempted_by"][-1].startswith("standby_")


def test_node_failure_ends_as_node_lost_with_the_attempt_refunded(played: Played) -> None:
    node = played.outcome.injection("Node failure")
    row = played.outcome.rows[node.job_id]

    assert node.release is not None
    assert (node.release.verdict, node.release.action) == ("InfrastructureDeath/NodeLost", "Retry")
    assert (row["state"], row["attempt"]) == ("completed", 1)
    assert row["attempted_by"][0].startswith("billing_")
    assert row["attempted_by"][-1].startswith("standby_")


def test_frozen_process_gets_its_pod_restarted_then_its_job_retried(played: Played) -> None:
    frozen = played.outcome.injection("Frozen process")

    assert [d.action for d in frozen.actions] == ["RestartPod", "Retry"]
    assert frozen.actions[0].verdict.startswith("Unresponsive/")
    # The retry keeps the cause Lifeguard restarted the pod for, not the eviction it caused.
    assert frozen.actions[1].verdict.startswith("Unresponsive/BeatStale")
    assert played.demo.world.pod("mailer") is None, "the frozen pod was restarted (evicted)"
    assert played.outcome.rows[frozen.job_id]["state"] == "completed"


def test_stuck_job_is_cancelled_through_river_while_its_pod_stays(played: Played) -> None:
    stuck = played.outcome.injection("Stuck job")
    row = played.outcome.rows[stuck.job_id]

    assert [(d.verdict, d.action) for d in stuck.actions] == [("Stuck/ProgressStale", "Cancel")]
    assert row["state"] == "cancelled"
    assert "cancel_attempted_at" in row["metadata"]
    (error,) = lifeguard_errors(row)
    assert error.startswith("lifeguard: Stuck/ProgressStale: ") and error.endswith(
        "Lifeguard cancelled the job"
    ), error
    pod = played.demo.world.pod("indexer")
    assert pod is not None and pod["status"]["phase"] == "Running"


def test_long_healthy_jobs_run_once_untouched(played: Played) -> None:
    outcome = played.outcome

    for job_id in outcome.healthy:
        row = outcome.rows[job_id]
        assert (row["state"], row["attempt"]) == ("completed", 1)
        assert untouched(row)
        assert not [d for d in outcome.decisions if d.job_id == job_id]


def test_operator_runs_from_its_image_on_the_real_node_as_the_charts_service_account(
    played: Played,
) -> None:
    stage = played.demo.stage
    pods = stage.plane.kubectl_json(
        "get", "pods", "-n", RELEASE_NAMESPACE, "-l", f"app.kubernetes.io/instance={stage.release}"
    )["items"]

    assert pods
    for pod in pods:  # type: ignore[attr-defined]
        assert pod["spec"]["nodeName"] == realnode.NODE_NAME
        assert pod["spec"]["containers"][0]["image"] == stage.real.node.images["operator"].reference
        assert pod["spec"]["serviceAccountName"] == "river-lifeguard"
        logs = realnode.pod_logs(
            stage.real.node.state_dir, RELEASE_NAMESPACE, pod["metadata"]["name"]
        )
        assert logs, "the real kubelet wrote no log for the operator's pod"
        assert not [f for f in logs if "Forbidden" in f.read_text()]


def test_oom_kill_was_read_from_the_real_kubelet(played: Played) -> None:
    pod = played.demo.world.pod("importer") or {}
    assert pod["spec"]["nodeName"] == realnode.NODE_NAME
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"


def test_report_compares_every_failure_with_rivers_rescuer(played: Played) -> None:
    out = Narrator(stream=io.StringIO(), color=False)

    river_rows(out, played.outcome)
    summary(out, played.outcome)

    text = "\n".join(out.lines)
    for injection in played.outcome.injections:
        assert f"job {injection.job_id} {injection.kind}, {injection.title}:" in text
    assert text.count("River alone: rescued ~") == 4
    assert "lifeguard: ResourceExhausted/OOMKilled" in text
    assert "run them twice" in text
