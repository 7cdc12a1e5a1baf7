"""Helm (built from its Go module) on the project's chart: lint, render, install, uninstall.

Helm's own cache, config and data folders live under build/helm, so the tests never read or
write the user's ~/.config/helm or ~/.cache/helm.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from devenv.tools import repo_root, tool_bin

CHART = repo_root() / "charts" / "river-lifeguard"


class HelmError(RuntimeError):
    """helm exited non-zero; `stderr` holds its message."""

    def __init__(self, args: Sequence[str], done: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"helm {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        self.stderr = done.stderr


def _environment() -> dict[str, str]:
    home = repo_root() / "build" / "helm"
    env = dict(os.environ)
    for name in ("CACHE", "CONFIG", "DATA"):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[f"HELM_{name}_HOME"] = str(folder)
    return env


def helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Runs the built helm; against a cluster when `kubeconfig` is given."""
    argv = [str(tool_bin("helm")), *args]
    if kubeconfig is not None:
        argv.append(f"--kubeconfig={kubeconfig}")
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=timeout, env=_environment()
    )
    if check and done.returncode != 0:
        raise HelmError(args, done)
    return done


@contextmanager
def values_file(values: Mapping[str, Any]) -> Iterator[Path]:
    """`values` as a YAML file for helm's --values, removed afterwards."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as f:
        yaml.safe_dump(dict(values), f)
        f.flush()
        yield Path(f.name)


def template(
    values: Mapping[str, Any],
    *,
    release: str = "lifeguard",
    namespace: str = "lifeguard-system",
    api_versions: Sequence[str] = (),
    include_crds: bool = False,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with `values` (stdout: the manifests)."""
    with values_file(values) as path:
        args = ["template", release, str(CHART), "--namespace", namespace, "--values", str(path)]
        args += [f"--api-versions={version}" for version in api_versions]
        if include_crds:
            args.append("--include-crds")
        return helm(*args, check=check)


def render(
    values: Mapping[str, Any],
    *,
    release: str = "lifeguard",
    namespace: str = "lifeguard-system",
    api_versions: Sequence[str] = (),
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """The chart's objects for `values`, parsed (empty documents dropped)."""
    done = template(
        values,
        release=release,
        namespace=namespace,
        api_versions=api_versions,
        include_crds=include_crds,
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def lint(values: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` of the chart with `values`; never raises (read returncode)."""
    with values_file(values) as path:
        return helm("lint", "--strict", str(CHART), "--values", str(path), check=False)


def install(
    release: str,
    namespace: str,
    values: Mapping[str, Any],
    kubeconfig: Path,
) -> subprocess.CompletedProcess[str]:
    """`helm install` into the cluster of `kubeconfig`, creating the namespace (no --wait)."""
    with values_file(values) as path:
        return helm(
            "install", release, str(CHART), "--namespace", namespace, "--create-namespace",
            "--values", str(path), kubeconfig=kubeconfig,
        )  # fmt: skip


def upgrade(
    release: str,
    namespace: str,
    values: Mapping[str, Any],
    kubeconfig: Path,
) -> subprocess.CompletedProcess[str]:
    """`helm upgrade` of an installed release to the chart with `values` (no --wait)."""
    with values_file(values) as path:
        return helm(
            "upgrade", release, str(CHART), "--namespace", namespace,
            "--values", str(path), kubeconfig=kubeconfig,
        )  # fmt: skip


def uninstall(release: str, namespace: str, kubeconfig: Path) -> None:
    helm("uninstall", release, "--namespace", namespace, kubeconfig=kubeconfig, check=False)
