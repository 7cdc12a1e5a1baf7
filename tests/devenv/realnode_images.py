"""The real node's images: built once by tools/images.sh, imported into containerd.

tools/images.sh builds with buildah (no Docker engine, no registry) into OCI archives under
$LIFEGUARD_CACHE/images/, keyed by their inputs; this module runs it and hands the archives to
`ctr images import` in containerd's `k8s.io` namespace, where the kubelet's CRI looks.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devenv.tools import repo_root

IMAGES = ("operator", "worker", "pause")
CRI_NAMESPACE = "k8s.io"


class ImageError(RuntimeError):
    """An image could not be built or imported."""


@dataclass(frozen=True)
class Image:
    name: str
    reference: str
    archive: Path

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


@functools.cache
def built_images() -> dict[str, Image]:
    """Every image the real node runs, building what is not cached (minutes on a first run)."""
    script = repo_root() / "tools" / "images.sh"
    try:
        done = subprocess.run(
            [str(script), *IMAGES], capture_output=True, text=True, check=False, timeout=3600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"could not run {script}: {exc}") from exc
    if done.returncode != 0:
        raise ImageError(f"{script} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    images: dict[str, Image] = {}
    for line in done.stdout.splitlines():
        name, reference, archive = line.split()
        images[name] = Image(name, reference, Path(archive))
    missing = set(IMAGES) - images.keys()
    if missing:
        raise ImageError(f"{script} printed no image for {', '.join(sorted(missing))}")
    return images


def import_images(ctr: Path, address: Path, images: dict[str, Image]) -> None:
    """Imports the archives into containerd's CRI namespace (the kubelet never pulls them)."""
    for image in images.values():
        done = subprocess.run(
            [
                str(ctr),
                f"--address={address}",
                f"--namespace={CRI_NAMESPACE}",
                "images",
                "import",
                "--local",
                str(image.archive),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if done.returncode != 0:
            raise ImageError(
                f"ctr images import {image.archive} failed (exit {done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
