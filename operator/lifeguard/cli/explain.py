"""`lifeguard explain JOBPOLICY`: the policy's running jobs and what Lifeguard makes of them.

Read-only. It gathers with one listing of pods and nodes instead of the operator's watch cache,
then runs the very code the operator runs (gather, decide, plan), so what it prints is what the
operator would do now.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifeguard import plan as planning
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient, current_namespace
from lifeguard.model.duration import format_duration
from lifeguard.model.observation import Observation
from lifeguard.river.database import RiverDatabase
from lifeguard.river.errors import DatabaseError
from lifeguard.river.scan import scan as scan_jobs
from lifeguard.supervisor.gather import Gatherer, scan_query
from lifeguard.supervisor.policy import SpecError, parse_spec
from lifeguard.verdict import Verdict, decide


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show a policy's running jobs, their verdicts and the next action",
        description=(
            "Reads the JobPolicy, its database and its pods, and shows each running job with"
            " its verdict and the action Lifeguard would take next. Changes nothing."
        ),
    )
    parser.add_argument("policy", metavar="JOBPOLICY")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument(
        "--database-url",
        default=None,
        help="connect with this URL instead of the policy's Secret",
    )
    parser.set_defaults(handler=explain)


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
        }


def rows(judged: Sequence[tuple[Observation, Verdict]], plan: planning.Plan) -> list[Row]:
    planned = {a.job_id: a for a in plan.actions}
    deferred = {a.job_id: a for a in plan.deferred}
    held = {h.job_id: h for h in plan.held}
    result = []
    for obs, verdict in judged:
        job = obs.job
        action = planned.get(job.id)
        if action is not None:
            next_action = str(action.action)
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
            )
        )
    return result


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def table(found: Sequence[Row]) -> str:
    header = (
        "JOB",
        "KIND",
        "ATTEMPT",
        "POD",
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
            r.node or "-",
            _age(r.running_for),
            _age(r.beat_age),
            _age(r.progress_age),
            f"{r.cause}/{r.reason}",
            r.next_action,
        )
        for r in found
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *lines]
    )


async def gather_and_decide(
    kube: KubeClient, namespace: str, name: str, database_url: str | None
) -> list[Row]:
    policy = await kube.get_policy(namespace, name)
    spec = parse_spec(policy.get("spec") or {})
    ref = spec.database.secret_ref
    dsn = database_url or await kube.read_secret_value(namespace, ref.name, ref.key)
    inventory = Inventory()
    pods = await kube.list_pods(namespace, spec.workers.pod_selector.to_query())
    inventory.load(pods, await kube.list_nodes())
    async with RiverDatabase(dsn) as db:
        scanned = await scan_jobs(db, scan_query(spec))
    observations = Gatherer(namespace, spec, inventory).observe(scanned.jobs, scanned.now)
    judged = [(obs, decide(obs)) for obs in observations]
    plan = planning.plan(judged, spec, planning.SafetyState(), scanned.now)
    return rows(judged, plan)


def explain(args: argparse.Namespace) -> int:
    namespace = args.namespace or os.environ.get("LIFEGUARD_NAMESPACE") or current_namespace()
    try:
        found = asyncio.run(
            gather_and_decide(KubeClient(), namespace, args.policy, args.database_url)
        )
    except (ClusterError, DatabaseError, SpecError) as exc:
        print(f"lifeguard explain: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps([row.json() for row in found], indent=2))
    elif found:
        print(table(found))
    else:
        print(f"No running jobs for JobPolicy {namespace}/{args.policy}.")
    return 0
