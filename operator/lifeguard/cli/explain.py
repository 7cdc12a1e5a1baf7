"""`lifeguard explain JOBPOLICY`: the policy's running jobs and what Lifeguard makes of them.

Read-only. It gathers a Snapshot with the operator's own `gather` (one scan, the per-kind
statistics behind adaptive limits) from one listing of pods, nodes and node Leases instead of
the operator's watch cache, and runs the operator's own `reconcile` on it, from the status on
the object. What it prints is what the operator would decide now, with two limits a single
listing has: Lease ages count from this listing (so a kubelet gone silent shows only once its
node is NotReady), and pods deleted before the listing are unknown (the operator remembers
them for 15 minutes). Action Events are shown as they read when every write applies.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import yaml

from lifeguard.cli.explain_fleet import beats_of_the_others, fleet_source, namespace_policies
from lifeguard.cli.explain_leader import OPERATOR_LEASE_SELECTOR, Leader, leader_line, leaders
from lifeguard.cli.explain_report import (
    effects_text,
    not_judged_text,
    notes_text,
    report,
    rows,
    table,
)
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient, current_namespace
from lifeguard.cluster.reachability import Reachability
from lifeguard.model.conditions import READY
from lifeguard.model.policy import JobPolicySpec
from lifeguard.reconcile import (
    Effects,
    Outcome,
    ReconcileState,
    Result,
    configured,
    feed_outcomes,
    reconcile,
)
from lifeguard.river.database import RiverDatabase
from lifeguard.river.errors import DatabaseError
from lifeguard.supervisor.connection import ConnectionProblem, DatabaseSource
from lifeguard.supervisor.gather import KindStatistics, gather
from lifeguard.supervisor.policy import PolicyRef, SpecError, parse_spec
from lifeguard.supervisor.pools import database_identity


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show a policy's running jobs, their verdicts and the next action",
        description=(
            "Reads the JobPolicy, its database and its pods, and shows each running job with"
            " its verdict, the action Lifeguard would take next, and the writes and Events the"
            " operator would make. Changes nothing."
        ),
    )
    parser.add_argument("policy", metavar="JOBPOLICY")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    parser.add_argument(
        "--database-url",
        default=None,
        help="connect with this URL instead of the policy's Secret",
    )
    parser.set_defaults(handler=explain)


async def gather_and_reconcile(
    kube: KubeClient, namespace: str, name: str, database_url: str | None
) -> Effects:
    """The effects of one operator cycle on the policy, as of now."""
    policy = await kube.get_policy(namespace, name)
    metadata = policy.get("metadata") or {}
    ref = PolicyRef(namespace, name, str(metadata.get("uid", "")))
    spec = parse_spec(policy.get("spec") or {})
    inventory = Inventory()
    selector = spec.workers.pod_selector.to_query()
    # Every namespace's pods when allowed: a job whose pod lives elsewhere is not this policy's.
    everywhere = await kube.list_pods_everywhere(selector)
    pods = everywhere if everywhere is not None else await kube.list_pods(namespace, selector)
    inventory.load(pods, await kube.list_nodes(), await kube.list_jobs(namespace))
    try:
        policies = await namespace_policies(kube, namespace)
    except ClusterError:
        policies = [(policy, "")]  # may not list them: judge as if it were the only one
    try:
        leases = await kube.list_node_leases()
    except ClusterError:
        leases = None  # the operator goes on without them too
    if leases is not None:
        inventory.observe_leases(leases)
    # The policy's Secret read as the operator reads it (same reasons when it cannot be).
    source = DatabaseSource(kube, namespace)
    opened: list[RiverDatabase] = []

    async def connect(spec: JobPolicySpec) -> RiverDatabase:
        if database_url is None:
            return await source.database(spec)
        try:
            db = RiverDatabase(database_url)
        except DatabaseError as exc:
            raise ConnectionProblem("InvalidDatabaseURL", f"--database-url: {exc}") from None
        opened.append(db)
        await db.open()
        return db

    watched = None if everywhere is not None else (namespace,)
    fleet = fleet_source(
        policies,
        str(ref),
        lambda: (
            source.identity
            if database_url is None
            else database_identity(database_url, spec.database.schema_)
        ),
        watched,
    )
    try:
        elsewhere = await beats_of_the_others(kube, policies, str(ref), inventory, watched)
        snapshot, _ = await gather(
            ref,
            spec,
            inventory,
            connect,
            KindStatistics(),
            fleet_source=fleet,
            beating_elsewhere=elsewhere,
        )
    finally:
        await source.close()
        for db in opened:
            await db.close()
    state = configured(ReconcileState(), metadata.get("generation"), policy.get("status"))
    state, effects = reconcile(snapshot, state, spec)
    assumed = [Outcome(action, Result.APPLIED) for action in effects.actions]
    _, effects = feed_outcomes(snapshot, state, effects, assumed)
    return effects


async def operator_leaders(kube: KubeClient) -> list[Leader] | None:
    """The replicas that lead, from the operator Leases (None: not allowed to list them)."""
    try:
        found = await kube.list_leases(OPERATOR_LEASE_SELECTOR)
    except ClusterError:
        return None
    return None if found is None else leaders(found)


async def _explain(
    kube: KubeClient, namespace: str, name: str, database_url: str | None
) -> tuple[Effects, list[Leader] | None]:
    effects = await gather_and_reconcile(kube, namespace, name, database_url)
    return effects, await operator_leaders(kube)


def explain(args: argparse.Namespace) -> int:
    namespace = args.namespace or os.environ.get("LIFEGUARD_NAMESPACE") or current_namespace()
    try:
        # One answer per question: the outage log lines of the operator mean nothing here.
        kube = KubeClient(reachability=Reachability(time.monotonic, quiet=True))
        effects, found = asyncio.run(_explain(kube, namespace, args.policy, args.database_url))
    except (ClusterError, DatabaseError, SpecError) as exc:
        print(f"lifeguard explain: {exc}", file=sys.stderr)
        return 1
    if effects.plan is None:
        # The cycle never scanned: say why, as the policy's Ready condition would.
        print(f"lifeguard explain: {_not_scanning(effects)}", file=sys.stderr)
        return 1
    answer = {
        **report(effects),
        "operatorLeaders": None if found is None else [leader.json() for leader in found],
    }
    if args.output == "json":
        print(json.dumps(answer, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(answer, sort_keys=False), end="")
    else:
        print(leader_line(found))
        print(_text(effects, f"{namespace}/{args.policy}"))
    return 0


def _not_scanning(effects: Effects) -> str:
    conditions = (effects.status or {}).get("conditions", [])
    ready = next((c for c in conditions if c.get("type") == READY), None)
    return f"{ready['reason']}: {ready['message']}" if ready else "the policy was not scanned"


def _text(effects: Effects, policy: str) -> str:
    found = rows(effects.judged, effects.plan)
    text = table(found) if found else f"No running jobs for JobPolicy {policy}."
    parts = [text, notes_text(found), not_judged_text(effects), effects_text(effects)]
    return "\n\n".join(part for part in parts if part)
