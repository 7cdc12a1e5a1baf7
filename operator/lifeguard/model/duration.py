"""Kubernetes-style duration strings ("90s", "10m", "1h30m"), as Go's time.ParseDuration reads them.

The same strings are checked by CEL's duration() in the apiserver, so the accepted grammar is
the intersection: one or more <number><unit> with units h, m, s, ms.
"""

import re

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> float:
    """Seconds in a duration string; ValueError naming the text when it is not one."""
    if not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration like 90s, 10m or 1h30m")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """A short human form ("1h2m3s", "45s", "250ms") for messages and tables."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"
