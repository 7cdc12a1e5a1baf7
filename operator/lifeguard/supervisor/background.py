"""Background tasks that must outlive their own failures (the node-Lease follower).

A task that raises is logged with its traceback and started again after a backoff that doubles
up to a ceiling, and falls back to the first step once a run has lasted longer than the ceiling:
a follower that died at every apiserver restart would otherwise end silently, and every Lease
would look minutes old from then on. A task that returns has finished on purpose (for example,
RBAC forbids what it follows) and is not restarted.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


async def keep_running(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    first_backoff: float = FIRST_BACKOFF_SECONDS,
    max_backoff: float = MAX_BACKOFF_SECONDS,
) -> None:
    backoff = first_backoff
    while True:
        started = time.monotonic()
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            if time.monotonic() - started > max_backoff:
                backoff = first_backoff  # it ran well for a while: a new streak
            log.exception("%s failed; starting it again in %.0fs", name, backoff)
        else:
            log.info("%s finished", name)
            return
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff)
