"""The operator under exactly the chart's permissions: a real rescue, and nothing more.

`helm install` creates the ServiceAccount and its Roles; the operator then runs as a local
process with a token of that ServiceAccount (the local cluster runs no container images), so
every request it makes is authorized by the chart's RBAC alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.chart import (
    chart_lease,
    install_chart,
    service_account_kubeconfig,
    uninstall_chart,
)
from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.river import RiverDatabase
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
)

pytestmark = pytest.mark.e2e

RELEASE, RELEASE_NS, WATCHED = "lg-chart", "lifeguard-system", "chart-jobs"


@pytest.fixture(scope="module")
def chart_world(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    node_agents: list[NodeAgentHandle],
    state_dir: Path,
) -> Iterator[tuple[Scenario, OperatorProcess, Path]]:
    dsn = river_database()
    migrate_heartbeats(dsn)
    world = new_world(control_plane, kube, WATCHED, dsn, worker_binary)
    control_plane.kubectl("create", "namespace", RELEASE_NS)
    account = install_chart(control_plane, RELEASE, RELEASE_NS, [WATCHED])
    kubeconfig = service_account_kubeconfig(
        control_plane, account, RELEASE_NS, state_dir / "chart-operator.kubeconfig"
    )
    operator = start_operator(
        state_dir,
        kubeconfig,
        name="operator-chart",
        namespaces=[WATCHED],
        lease=chart_lease(control_plane, RELEASE, RELEASE_NS),
    )
    world.apply_policy("workers", fast_policy_spec())
    yield world, operator, kubeconfig
    operator.stop()
    uninstall_chart(control_plane, RELEASE, RELEASE_NS)
    world.cleanup()


def test_infrastructure_death_is_retried_under_the_charts_permissions(
    chart_world: tuple[Scenario, OperatorProcess, Path],
) -> None:
    world, operator, _ = chart_world
    world.wait_condition("workers", "Ready", "True", timeout=60)
    world.worker_pod("chart-w", "chart")
    job = world.enqueue("sleep", {"seconds": 300}, queue="chart")
    world.wait_job(job, "running", timeout=30)

    world.delete_pod("chart-w", grace=0)
    retried = world.wait_job(job, ("retryable", "available"), timeout=30)
    assert lifeguard_errors(retried)[0].startswith("lifeguard: InfrastructureDeath/")
    world.wait_event("JobRetried", containing=f"job {job} ")
    assert "forbidden" not in operator.log_text().lower()


@pytest.mark.parametrize(
    "args",
    [
        ("get", "secret", "river-db", "-n", "default"),
        ("delete", "deployment", "anything", "-n", WATCHED),
        ("get", "secrets", "-n", WATCHED),
        ("delete", "pod", "anything", "-n", WATCHED),
    ],
    ids=["secret-outside-watched", "delete-deployment", "list-secrets", "delete-pod"],
)
def test_the_operators_identity_may_do_nothing_else(
    chart_world: tuple[Scenario, OperatorProcess, Path],
    control_plane: ControlPlane,
    args: tuple[str, ...],
) -> None:
    _, _, kubeconfig = chart_world
    done = control_plane.kubectl(*args, kubeconfig=kubeconfig, check=False)
    assert done.returncode != 0
    assert "forbidden" in done.stderr.lower(), done.stderr
