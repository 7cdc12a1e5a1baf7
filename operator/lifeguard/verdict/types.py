"""The outcome of judging one running job."""

from dataclasses import dataclass

from lifeguard.model.enums import Action, Cause


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a job is (or is not) moving: a cause of the verdict table, a CamelCase reason and a
    sentence for humans naming the pod, the node and the ages that led to it."""

    cause: Cause
    reason: str
    message: str
    # Seconds since the evidence for the cause appeared (the container died, the beat went
    # stale, ...), when known: the time-to-rescue metric starts there.
    evidence_age: float | None = None
    # Facts that did not decide the verdict but belong to the story, already in the message:
    # "sidecar proxy restarted 2 times, last exited with code 1" (listed apart for explain).
    notes: tuple[str, ...] = ()
    # Set when the job's pod died because Lifeguard restarted it (RestartPod): the cause is
    # the one Lifeguard acted on, and the action is done; what follows is the retry.
    own_action: Action | None = None

    @property
    def acts(self) -> bool:
        """Whether the cause may lead to an action (Healthy and Starting never do)."""
        return self.cause not in (Cause.HEALTHY, Cause.STARTING)
