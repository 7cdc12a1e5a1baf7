"""Builds bench/heartbeatwal (a Go program using the heartbeat module) once per source change."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

from devenv.tools import repo_root
from devenv.worker import GO_ENV, cache_dir

_SOURCES = ("bench/heartbeatwal", "heartbeat")


def _inputs(root: Path) -> list[Path]:
    return sorted(
        path
        for folder in _SOURCES
        for path in (root / folder).rglob("*")
        if path.is_file()
        and (
            path.name in ("go.mod", "go.sum") or (path.suffix == ".go" and "_test" not in path.stem)
        )
    )


@functools.cache
def heartbeatwal_binary() -> Path:
    root = repo_root()
    digest = hashlib.sha256()
    for path in _inputs(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    target = cache_dir() / "bench" / digest.hexdigest()[:16] / "heartbeatwal"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"heartbeatwal.{os.getpid()}.tmp")
    done = subprocess.run(
        ["go", "build", "-trimpath", "-o", str(partial), "."],
        cwd=root / "bench" / "heartbeatwal",
        env={**os.environ, **GO_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"go build of bench/heartbeatwal failed:\n{done.stdout}{done.stderr}")
    partial.replace(target)
    return target
