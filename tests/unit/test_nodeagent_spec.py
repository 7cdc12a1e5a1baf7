"""The node agent's pure rules: hostnames, quantities, environment, container states, phases."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from devenv.nodeagent.spec import (
    ConditionBook,
    ContainerRecord,
    SpecError,
    Termination,
    container_argv,
    container_env,
    expand_refs,
    image_entrypoint,
    native_sidecars,
    parse_quantity,
    pod_hostname,
    pod_phase,
    restart_wanted,
    termination_reason,
)

Json = dict[str, Any]


def a_pod(name: str = "worker-7f", **spec: Any) -> Json:
    return {
        "metadata": {"name": name, "namespace": "jobs", "uid": "u-1", "labels": {"app": "w"}},
        "spec": {"nodeName": "node-1", **spec},
    }


def no_objects(kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
    return None


def ended(code: int, reason: str | None = None) -> Termination:
    return Termination(code, reason or termination_reason(code, False), "t0", "t1")


@pytest.mark.parametrize(
    ("pod_name", "hostname"),
    [
        ("worker-7f", "worker-7f"),
        ("a" * 63, "a" * 63),
        ("b" * 70, "b" * 63),
        # Kubelet trims the separators a cut leaves at the end.
        ("c" * 61 + "--d" + "e" * 10, "c" * 61),
        ("c" * 62 + ".x", "c" * 62),
    ],
)
def test_pod_hostname_is_the_pod_name_cut_like_kubelet(pod_name: str, hostname: str) -> None:
    assert pod_hostname(pod_name) == hostname


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("64Mi", 64 * 2**20),
        ("1Gi", 2**30),
        ("100M", 100_000_000),
        ("1.5Gi", 3 * 2**29),
        ("5e8", 500_000_000),
        ("1500", 1500),
        ("500m", 0),
        (2048, 2048),
    ],
)
def test_quantities_parse_to_plain_units(quantity: str | int, value: int) -> None:
    assert parse_quantity(quantity) == value


def test_an_unknown_quantity_suffix_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        parse_quantity("12Qi")


def test_refs_expand_known_variables_and_keep_unknown_and_escaped_ones() -> None:
    env = {"POD": "w-1"}
    assert expand_refs("$(POD)/$(NOPE)/$$(POD)", env) == "w-1/$(NOPE)/$(POD)"


def test_env_has_downward_api_fields_values_and_secret_keys() -> None:
    container = {
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "GREETING", "value": "hello $(POD_NAME)"},
            {"name": "URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
        ]
    }

    def secrets(kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        return {"url": f"{kind}:{namespace}/{name}"}

    env = container_env(a_pod(), container, secrets, "worker-7f")
    assert env == {
        "HOSTNAME": "worker-7f",
        "POD_NAME": "worker-7f",
        "NS": "jobs",
        "NODE": "node-1",
        "UID": "u-1",
        "APP": "w",
        "GREETING": "hello worker-7f",
        "URL": "secretRef:jobs/db",
    }


def test_a_missing_secret_is_a_config_error() -> None:
    container = {"env": [{"name": "U", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]}
    with pytest.raises(SpecError) as raised:
        container_env(a_pod(), container, no_objects, "h")
    assert raised.value.reason == "CreateContainerConfigError"


def test_command_is_looked_up_on_the_agent_path_first(tmp_path: Path) -> None:
    binary = tmp_path / "worker"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    container = {"command": ["worker"], "args": ["run", "$(MODE)"]}
    argv = container_argv(container, {"MODE": "fast"}, [tmp_path])
    assert argv == [str(binary), "run", "fast"]


def test_without_a_command_the_image_names_the_binary(tmp_path: Path) -> None:
    assert image_entrypoint("registry.local/lifeguard/worker:dev@sha256:ab") == "worker"
    (tmp_path / "worker").write_text("")
    (tmp_path / "worker").chmod(0o755)
    assert container_argv({"image": "lifeguard/worker:1"}, {}, [tmp_path])[0].endswith("worker")


def test_an_unknown_command_is_a_run_container_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        container_argv({"command": ["no-such-binary-here"]}, {}, [tmp_path])
    assert raised.value.reason == "RunContainerError"


@pytest.mark.parametrize(
    ("code", "oom", "reason"),
    [(0, False, "Completed"), (3, False, "Error"), (137, False, "Error"), (137, True, "OOMKilled")],
)
def test_termination_reason_follows_exit_code_and_oom(code: int, oom: bool, reason: str) -> None:
    assert termination_reason(code, oom) == reason


def test_a_container_in_back_off_waits_and_keeps_its_last_termination() -> None:
    record = ContainerRecord("w", "worker", restart_count=1, container_id="c1")
    record.last_terminated, record.restart_pending = ended(3), True
    record.waiting_reason = "CrashLoopBackOff"
    status = record.as_api()
    assert status["state"] == {
        "waiting": {"reason": "CrashLoopBackOff"},
        "running": None,
        "terminated": None,
    }
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["restartCount"] == 1
    assert status["ready"] is False


def test_a_finished_container_reports_terminated_and_clears_other_states() -> None:
    record = ContainerRecord("w", "worker", container_id="c1", terminated=ended(137, "OOMKilled"))
    state = record.as_api()["state"]
    assert state["waiting"] is None
    assert state["running"] is None
    assert state["terminated"]["reason"] == "OOMKilled"


def running() -> ContainerRecord:
    return ContainerRecord("a", "i", running_since="t0")


def finished(code: int) -> ContainerRecord:
    return ContainerRecord("b", "i", terminated=ended(code))


def backing_off() -> ContainerRecord:
    return ContainerRecord("c", "i", last_terminated=ended(1), restart_pending=True)


@pytest.mark.parametrize(
    ("records", "phase"),
    [
        ([ContainerRecord("a", "i")], "Pending"),
        ([running()], "Running"),
        ([running(), finished(0)], "Running"),
        ([backing_off()], "Running"),
        ([finished(0)], "Succeeded"),
        ([finished(0), finished(2)], "Failed"),
    ],
)
def test_pod_phase_follows_its_containers(records: list[ContainerRecord], phase: str) -> None:
    assert pod_phase(records) == phase


def test_ready_conditions_keep_their_transition_time_until_they_change() -> None:
    book = ConditionBook()
    first = {c["type"]: c for c in book.conditions([running()], "Running")}
    again = {c["type"]: c for c in book.conditions([running()], "Running")}
    done = {c["type"]: c for c in book.conditions([finished(0)], "Succeeded")}
    assert first["Ready"]["status"] == "True"
    assert again["Ready"]["lastTransitionTime"] == first["Ready"]["lastTransitionTime"]
    assert done["Ready"]["status"] == "False"
    assert done["Ready"]["reason"] == "PodCompleted"


def test_native_sidecars_are_the_init_containers_that_restart_always() -> None:
    spec = {
        "initContainers": [
            {"name": "migrate"},
            {"name": "proxy", "restartPolicy": "Always"},
        ],
        "containers": [{"name": "worker"}],
    }
    assert [c["name"] for c in native_sidecars(spec)] == ["proxy"]
    assert native_sidecars({"containers": [{"name": "worker"}]}) == []


@pytest.mark.parametrize(
    ("policy", "code", "sidecar", "main_done", "again"),
    [
        ("Never", 1, True, False, True),
        ("Never", 0, True, False, True),
        ("Never", 1, True, True, False),
        ("Never", 1, False, False, False),
        ("OnFailure", 1, False, False, True),
        ("OnFailure", 0, False, False, False),
        ("Always", 0, False, False, True),
    ],
    ids=[
        "sidecar_restarts_whatever_the_pods_policy",
        "sidecar_restarts_after_a_clean_exit",
        "sidecar_stays_down_once_the_main_containers_finished",
        "main_container_of_a_never_pod_stays_down",
        "main_container_restarts_on_failure",
        "main_container_of_an_on_failure_pod_stays_down_after_success",
        "main_container_of_an_always_pod_restarts",
    ],
)
def test_restarts_follow_kubelets_rules(
    policy: str, code: int, sidecar: bool, main_done: bool, again: bool
) -> None:
    assert restart_wanted(policy, code, sidecar=sidecar, main_done=main_done) is again
