"""The generated JobPolicy CRD on the real kube-apiserver: schema, defaults, CEL, columns."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.controlplane import ControlPlane
from lifeguard.model.conditions import READY, set_condition
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.status import ActionTotals, JobCounts, JobPolicyStatus
from policy_cases import EXAMPLES, INVALID_CASES, InvalidCase, manifest, minimal_spec

pytestmark = pytest.mark.e2e

CRD = Path(__file__).resolve().parents[2] / "crds" / "lifeguard.dev_jobpolicies.yaml"
NAMESPACE = "crd-e2e"


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """The control plane with the CRD applied and Established, and a namespace to work in."""
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "crd/jobpolicies.lifeguard.dev", "--timeout=60s"
    )
    control_plane.kubectl("create", "namespace", NAMESPACE)
    yield control_plane
    control_plane.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def _apply(cluster: ControlPlane, document: dict[str, Any]) -> Any:
    return cluster.kubectl(
        "apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(document), check=False
    )


def test_crd_is_established_with_its_names(cluster: ControlPlane) -> None:
    crd = cluster.kubectl_json("get", "crd", "jobpolicies.lifeguard.dev", "-o", "json")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}  # type: ignore[index]

    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["jp"]  # type: ignore[index]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_accepted(cluster: ControlPlane, path: Path) -> None:
    done = cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(path), check=False)

    assert done.returncode == 0, done.stderr
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    assert cluster.kubectl("get", "jp", "-n", NAMESPACE, name, check=False).returncode == 0


@pytest.mark.parametrize(
    "case", [c for c in INVALID_CASES if c.apiserver], ids=lambda case: case.name
)
def test_apiserver_rejects_invalid_spec_naming_the_field(
    cluster: ControlPlane, case: InvalidCase
) -> None:
    done = _apply(cluster, manifest(f"invalid-{case.name}"[:63], case.spec()))

    assert done.returncode != 0, f"{case.name} was accepted"
    assert case.field in done.stderr, done.stderr


@pytest.mark.parametrize(
    "case", [c for c in INVALID_CASES if not c.apiserver], ids=lambda case: case.name
)
def test_what_cel_cannot_judge_reaches_the_operator(
    cluster: ControlPlane, case: InvalidCase
) -> None:
    # The apiserver accepts it; validate_spec (unit-tested) makes the operator report InvalidSpec.
    done = _apply(cluster, manifest(f"accepted-{case.name}"[:63], case.spec()))

    assert done.returncode == 0, done.stderr


def test_server_side_defaults_equal_the_models_defaults(cluster: ControlPlane) -> None:
    assert _apply(cluster, manifest("defaults", minimal_spec())).returncode == 0
    stored = cluster.kubectl_json("get", "jp", "-n", NAMESPACE, "defaults", "-o", "json")
    expected = JobPolicySpec.model_validate(minimal_spec()).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    expected.pop("tiers")  # an empty list has no default on the server; absent means none

    assert stored["spec"] == expected
    assert stored["spec"]["heartbeat"] == {  # type: ignore[index]
        "store": "Table",
        "interval": "10s",
        "missedBeats": 3,
        "startupGrace": "60s",
    }


def test_get_shows_the_printer_columns_from_status(cluster: ControlPlane) -> None:
    assert _apply(cluster, manifest("columns", minimal_spec())).returncode == 0
    now = datetime.now(UTC)
    status = JobPolicyStatus(
        observed_generation=1,
        conditions=set_condition(
            [],
            type=READY,
            status="True",
            reason="Scanning",
            message="scanning 3 jobs",
            now=now,
            observed_generation=1,
        ),
        last_scan_time=now,
        jobs=JobCounts(running=3, healthy=2, stuck=1),
        totals=ActionTotals(rescued=4, retried=4),
    )
    patch = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
    cluster.kubectl(
        "patch", "jp", "columns", "-n", NAMESPACE, "--subresource=status", "--type=merge",
        "-p", json.dumps(patch),
    )  # fmt: skip

    lines = cluster.kubectl("get", "jp", "-n", NAMESPACE, "columns").stdout.splitlines()

    assert lines[0].split() == [
        "NAME", "MODE", "RUNNING", "HEALTHY", "STUCK", "RESCUED", "READY", "AGE",
    ]  # fmt: skip
    assert lines[1].split()[:7] == ["columns", "Enforce", "3", "2", "1", "4", "True"]


def test_kubectl_explain_shows_the_field_descriptions(cluster: ControlPlane) -> None:
    # The apiserver publishes a new CRD's OpenAPI a moment after it is Established.
    deadline = time.monotonic() + 60
    while (done := cluster.kubectl("explain", "jobpolicy.spec.heartbeat", check=False)).returncode:
        assert time.monotonic() < deadline, done.stderr
        time.sleep(1)
    explained = done.stdout

    assert "How workers prove that their process is alive (beats)" in explained
    for field in (
        "store",
        "metadataKey",
        "interval",
        "missedBeats",
        "staleAfter",
        "progressTimeout",
    ):
        assert field in explained
