"""River client IDs → the pod that runs the client, and when the client started.

River's default client ID (river client.go, defaultClientIDWithHost) is the hostname with dots
replaced by underscores, cut to 60 characters, then "_" and the start time formatted as
2006_01_02T15_04_05_000000 (UTC, microseconds). In a pod the hostname is the pod name, cut by
the kubelet to 63 characters with trailing "-" and "." trimmed. Pod names never contain "_", so
every "_" in the host part was a ".".
"""

import re
from datetime import UTC, datetime

RIVER_HOST_MAX_LENGTH = 60
KUBELET_HOSTNAME_MAX_LENGTH = 63
STARTED_FORMAT = "%Y_%m_%dT%H_%M_%S_%f"

DEFAULT_CLIENT_ID_PATTERN = (
    r"^(?P<pod>[a-z0-9][a-z0-9_-]{0,59})"
    r"_(?P<started>[0-9]{4}_[0-9]{2}_[0-9]{2}T[0-9]{2}_[0-9]{2}_[0-9]{2}_[0-9]{6})$"
)
POD_GROUP = "pod"
STARTED_GROUP = "started"


def client_id_pod_and_start(
    pattern: str | re.Pattern[str], client_id: str
) -> tuple[str, datetime | None] | None:
    """(pod name prefix, client start) for a client ID; None when the ID does not match.

    The prefix is the whole pod name unless the name was longer than River keeps (60
    characters): the pods with that `client_prefix`. The start is read from an optional
    `started` group in River's default format; None when absent or not a valid time.
    """
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    found = compiled.search(client_id)
    if found is None or not found.group(POD_GROUP):
        return None
    prefix = found.group(POD_GROUP).replace("_", ".")
    return prefix, _started_at(found)


def client_id_pod(pattern: re.Pattern[str], client_id: str) -> str | None:
    """The pod name prefix of a client ID alone (no start time): what most lookups need."""
    found = pattern.search(client_id)
    if found is None or not found.group(POD_GROUP):
        return None
    return found.group(POD_GROUP).replace("_", ".")


def _started_at(found: re.Match[str]) -> datetime | None:
    if STARTED_GROUP not in found.re.groupindex or found.group(STARTED_GROUP) is None:
        return None
    return parse_started(found.group(STARTED_GROUP))


# STARTED_FORMAT's fields, ASCII digits only.
_STARTED = re.compile(r"(\d{4})_(\d{2})_(\d{2})T(\d{2})_(\d{2})_(\d{2})_(\d{6})", re.ASCII)


def parse_started(text: str) -> datetime | None:
    """A client start in STARTED_FORMAT, None when it is not one. Not strptime: it costs ten
    times as much, and a scan of 10k jobs from 10k pods parses 10k distinct client IDs."""
    found = _STARTED.fullmatch(text)
    if found is None:
        return None
    try:
        year, month, day, hour, minute, second, micro = (int(part) for part in found.groups())
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:  # month 13, February 30th, ...
        return None


def river_host_of_pod(pod_name: str) -> str:
    """The host part River writes into the default client ID of a process in this pod."""
    hostname = pod_name
    if len(hostname) > KUBELET_HOSTNAME_MAX_LENGTH:
        hostname = hostname[:KUBELET_HOSTNAME_MAX_LENGTH].rstrip("-.")
    return hostname.replace(".", "_")[:RIVER_HOST_MAX_LENGTH]


def client_prefix(pod_name: str) -> str:
    """The pod prefix that a River default client ID written in this pod maps back to.

    The inventory indexes pods by it. Exact for names up to 60 characters; longer names may
    share a prefix, and the correlation breaks such ties with the client's start time (a
    client cannot start before its pod's container).
    """
    return river_host_of_pod(pod_name).replace("_", ".")
