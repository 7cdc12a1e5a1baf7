"""The facts every verdict rule reads, derived once per observation: the `Case`.

Each rule module (pod_rules, node_rules, beat_rules, limit_rules) takes a `Case`, not the raw
`Observation`, so the pod a client could not have run on is dropped, the beat is read, and the
process's death is found in one place, the same for every rule.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lifeguard.model.observation import Observation, PodFacts
from lifeguard.verdict.evidence import (
    ProcessDeath,
    could_host_client,
    is_terminating,
    pod_is_dead,
    process_death,
)
from lifeguard.verdict.heartbeat import Beat, read_beat
from lifeguard.verdict.text import where
from lifeguard.verdict.types import Verdict


@dataclass(frozen=True, slots=True)
class Case:
    """One observation with the facts every rule reads, derived once."""

    obs: Observation
    beat: Beat
    pod: PodFacts | None
    death: ProcessDeath | None
    pod_dead: bool
    terminating: bool

    @property
    def where(self) -> str:
        return where(self.obs, self.pod)


def build_case(obs: Observation) -> Case:
    pod = obs.pod
    if pod is not None and not could_host_client(obs, pod):
        pod = None
    return Case(
        obs=obs,
        beat=read_beat(obs),
        pod=pod,
        death=process_death(obs, pod) if pod is not None else None,
        pod_dead=pod is not None and pod_is_dead(obs, pod),
        terminating=pod is not None and is_terminating(pod),
    )


Rule = Callable[[Case], Verdict | None]


def age_of(case: Case, then: datetime | None) -> float | None:
    """Seconds from `then` to the database's `now` of the observation; None when unknown."""
    return None if then is None else (case.obs.now - then).total_seconds()
