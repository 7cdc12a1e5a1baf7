"""One fenced retry through the operator's batch write, for tests that retry a single job."""

from __future__ import annotations

from lifeguard.river import Applied, HeartbeatLocation, RetryRequest, RiverDatabase, retry_many


async def retry_one(
    db: RiverDatabase,
    request: RetryRequest,
    *,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> Applied | None:
    """The row the retry changed, or None when the fence held (the attempt had moved on)."""
    applied = await retry_many(db, [request], schema=schema, resume_from=resume_from)
    return applied[0] if applied else None
