"""Locates the project's Go tools, building them once through tools/build.sh."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


class ToolError(RuntimeError):
    """A Go tool could not be built or found."""


def repo_root() -> Path:
    """The checkout's root folder (the one holding tools/build.sh)."""
    return Path(__file__).resolve().parents[2]


@functools.cache
def tool_dir(name: str) -> Path:
    """The cache folder holding the built binary `name`, building it on first use.

    tools/build.sh prints the bin folder on stdout and progress on stderr; a cached tool
    costs one shell start, and functools.cache makes later calls free.
    """
    script = repo_root() / "tools" / "build.sh"
    try:
        done = subprocess.run(
            [str(script), name], check=False, capture_output=True, text=True, timeout=3600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"could not run {script} {name}: {exc}") from exc
    if done.returncode != 0:
        raise ToolError(
            f"{script} {name} failed with exit code {done.returncode}:\n{done.stderr.strip()}"
        )
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise ToolError(f"{script} {name} printed no bin folder; stderr:\n{done.stderr.strip()}")
    return Path(lines[-1])


def tool_bin(name: str) -> Path:
    """The path of the built binary `name` (etcd, kube-apiserver, kubectl, helm, river, ...)."""
    binary = tool_dir(name) / name
    if not binary.is_file():
        raise ToolError(f"tools/build.sh {name} reported {binary.parent}, but {binary} is missing")
    return binary
