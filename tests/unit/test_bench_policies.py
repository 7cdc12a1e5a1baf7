"""The many-policies bench's arithmetic: the scan-cycle p99 from the operator's histograms."""

from __future__ import annotations

import pytest
from bench.policies import cycle_p99, scan_histograms

INF = float("inf")

METRICS = """# TYPE lifeguard_scan_duration_seconds histogram
lifeguard_scan_duration_seconds_bucket{le="0.1",policy="a/x"} 90.0
lifeguard_scan_duration_seconds_bucket{le="1.0",policy="a/x"} 100.0
lifeguard_scan_duration_seconds_bucket{le="+Inf",policy="a/x"} 100.0
lifeguard_scan_duration_seconds_count{policy="a/x"} 100.0
lifeguard_scan_duration_seconds_sum{policy="a/x"} 12.0
"""


def test_histograms_are_read_per_policy() -> None:
    assert scan_histograms(METRICS) == {"a/x": {0.1: 90.0, 1.0: 100.0, INF: 100.0}}


def test_p99_interpolates_within_the_bucket_over_the_window_only() -> None:
    before = {"a/x": {0.1: 40.0, 1.0: 40.0, INF: 40.0}}
    after = {"a/x": {0.1: 90.0, 1.0: 100.0, INF: 100.0}, "b/y": {0.1: 40.0, 1.0: 40.0, INF: 40.0}}

    cycles, p99 = cycle_p99(before, after, {"a/x", "b/y"})

    # 100 cycles in the window: 90 under 0.1 s, 10 between 0.1 and 1 s; rank 99 is 9/10 in.
    assert cycles == 100
    assert p99 == pytest.approx(0.1 + 0.9 * 0.9)


def test_no_p99_unless_every_policy_completed_a_cycle() -> None:
    after = {"a/x": {0.1: 5.0, INF: 5.0}}

    assert cycle_p99({}, after, {"a/x", "b/y"}) == (5, None)
