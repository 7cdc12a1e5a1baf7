"""Lifeguard's own actions on a job's attempt, as recorded in the job's River metadata.

When Lifeguard decides to restart a job's pod, it first writes (fenced on the attempt) what it
is about to do and why under `lifeguard:action`. The pod's death that follows is then known
as Lifeguard's doing, even after an operator restart, and the job's verdict, Event and River
error keep the original cause ("Unresponsive/BeatStale ...; Lifeguard restarted pod mailer")
instead of blaming an eviction. Nothing is written on the user's pods.

A record speaks only for an eviction the apiserver accepted: when the eviction is refused (a
PodDisruptionBudget), finds the pod gone or replaced, or fails, the record is withdrawn, so a
later death of that pod (its node lost, a user's deletion) keeps its own cause.
"""

import json
from dataclasses import dataclass

from lifeguard.model.client_id import client_prefix
from lifeguard.model.enums import Action, Cause

OWN_ACTION_KEY = "lifeguard:action"


@dataclass(frozen=True, slots=True)
class OwnAction:
    """What Lifeguard did to this attempt, and the verdict it did it for."""

    action: Action
    cause: Cause
    reason: str
    message: str
    # The pod it restarted (RestartPod), and that pod's uid: a successor of the same name
    # (a StatefulSet's) is not the pod Lifeguard restarted.
    pod: str | None = None
    pod_uid: str = ""
    # The pod's namespace: the job's home once no pod of that name is known any more (the
    # operator restarted after the eviction), so the policy that acted retries the job.
    namespace: str = ""

    def to_json(self) -> str:
        """The record's JSON (the database adds the time it was written, "at")."""
        return json.dumps(
            {
                "action": self.action.value,
                "cause": self.cause.value,
                "reason": self.reason,
                "message": self.message,
                "pod": self.pod,
                "pod_uid": self.pod_uid,
                "namespace": self.namespace,
            }
        )

    def restarted_namespace(self, prefix: str) -> str | None:
        """The namespace of the pod Lifeguard restarted, when that pod has the client prefix
        `prefix` (records written before namespaces were kept have none)."""
        if self.action is not Action.RESTART_POD or not self.namespace or self.pod is None:
            return None
        return self.namespace if client_prefix(self.pod) == prefix else None

    def describe(self) -> str:
        """ "Lifeguard restarted pod mailer" / "Lifeguard cancelled the job"."""
        if self.action is Action.RESTART_POD:
            return (
                f"Lifeguard restarted pod {self.pod}" if self.pod else "Lifeguard restarted its pod"
            )
        if self.action is Action.CANCEL:
            return "Lifeguard cancelled the job"
        return f"Lifeguard acted ({self.action.value})"


def parse_own_action(text: str | None) -> OwnAction | None:
    """The record read back from metadata; None when absent or not one of ours (a user may
    have edited the metadata: never fail a scan on it)."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        pod = raw.get("pod")
        return OwnAction(
            action=Action(raw["action"]),
            cause=Cause(raw["cause"]),
            reason=str(raw["reason"]),
            message=str(raw["message"]),
            pod=str(pod) if pod is not None else None,
            pod_uid=str(raw.get("pod_uid") or ""),
            namespace=str(raw.get("namespace") or ""),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
