"""Builds the example River worker (examples/worker) once per source change, into the cache."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from devenv.tools import repo_root

# The worker's own module and the heartbeat module it uses through a `replace`: a change to
# either changes the binary.
SOURCE_DIRS = ("examples/worker", "heartbeat")

GO_ENV = {"GOTOOLCHAIN": "local", "GOWORK": "off", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}


class WorkerBuildError(RuntimeError):
    """The example worker could not be built."""


def cache_dir() -> Path:
    """$LIFEGUARD_CACHE, or ~/.cache/river-lifeguard (the folder tools/build.sh uses too)."""
    configured = os.environ.get("LIFEGUARD_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "river-lifeguard"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise WorkerBuildError("go is not installed (need Go >= 1.26 on PATH)")
    return go


def _go_env() -> dict[str, str]:
    return {**os.environ, **GO_ENV}


def _go_version(go: str) -> str:
    done = subprocess.run(
        [go, "env", "GOVERSION"],
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
        timeout=60,
    )
    if done.returncode != 0:
        raise WorkerBuildError(f"`go env GOVERSION` failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _binary_inputs(root: Path) -> list[Path]:
    """Every file that goes into the binary: Go sources (not tests), go.mod and go.sum."""
    files: list[Path] = []
    for name in SOURCE_DIRS:
        folder = root / name
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            if path.name in ("go.mod", "go.sum") or (
                path.suffix == ".go" and not path.name.endswith("_test.go")
            ):
                files.append(path)
    return sorted(files)


def source_hash(root: Path, go_version: str) -> str:
    """A short digest of the worker's inputs and the Go version that compiles them."""
    digest = hashlib.sha256(go_version.encode())
    for path in _binary_inputs(root):
        digest.update(b"\0" + str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def build_worker() -> Path:
    """The path of the built worker binary, building it only when its sources changed.

    Output: $LIFEGUARD_CACHE/worker/<hash of sources>/worker. The binary is built beside its
    final name and renamed into place, so a concurrent reader never sees half a file.
    """
    root = repo_root()
    go = _go()
    target_dir = cache_dir() / "worker" / source_hash(root, _go_version(go))
    binary = target_dir / "worker"
    if binary.is_file():
        return binary
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target_dir / f"worker.{os.getpid()}.tmp"
    try:
        done = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=root / "examples" / "worker",
            capture_output=True,
            text=True,
            check=False,
            env=_go_env(),
            timeout=1800,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkerBuildError(f"could not run go build for examples/worker: {exc}") from exc
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise WorkerBuildError(
            f"go build of examples/worker failed (exit {done.returncode}):\n"
            f"{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    partial.replace(binary)
    return binary
