"""The chart's and the image's files agree with the project: versions, CRD, schema, dashboard, lock.

Pure file checks; helm's own rendering is tested in tests/e2e/test_chart_render.py.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lifeguard.cli import run
from lifeguard.model.duration import DURATION_PATTERN, parse_duration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "river-lifeguard"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())

# Metrics the operator exports (lifeguard.metrics) that the dashboard must show.
METRICS = [
    "lifeguard_verdicts_total",
    "lifeguard_actions_total",
    "lifeguard_rescue_seconds",
    "lifeguard_heartbeat_age_seconds",
    "lifeguard_scan_duration_seconds",
    "lifeguard_circuit_open",
    "lifeguard_running_jobs",
    "lifeguard_database_errors_total",
    "lifeguard_leader",
]


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())

    assert chart["appVersion"] == PYPROJECT["project"]["version"]


def test_chart_crds_are_the_generated_crds() -> None:
    # `make crds` regenerates crds/ and copies it into the chart (make chart-crds).
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    shipped = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))

    assert shipped == generated
    for name in generated:
        assert (CHART / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
            f"charts/river-lifeguard/crds/{name} differs from crds/{name}: run `make chart-crds`"
        )


def _objects(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if "properties" in schema:
        yield path or "/", schema
        for key, child in schema["properties"].items():
            yield from _objects(child, f"{path}/{key}")


def test_every_schema_object_with_known_keys_rejects_unknown_keys() -> None:
    for path, schema in _objects(SCHEMA):
        assert schema.get("additionalProperties") is False, f"{path} accepts unknown keys"


def _keys(values: dict[str, Any], schema: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of values.yaml keys the schema does not describe."""
    for key, value in values.items():
        child = schema.get("properties", {}).get(key)
        if child is None:
            yield f"{path}/{key}"
        elif isinstance(value, dict) and "properties" in child:
            yield from _keys(value, child, f"{path}/{key}")


def test_every_default_value_is_described_by_the_schema() -> None:
    assert list(_keys(VALUES, SCHEMA)) == []


def test_chart_leader_election_defaults_are_the_operators() -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    run.register(subparsers)
    flags = parser.parse_args(["run"])
    election = VALUES["leaderElection"]

    assert parse_duration(election["leaseDuration"]) == flags.lease_duration
    assert parse_duration(election["renewDeadline"]) == flags.renew_deadline
    assert parse_duration(election["retryPeriod"]) == flags.retry_period
    for key in ("leaseDuration", "renewDeadline", "retryPeriod"):
        assert SCHEMA["properties"]["leaderElection"]["properties"][key]["pattern"] == (
            DURATION_PATTERN
        )


def test_every_top_level_value_is_documented_in_values_yaml() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for index, line in enumerate(lines):
        if re.match(r"^[a-zA-Z]+:", line):
            above = [ln for ln in lines[:index] if ln.strip()]
            if not above or not above[-1].startswith("# "):
                undocumented.append(line)

    assert undocumented == []


def _dashboard() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads((CHART / "dashboards" / "river-lifeguard.json").read_text())
    return parsed


@pytest.mark.parametrize("metric", METRICS)
def test_dashboard_shows_each_metric(metric: str) -> None:
    expressions = [t["expr"] for p in _dashboard()["panels"] for t in p["targets"]]

    assert any(re.search(rf"\b{metric}(_bucket)?\b", e) for e in expressions), metric


def test_dashboard_panels_have_titles_and_unique_ids() -> None:
    panels = _dashboard()["panels"]

    assert all(p["title"] for p in panels)
    assert len({p["id"] for p in panels}) == len(panels)


def _lock(name: str) -> dict[str, list[str]]:
    """docker/<name>: pinned requirement -> its hashes."""
    pins: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / "docker" / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(" "):
            pins[current].append(line.strip().removesuffix("\\").strip())
        else:
            current = line.removesuffix("\\").strip()
            pins[current] = []
    return pins


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PYPROJECT["project"]["dependencies"]),
        ("build-requirements.lock", PYPROJECT["build-system"]["requires"]),
    ],
)
def test_image_lock_pins_every_requirement_with_hashes(lock: str, requirements: list[str]) -> None:
    pins = _lock(lock)
    versions = {}
    for pin, hashes in pins.items():
        name, _, version = pin.partition("==")
        assert version, f"{pin} is not pinned with =="
        assert hashes and all(h.startswith("--hash=sha256:") for h in hashes), pin
        versions[canonicalize_name(name)] = version

    for requirement in map(Requirement, requirements):
        locked = versions.get(canonicalize_name(requirement.name))
        assert locked is not None, f"{requirement} is not in docker/{lock}: run `make image-lock`"
        assert requirement.specifier.contains(locked), f"docker/{lock} pins {locked}"


def test_dockerfile_runs_the_operator_as_non_root_from_the_slim_base() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER 65532:65532$", dockerfile, re.M)
    assert 'ENTRYPOINT ["lifeguard"]' in dockerfile
    assert 'CMD ["run"]' in dockerfile
    assert "--require-hashes" in dockerfile
