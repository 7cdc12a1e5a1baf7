"""The apiserver's reachability: one log line per outage and per recovery, fail fast meanwhile."""

import logging

import pytest

from lifeguard.cluster.reachability import Reachability


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_logged_once_and_its_recovery_once_with_its_length(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, changes = Clock(), list[bool]()
    reach = Reachability(clock, on_change=changes.append)
    caplog.set_level(logging.INFO, logger="lifeguard.cluster.reachability")
    reach.succeeded()
    for at in (10.0, 11.0, 20.0, 30.0):
        clock.now = at
        reach.failed("connection refused")
    clock.now = 52.0
    reach.succeeded()
    reach.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "unreachable (connection refused)" in lines[0]
    assert "again after 42s" in lines[1]
    assert changes == [False, True]
    assert reach.outage is not None and reach.outage.seconds == 42.0 and not reach.down


@pytest.mark.parametrize(
    ("steps", "allowed"),
    [
        # Up: every call goes.
        ([("call", 0.0), ("call", 0.1)], [True, True]),
        # Down since 10: nothing until the probe 5 s later, then one probe at a time.
        (
            [("fail", 10.0), ("call", 11.0), ("call", 15.0), ("call", 15.1)],
            [False, True, False],
        ),
        # The probe failed at 16: the next one waits its period again.
        (
            [("fail", 10.0), ("call", 15.0), ("fail", 16.0), ("call", 17.0), ("call", 20.1)],
            [True, False, True],
        ),
        # The probe succeeded: every call goes again.
        ([("fail", 10.0), ("call", 15.0), ("ok", 15.2), ("call", 15.3)], [True, True]),
    ],
)
def test_calls_fail_fast_while_down_except_one_probe_per_period(
    steps: list[tuple[str, float]], allowed: list[bool]
) -> None:
    clock = Clock()
    reach = Reachability(clock, probe_every=5.0)
    seen = []
    for step, at in steps:
        clock.now = at
        if step == "fail":
            reach.failed("timeout")
        elif step == "ok":
            reach.succeeded()
        else:
            seen.append(reach.may_call())
    assert seen == allowed
