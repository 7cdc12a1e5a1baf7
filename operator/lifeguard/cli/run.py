"""`lifeguard run`: the operator, kopf's runner with the project's settings."""

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import logging
import sys
import threading
from typing import Any

import kopf

from lifeguard.cluster.election import ElectionTiming, TimingError
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import KubeClient, NoCredentials, current_namespace
from lifeguard.cluster.leader import LeaderElector
from lifeguard.cluster.startup import StartupRefused, reach_apiserver
from lifeguard.handlers import WatchOptions, build_registry
from lifeguard.metrics import Metrics
from lifeguard.model.duration import parse_duration
from lifeguard.supervisor.fleet import Fleet
from lifeguard.supervisor.leadership import default_identity, default_namespace, elector_for
from lifeguard.supervisor.pools import DEFAULT_MAX_CONNECTIONS

log = logging.getLogger("lifeguard")

M_ARENA_MAX = -8  # glibc's mallopt parameter number
MALLOC_TRIM_SECONDS = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the operator")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--pod-selector", default="", help="server-side label selector for watched pods"
    )
    parser.add_argument(
        "--no-nodes",
        action="store_true",
        help="do not read nodes (node-loss detection from heartbeats alone)",
    )
    parser.add_argument(
        "--max-database-connections",
        type=_positive,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="the most connections to all River databases together, shared by the policies"
        f" (default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument("--metrics-port", type=int, default=9090)
    parser.add_argument("--health-port", type=int, default=8080, help="serves GET /healthz")
    parser.add_argument("--log-format", choices=("json", "text"), default="text")
    parser.add_argument("--log-level", default="info")
    election = parser.add_argument_group(
        "leader election", "replicas elect one leader on a Lease; only the leader acts"
    )
    election.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="elect a leader on a coordination.k8s.io Lease (default: on); --no-leader-elect"
        " acts at once, and two such operators would both act",
    )
    election.add_argument(
        "--leader-election-namespace",
        default="",
        metavar="NS",
        help="the Lease's namespace (default: the operator's own: POD_NAMESPACE, the"
        " ServiceAccount's, else the kubeconfig's)",
    )
    election.add_argument(
        "--leader-election-name",
        default="river-lifeguard",
        metavar="NAME",
        help="the Lease's name; the chart uses the release's full name",
    )
    election.add_argument(
        "--leader-election-identity",
        default="",
        metavar="ID",
        help="this replica's name in the Lease (default: POD_NAME or the host name, plus a"
        " random suffix)",
    )
    for flag, default, meaning in (
        ("--lease-duration", "15s", "how long standbys wait, after the Lease last changed, to"
         " take it over"),
        ("--renew-deadline", "10s", "how long the leader keeps acting without a successful"
         " renewal (shorter than the lease duration)"),
        ("--retry-period", "2s", "how often the leader renews and standbys try"),
    ):  # fmt: skip
        election.add_argument(
            flag, type=_duration, default=parse_duration(default), metavar="DURATION",
            help=f"{meaning} (default {default})",
        )  # fmt: skip
    parser.set_defaults(handler=run)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the policy, job and cause fields when a record has them."""

    FIELDS = ("policy", "job_id", "cause", "action", "result")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf logs every handler call at INFO; keep its warnings.
    logging.getLogger("kopf").setLevel(max(logging.WARNING, root.level))
    # urllib3 warns of each of its own retries of a failed connection (three per call); the
    # operator says once what the failure means (cluster.startup, cluster.reachability).
    if root.level > logging.DEBUG:
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def _libc() -> ctypes.CDLL | None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        return ctypes.CDLL(libc_name)
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives every thread that allocates its own malloc arena (up to 8 per core); the
    API client's worker threads would each keep one, for megabytes of resident memory the
    operator never needs. Same as MALLOC_ARENA_MAX=2; a no-op without glibc."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, arenas)


def trim_malloc_periodically(interval: float = MALLOC_TRIM_SECONDS) -> None:
    """glibc keeps the heap memory a burst of watch events freed (thousands of decoded pod
    bodies) for reuse and returns only the top of the heap to the system; malloc_trim(0)
    gives back every free page. Measured with 10k pods: ~4 MB less resident memory. A daemon
    thread, so it needs no stopping; ctypes releases the GIL during the call. A no-op without
    glibc (malloc_trim is glibc's)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return

    def loop() -> None:
        pause = threading.Event()
        while not pause.wait(interval):
            trim(0)

    threading.Thread(target=loop, name="malloc-trim", daemon=True).start()


def _elector(args: argparse.Namespace, kube: KubeClient, fleet: Fleet) -> LeaderElector | None:
    if not args.leader_elect:
        log.warning("leader election off: this replica acts alone; never run two of it")
        return None
    timing = ElectionTiming(args.lease_duration, args.renew_deadline, args.retry_period).check()
    return elector_for(
        fleet,
        kube.api_client,
        namespace=args.leader_election_namespace or default_namespace(current_namespace()),
        name=args.leader_election_name,
        identity=args.leader_election_identity or default_identity(),
        timing=timing,
    )


def run(args: argparse.Namespace) -> int:
    if args.leader_elect:
        try:
            ElectionTiming(args.lease_duration, args.renew_deadline, args.retry_period).check()
        except TimingError as exc:
            print(f"lifeguard run: {exc}", file=sys.stderr)
            return 2
    limit_malloc_arenas()
    trim_malloc_periodically()
    configure_logging(args.log_format, args.log_level)
    try:
        kube = KubeClient()
    except NoCredentials as exc:
        log.error("%s", exc)
        return 1
    try:
        nodes = asyncio.run(
            reach_apiserver(kube, read_nodes=not args.no_nodes, health_port=args.health_port)
        )
    except StartupRefused as exc:
        log.error("%s", exc)
        return 1
    if not args.no_nodes and not nodes:
        log.warning("may not list nodes: node loss is detected from heartbeats alone")
    inventory = Inventory()
    inventory.nodes_observed = nodes
    metrics = Metrics()
    kube.reachability.on_change = metrics.apiserver_changed
    metrics.serve(args.metrics_port)
    fleet = Fleet(
        kube=kube,
        inventory=inventory,
        metrics=metrics,
        max_connections=args.max_database_connections,
        watched_namespaces=None if args.all_namespaces or not args.namespace else args.namespace,
    )
    elector = _elector(args, kube, fleet)
    registry = build_registry(
        fleet,
        WatchOptions(
            pod_selector=args.pod_selector,
            nodes=nodes,
            namespaces=None if args.all_namespaces or not args.namespace else tuple(args.namespace),
        ),
        elector,
    )
    scope: dict[str, Any] = (
        {"clusterwide": True} if args.all_namespaces or not args.namespace else {}
    )
    if args.namespace:
        scope = {"namespaces": args.namespace}
    log.info(
        "starting: %s, pods %s, nodes %s, at most %d database connections, metrics :%d,"
        " health :%d, %s",
        "all namespaces" if "clusterwide" in scope else ", ".join(args.namespace),
        args.pod_selector or "(all)",
        "watched" if nodes else "not watched",
        args.max_database_connections,
        args.metrics_port,
        args.health_port,
        (
            f"leader election on {elector.lock.describe()} as {elector.identity}"
            if elector
            else "no leader election"
        ),
    )
    kopf.run(
        registry=registry,
        standalone=True,
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz",
        **scope,
    )
    return 0
