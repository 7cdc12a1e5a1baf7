"""What `lifeguard explain` prints: one row per running job, then the cycle's effects.

Built from what `reconcile` returned, so the rows and effects are the operator's own decisions
on the same snapshot; rendered as a table, JSON or YAML.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifeguard.model.conditions import to_rfc3339
from lifeguard.model.duration import format_duration
from lifeguard.model.observation import Observation
from lifeguard.plan import Judged, Plan, PlannedAction
from lifeguard.reconcile import Effects
from lifeguard.verdict.evidence import worker_name


@dataclass(frozen=True, slots=True)
class Row:
    job_id: int
    kind: str
    queue: str
    attempt: str
    pod: str | None
    node: str | None
    running_for: float
    beat_age: float | None
    progress_age: float | None
    cause: str
    reason: str
    message: str
    next_action: str
    # The container whose exits decide (the policy's, else the pod's default), if known.
    container: str | None = None
    # Sidecar notes, a failed Job, and what restarting a Job's pod costs.
    notes: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "kind": self.kind,
            "queue": self.queue,
            "attempt": self.attempt,
            "pod": self.pod,
            "node": self.node,
            "runningForSeconds": round(self.running_for, 3),
            "beatAgeSeconds": None if self.beat_age is None else round(self.beat_age, 3),
            "progressAgeSeconds": (
                None if self.progress_age is None else round(self.progress_age, 3)
            ),
            "cause": self.cause,
            "reason": self.reason,
            "message": self.message,
            "nextAction": self.next_action,
            "workerContainer": self.container,
            "notes": list(self.notes),
        }


def job_notes(obs: Observation) -> tuple[str, ...]:
    """What restarting the pod of a batch/v1 Job costs: the Job controller counts an evicted
    pod as failed unless the Job's podFailurePolicy ignores DisruptionTarget."""
    job = obs.owner_job
    if job is None or obs.pod is None or job.ignores_disruptions:
        return ()
    limit = f" ({job.backoff_limit})" if job.backoff_limit is not None else ""
    return (
        f"pod {obs.pod.name} belongs to Job {job.name}: restarting it (RestartPod evicts it)"
        f" counts against the Job's backoffLimit{limit}; a podFailurePolicy rule with action"
        " Ignore on the DisruptionTarget condition prevents that",
    )


def rows(judged: Sequence[Judged], plan: Plan | None) -> list[Row]:
    planned = {a.job_id: a for a in plan.actions} if plan else {}
    deferred = {a.job_id: a for a in plan.deferred} if plan else {}
    held = {h.job_id: h for h in plan.held} if plan else {}
    result = []
    for obs, verdict in judged:
        job = obs.job
        action = planned.get(job.id)
        if action is not None:
            next_action = str(action.action) + (" (dry run)" if action.dry_run else "")
        elif job.id in deferred:
            next_action = f"{deferred[job.id].action} (deferred)"
        elif job.id in held:
            next_action = f"{held[job.id].action} (held: {held[job.id].why})"
        else:
            next_action = "-"
        result.append(
            Row(
                job_id=job.id,
                kind=job.kind,
                queue=job.queue,
                attempt=f"{job.attempt}/{job.max_attempts}",
                pod=obs.pod.name if obs.pod else obs.pod_name,
                node=obs.pod.node_name if obs.pod else None,
                running_for=job.running_for,
                beat_age=job.beat_age,
                progress_age=job.progress_age,
                cause=str(verdict.cause),
                reason=verdict.reason,
                message=verdict.message,
                next_action=next_action,
                container=worker_name(obs, obs.pod) if obs.pod else None,
                notes=(*verdict.notes, *job_notes(obs)),
            )
        )
    return result


def action_json(action: PlannedAction) -> dict[str, Any]:
    """One write the operator would make, with its fence."""
    written: dict[str, Any] = {
        "jobId": action.job_id,
        "action": str(action.action),
        "cause": str(action.cause),
        "reason": action.reason,
        "attemptedAt": action.attempted_at.isoformat(),
        "dryRun": action.dry_run,
    }
    if action.pod is not None:
        written["pod"] = action.pod.name
        written["podUid"] = action.pod.uid
    if action.note:
        written["note"] = action.note
    return written


def report(effects: Effects) -> dict[str, Any]:
    """The whole answer, for -o json / -o yaml."""
    plan = effects.plan
    status = effects.status or {}
    return {
        "jobs": [row.json() for row in rows(effects.judged, plan)],
        "actions": [action_json(a) for a in (plan.actions if plan else [])],
        "deferred": [action_json(a) for a in (plan.deferred if plan else [])],
        "held": [
            {"jobId": h.job_id, "action": str(h.action), "why": h.why}
            for h in (plan.held if plan else [])
        ],
        "events": [
            {
                "type": e.type,
                "reason": e.reason,
                "message": e.message,
                "object": f"Pod/{e.pod.name}" if e.pod else "JobPolicy",
            }
            for e in effects.events
        ],
        "notJudged": [
            {
                "jobId": job.id,
                "kind": job.kind,
                "queue": job.queue,
                "why": str(ownership.claim),
                "judgedBy": ownership.owner,
                "message": ownership.message,
            }
            for job, ownership in effects.not_judged
        ],
        "conditions": [
            {k: c[k] for k in ("type", "status", "reason", "message") if k in c}
            for c in status.get("conditions", [])
        ],
    }


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _columns(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *lines]
    )


def table(found: Sequence[Row]) -> str:
    header = (
        "JOB",
        "KIND",
        "ATTEMPT",
        "POD",
        "CONTAINER",
        "NODE",
        "RUNNING",
        "BEAT",
        "PROGRESS",
        "VERDICT",
        "NEXT",
    )
    lines = [
        (
            str(r.job_id),
            r.kind,
            r.attempt,
            r.pod or "-",
            r.container or "-",
            r.node or "-",
            _age(r.running_for),
            _age(r.beat_age),
            _age(r.progress_age),
            f"{r.cause}/{r.reason}",
            r.next_action,
        )
        for r in found
    ]
    return _columns(header, lines)


# Jobs listed one by one under "not judged"; the rest are counted.
NOT_JUDGED_SHOWN = 20


def not_judged_text(effects: Effects) -> str:
    """The running jobs the policy selects but does not judge, and who does."""
    skipped = effects.not_judged
    if not skipped:
        return ""
    lines = [
        (str(job.id), job.kind, str(ownership.claim), ownership.owner or "-", ownership.message)
        for job, ownership in skipped[:NOT_JUDGED_SHOWN]
    ]
    more = len(skipped) - NOT_JUDGED_SHOWN
    tail = f"\n... and {more} more (-o json lists them all)" if more > 0 else ""
    return (
        f"Not judged by this policy ({len(skipped)} running jobs it selects):\n"
        + _columns(("JOB", "KIND", "WHY", "JUDGED BY", "MESSAGE"), lines)
        + tail
    )


def notes_text(found: Sequence[Row]) -> str:
    """What the verdicts did not decide on: sidecars, failed Jobs, a Job's backoffLimit."""
    lines = [f"job {r.job_id}: {note}" for r in found for note in r.notes]
    return "Notes:\n" + "\n".join(lines) if lines else ""


def effects_text(effects: Effects) -> str:
    """The writes and Events of this cycle, as the operator would make them."""
    plan = effects.plan
    parts = []
    actions = plan.actions if plan else []
    if actions:
        lines = [
            (
                str(a.job_id),
                str(a.action) + (" (dry run)" if a.dry_run else ""),
                f"pod {a.pod.name} uid {a.pod.uid}" if a.pod else "-",
                f"attempt of {to_rfc3339(a.attempted_at)}",
            )
            for a in actions
        ]
        parts.append("Writes (each fenced):\n" + _columns(("JOB", "ACTION", "POD", "FENCE"), lines))
    if effects.events:
        lines = [
            (e.type, e.reason, f"Pod/{e.pod.name}" if e.pod else "JobPolicy", e.message)
            for e in effects.events
        ]
        parts.append("Events:\n" + _columns(("TYPE", "REASON", "OBJECT", "MESSAGE"), lines))
    return "\n\n".join(parts)
