"""The beats each policy last saw, shared with the other policies of the operator.

A policy plans a pod restart from its own jobs only, but a worker's pod may run the queues of
several policies (a catch-all beside a tiered policy, one policy per queue). A pod that still
beats for any job has a live process, and its restart would end that job too: so every
supervisor publishes, after each cycle, its jobs whose beat was fresh by pod, and reads the
others' before it plans. Each entry is trusted for two of its policy's scan intervals (at
least 30 s), so a stopped or slow policy's old news does not hold restarts for ever.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from lifeguard.plan import BeatingJob, PodRef

# The least time a published entry is trusted, whatever the publishing policy's scan interval.
MIN_TRUST_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    expires: float
    beating: Mapping[PodRef, tuple[int, ...]]


class BeatBoard:
    """The last fresh beats of every policy's jobs, by pod, keyed by policy."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def publish(
        self,
        policy: str,
        name: str,
        beating: Mapping[PodRef, tuple[int, ...]],
        *,
        now: float,
        scan_interval: float,
    ) -> None:
        """`policy`'s jobs whose beat was fresh in the cycle that just ended (monotonic `now`);
        `name` is how other policies' messages call it."""
        expires = now + max(MIN_TRUST_SECONDS, 2 * scan_interval)
        self._entries[policy] = _Entry(name, expires, dict(beating))

    def forget(self, policy: str) -> None:
        self._entries.pop(policy, None)

    def elsewhere(self, policy: str, *, now: float) -> dict[PodRef, tuple[BeatingJob, ...]]:
        """The jobs every other policy saw beating, by pod, from entries still trusted."""
        found: dict[PodRef, tuple[BeatingJob, ...]] = {}
        for key, entry in self._entries.items():
            if key == policy or entry.expires < now:
                continue
            for pod, job_ids in entry.beating.items():
                found[pod] = found.get(pod, ()) + tuple(BeatingJob(j, entry.name) for j in job_ids)
        return found
