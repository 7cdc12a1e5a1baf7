"""Smoke: the control plane built from Go modules is real and its controllers run."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devenv.controlplane import ControlPlane
from devenv.tools import tool_bin
from devenv.waiting import wait_for

pytestmark = pytest.mark.e2e

KUBERNETES_VERSION = "v1.37.2"
HELM_VERSION = "v3.22.0"


def _manifest(control_plane: ControlPlane, document: dict[str, Any]) -> None:
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(document))


def test_kubectl_reports_the_built_client_and_server_versions(control_plane: ControlPlane) -> None:
    versions = json.loads(control_plane.kubectl("version", "-o", "json").stdout)

    assert versions["clientVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert versions["serverVersion"]["minor"] == "37"


def test_default_service_account_lets_pods_be_created(control_plane: ControlPlane) -> None:
    _manifest(
        control_plane,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "smoke-sa", "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "none", "command": ["true"]}]},
        },
    )
    pod = control_plane.kubectl_json("get", "pod", "smoke-sa")
    control_plane.kubectl("delete", "pod", "smoke-sa", "--wait=false")

    spec = pod["spec"]
    assert isinstance(spec, dict)
    assert spec["serviceAccountName"] == "default"
    # The ServiceAccount admission plugin mounts a projected token for the account.
    assert any(v["name"].startswith("kube-api-access-") for v in spec["volumes"])


def test_job_controller_creates_the_pod_of_a_job(control_plane: ControlPlane) -> None:
    _manifest(
        control_plane,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "smoke-job", "namespace": "default"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "none", "command": ["true"]}],
                    }
                }
            },
        },
    )

    def job_pods() -> list[str]:
        listed = control_plane.kubectl(
            "get", "pods", "-l", "job-name=smoke-job", "-o", "name"
        ).stdout
        return listed.split()

    wait_for(lambda: len(job_pods()) == 1, 60, "a pod created by the Job controller")
    # The garbage collector deletes the Job's pods once their owner is gone.
    control_plane.kubectl("delete", "job", "smoke-job", "--cascade=background", "--wait=false")
    wait_for(lambda: job_pods() == [], 60, "the Job's pod to be garbage-collected")


def test_namespace_controller_finishes_namespace_deletion(control_plane: ControlPlane) -> None:
    control_plane.kubectl("create", "namespace", "smoke-ns")
    control_plane.kubectl("delete", "namespace", "smoke-ns", "--wait=false")

    def gone() -> bool:
        done = control_plane.kubectl("get", "namespace", "smoke-ns", check=False)
        return done.returncode != 0 and "NotFound" in done.stderr

    wait_for(gone, 60, "the namespace controller to delete the namespace")


def test_user_kubeconfig_is_authorized_by_rbac_and_node_authorizer(
    control_plane: ControlPlane,
) -> None:
    nobody = control_plane.user_kubeconfig("smoke-nobody")
    node = control_plane.user_kubeconfig("system:node:smoke-node", ["system:nodes"])

    def can_i(kubeconfig: Path, *args: str) -> str:
        done = control_plane.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
        return done.stdout.strip()

    assert can_i(control_plane.kubeconfig, "delete", "nodes") == "yes"
    assert can_i(nobody, "list", "pods") == "no"
    assert can_i(node, "create", "leases", "-n", "kube-node-lease") == "yes"
    assert can_i(node, "delete", "namespaces") == "no"


def test_helm_reports_its_version_and_renders_a_chart(tmp_path: Path) -> None:
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-greeting
            data:
              greeting: {{ .Values.greeting | quote }}
              kube: {{ .Capabilities.KubeVersion.Minor | quote }}
            """
        )
    )
    env = {**os.environ, "HOME": str(tmp_path), "HELM_CACHE_HOME": str(tmp_path / "cache")}

    def helm(*args: str) -> str:
        return subprocess.run(
            [str(tool_bin("helm")), *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=60,
        ).stdout

    version = helm("version", "--template", "{{ .Version }}")
    rendered = helm("template", "demo", str(chart), "--set", "greeting=hi")

    assert version == HELM_VERSION
    assert "name: demo-greeting" in rendered
    assert 'greeting: "hi"' in rendered
    assert 'kube: "37"' in rendered
