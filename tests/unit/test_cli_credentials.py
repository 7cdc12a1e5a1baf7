"""No Kubernetes credentials at all: one line naming what is missing and exit 1, never a
traceback, from `lifeguard run` and `lifeguard explain` alike."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lifeguard.cli import main
from lifeguard.cluster.kube import NoCredentials, load_config


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    missing = tmp_path / "no-such.kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return missing


def test_load_config_without_credentials_says_what_is_missing(no_credentials: Path) -> None:
    with pytest.raises(NoCredentials, match=r"neither a pod's ServiceAccount nor a usable"):
        load_config()


def test_explain_without_credentials_prints_one_line(
    no_credentials: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "workers", "-n", "jobs"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lifeguard explain: no Kubernetes credentials")


def test_run_without_credentials_logs_one_line_and_exits_1(no_credentials: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifeguard.cli", "run", "-A", "--no-leader-elect"],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ERROR" in lines[0], done.stderr
    assert "no Kubernetes credentials" in lines[0]
