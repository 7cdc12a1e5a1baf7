"""tools/images.sh keeps its cache of image archives bounded: building an image prunes the
archives of its other keys (older sources) that no run has used for a day, never the current
one, nor an archive another worktree used recently. Runs the real script (buildah, go) on the
smallest image, the pause image, in a cache folder of its own."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from devenv.tools import repo_root

pytestmark = pytest.mark.integration

TWO_DAYS_AGO = time.time() - 2 * 86400


def _images_sh(cache: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(repo_root() / "tools" / "images.sh"), *names],
        env={**os.environ, "LIFEGUARD_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_building_an_image_prunes_its_archives_of_other_keys_unused_for_a_day(
    tmp_path: Path,
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    stale = images / "pause-0000000000000000.tar"
    recent = images / "pause-1111111111111111.tar"  # another worktree used it today
    other_image = images / "worker-2222222222222222.tar"
    for archive in (stale, recent, other_image):
        archive.write_text("an archive of another version")
    for archive in (stale, other_image):
        os.utime(archive, (TWO_DAYS_AGO, TWO_DAYS_AGO))

    built = _images_sh(tmp_path, "pause")

    assert built.returncode == 0, built.stderr
    name, _reference, path = built.stdout.split()
    current = Path(path)
    assert (name, current.parent) == ("pause", images)
    assert current.is_file() and current not in (stale, recent)
    assert not stale.exists(), built.stderr
    assert f"pruned {stale}" in built.stderr
    assert recent.exists(), "an archive used within the day is kept"
    assert other_image.exists(), "only the built image's own archives are pruned"

    # A cached run builds nothing, prunes nothing, and marks its archive as used.
    os.utime(current, (TWO_DAYS_AGO, TWO_DAYS_AGO))
    cached = _images_sh(tmp_path, "pause")

    assert cached.returncode == 0, cached.stderr
    assert cached.stdout == built.stdout
    assert "building" not in cached.stderr and "pruned" not in cached.stderr
    assert current.stat().st_mtime > time.time() - 3600
    assert recent.exists()
