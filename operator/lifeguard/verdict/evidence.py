"""What the pod says about the process that took the job: alive, terminated, restarted.

Container times come from the node's clock, `attempted_at` from the database's. The client
start time (from River's default client ID) is written by the worker process on the same node
as the container times, so it is preferred for telling "before" from "after" when known.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from lifeguard.model.enums import Cause
from lifeguard.model.observation import ContainerFacts, Observation, PodFacts, TerminatedFacts

# The API reports container start times in whole seconds and the process starts a moment after
# its container; a container counts as restarted under a client only when it started clearly
# after that client.
# Container timestamps in the API are RFC 3339 with whole seconds.
API_TIME_PRECISION = timedelta(seconds=1)
CLIENT_START_TOLERANCE = timedelta(seconds=2)
# How far the nodes' clocks may run behind the database's: a container that ended more than
# this before the attempt began (attempted_at, the database's clock) cannot have ended it.
CLOCK_SKEW_TOLERANCE = timedelta(seconds=2)

SIGKILL = 9
# Signals a process raises against itself when it faults: the application crashed. Every
# other signal (SIGKILL, SIGTERM, SIGINT, SIGHUP, ...) was sent from outside the job.
FAULT_SIGNALS = {4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV"}
OTHER_SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 9: "SIGKILL", 15: "SIGTERM"}
# Container runtimes report death by signal N as exit code 128 + N.
SIGNAL_EXIT_BASE = 128
MAX_SIGNAL = 64

# Who disrupted a pod, from its DisruptionTarget condition (set before the deletion) ...
DISRUPTION_REASONS = {
    "EvictionByEvictionAPI": "Evicted",
    "TerminationByKubelet": "Evicted",
    "PreemptionByScheduler": "Preempted",
    "DeletionByTaintManager": "NodeLost",
    "DeletionByPodGC": "PodGC",
}
# ... or from status.reason, which the kubelet sets when it ends a pod itself.
STATUS_REASONS = {
    "Evicted": "Evicted",
    "Preempting": "Preempted",
    "NodeLost": "NodeLost",
    # Graceful node shutdown (kubelet nodeshutdown manager).
    "Terminated": "NodeShutdown",
    # The pod's own spec.activeDeadlineSeconds ran out (the kubelet killed it).
    "DeadlineExceeded": "DeadlineExceeded",
}
TERMINAL_PHASES = ("Failed", "Succeeded")


@dataclass(frozen=True, slots=True)
class ProcessDeath:
    """The container that ran the job's process stopped after the job was taken."""

    container: str
    # How it ended; None when only the restart itself is known (client older than container).
    terminated: TerminatedFacts | None
    # The container runs again (or waits to): the job's process is gone for good.
    restarted: bool
    # When it ended (or, when only the restart is known, when the new container started).
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Ending:
    """A termination put in the verdict table's terms."""

    cause: Cause
    reason: str
    # "was OOMKilled (exit 137)", "exited with code 1", "was killed by SIGTERM (exit 143)".
    how: str


def signal_of(terminated: TerminatedFacts) -> int | None:
    if terminated.signal:
        return terminated.signal
    if SIGNAL_EXIT_BASE < terminated.exit_code <= SIGNAL_EXIT_BASE + MAX_SIGNAL:
        return terminated.exit_code - SIGNAL_EXIT_BASE
    return None


def signal_name(number: int) -> str:
    return FAULT_SIGNALS.get(number) or OTHER_SIGNALS.get(number) or f"signal {number}"


def ending_of(terminated: TerminatedFacts | None) -> Ending:
    """OOMKilled → ResourceExhausted; a fault signal or a non-zero exit → ApplicationCrash;
    a signal from outside → InfrastructureDeath/Killed; exit 0 or unknown → the process is
    simply gone (InfrastructureDeath)."""
    if terminated is None:
        return Ending(Cause.INFRASTRUCTURE_DEATH, "ContainerRestarted", "restarted")
    code = terminated.exit_code
    if terminated.reason == "OOMKilled":
        return Ending(Cause.RESOURCE_EXHAUSTED, "OOMKilled", f"was OOMKilled (exit {code})")
    signal = signal_of(terminated)
    if signal is not None and signal in FAULT_SIGNALS:
        return Ending(
            Cause.APPLICATION_CRASH,
            "FatalSignal",
            f"crashed with {signal_name(signal)} (exit {code})",
        )
    if signal is not None:
        how = f"was killed by {signal_name(signal)} (exit {code})"
        return Ending(Cause.INFRASTRUCTURE_DEATH, "Killed", how)
    if code != 0:
        return Ending(Cause.APPLICATION_CRASH, "Error", f"exited with code {code}")
    # Exit 0 with the job unfinished: the process shut down under it (e.g. a stop signal
    # handled cleanly). Outside the job's logic either way.
    return Ending(Cause.INFRASTRUCTURE_DEATH, "ContainerExited", "exited with code 0")


def worker_name(obs: Observation, pod: PodFacts) -> str | None:
    """The policy's workers.container, else the pod's default container (None: unknown)."""
    return obs.worker_container or pod.default_container


def worker_containers(obs: Observation, pod: PodFacts) -> tuple[ContainerFacts, ...]:
    """The containers whose death is the worker's death, in name order (deterministic).

    The named (or default) container; when the pod's spec is unknown, every container but
    the native sidecars.
    """
    name = worker_name(obs, pod)
    if name is not None:
        chosen = tuple(c for c in pod.containers if c.name == name)
    else:
        chosen = tuple(c for c in pod.containers if not c.sidecar)
    return tuple(sorted(chosen, key=lambda c: c.name))


def sidecar_containers(obs: Observation, pod: PodFacts) -> tuple[ContainerFacts, ...]:
    """Every other container of the pod (regular and native sidecars), in name order."""
    workers = {c.name for c in worker_containers(obs, pod)}
    return tuple(sorted((c for c in pod.containers if c.name not in workers), key=lambda c: c.name))


def sidecar_notes(obs: Observation, pod: PodFacts) -> tuple[str, ...]:
    """What the sidecars went through: "sidecar proxy restarted 2 times, last exited with code 1".

    Never a verdict by itself (a proxy restarting does not end the worker's process), but worth
    knowing when the worker then struggles.
    """
    notes = []
    for container in sidecar_containers(obs, pod):
        last = container.last_terminated
        if container.terminated is not None and container.running_since is None:
            notes.append(f"sidecar {container.name} {ending_of(container.terminated).how}")
        elif container.restart_count > 0:
            times = "time" if container.restart_count == 1 else "times"
            how = f", last {ending_of(last).how}" if last is not None else ""
            notes.append(
                f"sidecar {container.name} restarted {container.restart_count} {times}{how}"
            )
    return tuple(notes)


def is_terminating(pod: PodFacts) -> bool:
    """Deletion requested, pod still in the API: its processes may still be shutting down."""
    return pod.deletion_timestamp is not None and not pod.gone


def any_running(containers: tuple[ContainerFacts, ...]) -> bool:
    return any(c.running_since is not None for c in containers)


def pod_is_dead(obs: Observation, pod: PodFacts) -> bool:
    """Gone, finished, or deleted with no container left running.

    A Terminating pod whose containers still run is alive: River stops gracefully on SIGTERM
    and may still finish (or hand back) its jobs within the grace period.
    """
    if pod.gone or pod.phase in TERMINAL_PHASES:
        return True
    return pod.deletion_timestamp is not None and not any_running(worker_containers(obs, pod))


def disruption_reason(pod: PodFacts) -> str | None:
    """Evicted, Preempted, NodeLost, PodGC or NodeShutdown when Kubernetes says who did it."""
    if pod.disruption_target in DISRUPTION_REASONS:
        return DISRUPTION_REASONS[pod.disruption_target]
    if pod.reason in STATUS_REASONS:
        return STATUS_REASONS[pod.reason]
    return None


def could_host_client(obs: Observation, pod: PodFacts) -> bool:
    """False for the tombstone of an earlier pod of the same name (StatefulSets reuse names):
    a client that started after that pod was deleted runs in its successor."""
    client, deleted = obs.client_started_at, pod.deletion_timestamp
    if not pod.gone or client is None or deleted is None:
        return True
    return client <= deleted + CLIENT_START_TOLERANCE


def _after_job_taken(obs: Observation, terminated: TerminatedFacts) -> bool:
    """Whether this termination can have ended the process that took the job.

    A container instance that finished after the client started hosted that client or an
    earlier one, so the client is dead. Without a client start, compare with attempted_at
    (a different clock: the database's).
    """
    finished = terminated.finished_at
    if finished is None:
        return True
    # The API keeps whole seconds: a process that died in the same second its client started
    # (a crash or OOM right after the job was taken) shows a finish before the start.
    finished += API_TIME_PRECISION
    # Never before the attempt began: the client that took the job outlived anything that
    # ended earlier (a process keeps its client for many jobs, so its start says little).
    if finished + CLOCK_SKEW_TOLERANCE <= obs.job.attempted_at:
        return False
    if obs.client_started_at is not None:
        return finished > obs.client_started_at
    return finished > obs.job.attempted_at


def _restarted_under_client(obs: Observation, container: ContainerFacts) -> bool:
    started, client = container.running_since, obs.client_started_at
    if started is None or client is None or started <= client + CLIENT_START_TOLERANCE:
        return False
    # A restart before the attempt began did not end it, whatever the client ID says.
    return started + CLOCK_SKEW_TOLERANCE > obs.job.attempted_at


def process_death(obs: Observation, pod: PodFacts) -> ProcessDeath | None:
    """The first worker container showing that the job's process ended, if any.

    Current terminations of a Terminating pod with containers still running are the graceful
    shutdown at work and do not count; restarts do (the process that took the job is gone).
    """
    containers = worker_containers(obs, pod)
    shutting_down = is_terminating(pod) and any_running(containers)
    for container in containers:
        current = container.terminated
        if current is not None and not shutting_down and _after_job_taken(obs, current):
            return ProcessDeath(container.name, current, False, current.finished_at)
        last = container.last_terminated
        last_counts = last is not None and _after_job_taken(obs, last)
        if _restarted_under_client(obs, container):
            if last is not None and last_counts:
                return ProcessDeath(container.name, last, True, last.finished_at)
            return ProcessDeath(container.name, None, True, container.running_since)
        if last is not None and last_counts and current is None:
            return ProcessDeath(container.name, last, True, last.finished_at)
    return None
