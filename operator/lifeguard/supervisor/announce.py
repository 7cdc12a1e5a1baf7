"""Telling people what a scan decided: recent actions, Events, metrics and log lines.

Each decision is announced once per job attempt and action: a DryRun decision (or an action that
keeps failing) is taken again every scan, and repeating it would flood Events and inflate totals.
"""

import logging
from collections.abc import Sequence
from datetime import datetime

from lifeguard import plan as planning
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient, ObjectRef
from lifeguard.metrics import Metrics
from lifeguard.model.enums import Action
from lifeguard.model.status import RecentAction
from lifeguard.supervisor.act import Outcome, Result
from lifeguard.supervisor.policy import PolicyRef
from lifeguard.supervisor.report import StatusBook

log = logging.getLogger(__name__)

MAX_EVENTS_PER_SCAN = 20

_VERBS = {
    Action.RETRY: ("JobRetried", "retried"),
    Action.CANCEL: ("JobCancelled", "asked River to cancel"),
    Action.DISCARD: ("JobDiscarded", "discarded"),
    Action.RESTART_POD: ("PodRestarted", "restarted the pod of"),
}

Announced = tuple[int, datetime, Action]


class Announcer:
    def __init__(
        self, ref: PolicyRef, *, kube: KubeClient, metrics: Metrics, inventory: Inventory
    ) -> None:
        self.ref = ref
        self._kube = kube
        self._metrics = metrics
        self._inventory = inventory
        self._announced: set[Announced] = set()

    async def decisions(
        self,
        plan: planning.Plan,
        outcomes: Sequence[Outcome],
        book: StatusBook,
        now: datetime,
        running: set[int],
    ) -> None:
        policy = str(self.ref)
        by_job = {o.decision.job_id: o for o in outcomes}
        events = 0
        for action in plan.actions:
            outcome = by_job.get(action.job_id)
            if action.dry_run:
                result, applied = "dry_run", False
            else:
                result = outcome.result.value if outcome else Result.FAILED.value
                applied = outcome is not None and outcome.result is Result.APPLIED
            key = (action.job_id, action.attempted_at, action.action)
            repeated = not applied and key in self._announced
            # Every write attempt counts; a dry-run decision only the first time it is made.
            if not (repeated and action.dry_run):
                self._metrics.actions.labels(
                    policy, action.action.value, action.cause.value, result
                ).inc()
            if outcome is not None and outcome.result is Result.FAILED:
                log.warning(
                    "policy %s job %s: %s failed: %s",
                    self.ref,
                    action.job_id,
                    action.action,
                    outcome.detail,
                    extra={"policy": policy, "job_id": action.job_id, "result": result},
                )
            if repeated:
                continue
            self._announced.add(key)
            if applied:
                self._metrics.rescue_seconds.labels(action.cause.value).observe(action.evidence_age)
            book.record(
                RecentAction(
                    time=now,
                    job_id=action.job_id,
                    kind=action.kind,
                    pod=action.pod.name if action.pod else None,
                    cause=action.cause,
                    reason=action.reason,
                    action=action.action,
                    applied=applied,
                )
            )
            log.info(
                "policy %s job %s (%s): %s/%s -> %s: %s",
                self.ref,
                action.job_id,
                action.kind,
                action.cause,
                action.reason,
                action.action,
                result,
                extra={
                    "policy": policy,
                    "job_id": action.job_id,
                    "cause": str(action.cause),
                    "action": str(action.action),
                    "result": result,
                },
            )
            if events < MAX_EVENTS_PER_SCAN and (applied or action.dry_run):
                events += 1
                await self._action_event(action)
        for deferred in plan.deferred:
            self._metrics.actions.labels(
                policy, deferred.action.value, deferred.cause.value, "deferred"
            ).inc()
        for event in plan.events:
            await self.event("Warning" if event.warning else "Normal", event.reason, event.message)
        # Forget what concerns jobs no longer running, so memory stays bounded.
        self._announced = {a for a in self._announced if a[0] in running}

    async def _action_event(self, action: planning.PlannedAction) -> None:
        reason, verb = _VERBS.get(action.action, ("JobActedOn", "acted on"))
        pod_name = action.pod.name if action.pod else None
        where = f" (pod {pod_name})" if pod_name else ""
        text = f"{action.cause}/{action.reason}: {action.message}"
        if action.note:
            text += f" ({action.note})"
        if action.dry_run:
            await self.event(
                "Normal",
                f"DryRun{reason}",
                f"DryRun: would have {verb} job {action.job_id}{where}. {text}",
            )
            return
        message = f"Lifeguard {verb} job {action.job_id} ({action.kind}){where}. {text}"
        await self.event("Normal", reason, message)
        if action.action is Action.RESTART_POD and pod_name:
            pod = self._inventory.pod(self.ref.namespace, pod_name)
            await self.post(
                ObjectRef("v1", "Pod", self.ref.namespace, pod_name, pod.uid if pod else ""),
                "Warning",
                "PodRestarted",
                f"Evicted by River Lifeguard (JobPolicy {self.ref.name}): job {action.job_id}"
                f" is {action.cause}/{action.reason}.",
            )

    async def event(self, type_: str, reason: str, message: str) -> None:
        await self.post(self.ref.object_ref(), type_, reason, message)

    async def post(self, about: ObjectRef, type_: str, reason: str, message: str) -> None:
        try:
            await self._kube.post_event(about, type_, reason, message)
        except ClusterError as exc:
            log.warning("policy %s: %s", self.ref, exc)
