"""At most N actions in any sliding 60-second window of the injected clock."""

from datetime import datetime, timedelta

WINDOW = timedelta(seconds=60)


def in_window(times: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
    """The times still inside the window ending now (a clock going back keeps them)."""
    return tuple(t for t in times if now - t < WINDOW)


def budget(times: tuple[datetime, ...], now: datetime, per_minute: int) -> int:
    return max(0, per_minute - len(in_window(times, now)))
