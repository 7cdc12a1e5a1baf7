"""River client IDs to pods: River's default ID format (river client.go defaultClientIDWithHost)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from lifeguard.model.client_id import (
    DEFAULT_CLIENT_ID_PATTERN,
    client_id_pod_and_start,
    client_prefix,
    parse_started,
    river_host_of_pod,
)

STARTED = datetime(2024, 3, 7, 4, 39, 12, 123456, tzinfo=UTC)


def river_default_client_id(hostname: str, started: datetime = STARTED) -> str:
    """What River writes, per its own tests: dots to underscores, host cut to 60."""
    host = hostname.replace(".", "_")[:60]
    return f"{host}_{started.strftime('%Y_%m_%dT%H_%M_%S_%f')}"


@pytest.mark.parametrize(
    ("client_id", "expected"),
    [
        ("worker-7f9c4-abcde_2024_03_07T04_39_12_123456", ("worker-7f9c4-abcde", STARTED)),
        # River's own test vector: "example.com" becomes "example_com".
        ("example_com_2024_03_07T04_39_12_123456", ("example.com", STARTED)),
        ("a" * 60 + "_2024_03_07T04_39_12_123456", ("a" * 60, STARTED)),
        # Not River's default format: no pod can be attributed.
        ("my-custom-client", None),
        ("worker-1_2024_03_07T04_39_12", None),
        ("Laptop.Local_2024_03_07T04_39_12_123456", None),
    ],
)
def test_default_pattern_reads_pod_and_start_from_rivers_default_id(
    client_id: str, expected: tuple[str, datetime] | None
) -> None:
    assert client_id_pod_and_start(DEFAULT_CLIENT_ID_PATTERN, client_id) == expected


def test_custom_pattern_without_start_group_gives_no_start_time() -> None:
    pattern = re.compile(r"^lifeguard-(?P<pod>[a-z0-9.-]+)$")

    assert client_id_pod_and_start(pattern, "lifeguard-worker-0") == ("worker-0", None)


def test_impossible_start_time_is_not_a_start_time() -> None:
    found = client_id_pod_and_start(DEFAULT_CLIENT_ID_PATTERN, "w_2024_13_07T04_39_12_123456")

    assert found == ("w", None)


@pytest.mark.parametrize(
    "pod_name",
    [
        "worker-0",
        "reports.batch-0",
        "a" * 59,
        "a" * 60,
        "a" * 61,
        # A Deployment pod with the longest name: River keeps the first 60 characters.
        "very-long-deployment-name-for-nightly-report-workers-7f9c4d8b9-x2x9q"[:63],
    ],
)
def test_a_pod_is_found_again_from_the_client_id_it_wrote(pod_name: str) -> None:
    client_id = river_default_client_id(pod_name)
    found = client_id_pod_and_start(DEFAULT_CLIENT_ID_PATTERN, client_id)

    assert found is not None
    prefix, started = found
    assert started == STARTED
    assert client_prefix(pod_name) == prefix
    assert pod_name.startswith(prefix)


def test_kubelet_trims_a_long_hostname_before_river_cuts_it() -> None:
    pod_name = "x" * 62 + "-tail"

    assert river_host_of_pod(pod_name) == "x" * 60


def test_client_prefix_is_what_river_keeps_of_a_pod_name() -> None:
    assert client_prefix("report-worker-7f") == "report-worker-7f"
    assert client_prefix("a.b.c") == "a.b.c"
    assert client_prefix("x" * 70) == "x" * 60


@pytest.mark.parametrize(
    "text",
    [
        "2024_03_07T04_39_12_123456",
        "1999_12_31T23_59_59_999999",
        "2024_02_29T00_00_00_000000",
    ],
)
def test_start_parsing_agrees_with_strptime(text: str) -> None:
    expected = datetime.strptime(text, "%Y_%m_%dT%H_%M_%S_%f").replace(tzinfo=UTC)

    assert parse_started(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024_13_07T04_39_12_123456",  # month 13
        "2023_02_29T00_00_00_000000",  # not a leap year
        "2024_03_07 04_39_12_123456",
        "2024-03-07T04_39_12_123456",
        "2024_03_07T04_39_12_12345",
        "2024_03_07T04_39_12_1234567",
        "2024_03_07T04_39_12_+12345",
        "\uff12024_03_07T04_39_12_123456",  # a fullwidth digit
        "",
    ],
)
def test_a_start_not_in_rivers_format_is_none(text: str) -> None:
    assert parse_started(text) is None
