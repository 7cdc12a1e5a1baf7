"""A background task that fails is logged and started again; one that returns is done."""

import asyncio
import itertools
import logging

import pytest

from lifeguard.supervisor.background import keep_running


async def test_a_failing_task_is_restarted_with_a_growing_backoff_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[float] = []
    loop = asyncio.get_running_loop()

    async def flaky() -> None:
        runs.append(loop.time())
        if len(runs) < 4:
            raise ConnectionError("apiserver restarting")

    caplog.set_level(logging.INFO, logger="lifeguard.supervisor.background")
    await asyncio.wait_for(
        keep_running("the follower", flaky, first_backoff=0.01, max_backoff=0.04), timeout=5
    )
    assert len(runs) == 4
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02 and gaps[2] >= 0.04
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 3 and failures[0].exc_info is not None
    assert "the follower failed" in failures[0].getMessage()


async def test_cancelling_the_supervised_task_stops_it() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(keep_running("forever", forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
