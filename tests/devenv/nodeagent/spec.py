"""Pure pieces of the node agent: what a pod spec asks for, and how its status reads.

No I/O here beyond `shutil.which` on the agent's PATH: these functions are unit-tested.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Json = dict[str, Any]

# Kubelet's limit for the pod's hostname (a DNS label); the kernel allows 64 bytes.
HOSTNAME_MAX = 63
SYSTEM_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
POD_IP = "127.0.0.1"

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class SpecError(ValueError):
    """The pod asks for something this node cannot run (reported as the container's reason)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """MicroTime, as Lease.spec.renewTime wants it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod_hostname(pod_name: str) -> str:
    """The hostname a pod gets: like kubelet, cut to 63 characters, no trailing '-' or '.'."""
    if len(pod_name) <= HOSTNAME_MAX:
        return pod_name
    return pod_name[:HOSTNAME_MAX].rstrip("-.")


def parse_quantity(quantity: str | int | float) -> int:
    """A Kubernetes resource quantity ("64Mi", "1G", "5e8", "1500") in plain units."""
    if isinstance(quantity, int | float):
        return int(quantity)
    match = _QUANTITY.match(quantity.strip())
    if not match:
        raise SpecError("InvalidQuantity", f"cannot parse quantity {quantity!r}")
    number, suffix = match.groups()
    if suffix in _BINARY_SUFFIXES:
        scale = _BINARY_SUFFIXES[suffix]
    elif suffix in _DECIMAL_SUFFIXES:
        scale = _DECIMAL_SUFFIXES[suffix]
    elif suffix == "m":
        return int(float(number) / 1000)
    elif suffix == "":
        scale = 1
    else:
        raise SpecError("InvalidQuantity", f"unknown suffix in quantity {quantity!r}")
    return int(float(number) * scale)


def memory_limit(container: Json) -> int | None:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return parse_quantity(limit) if limit is not None else None


def expand_refs(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command, args and env: unknown refs stay, $$ is $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REF.sub(replace, text)


def _field_value(pod: Json, field_path: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": POD_IP,
        "status.hostIP": POD_IP,
    }
    if field_path in simple:
        return str(simple[field_path] or "")
    keyed = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", field_path)
    if keyed:
        return str((meta.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    raise SpecError("CreateContainerConfigError", f"unsupported fieldRef {field_path!r}")


# fetch(kind, namespace, name) -> the object's data (secrets already decoded), None if absent.
Fetch = Callable[[str, str, str], Mapping[str, str] | None]


def container_env(pod: Json, container: Json, fetch: Fetch, hostname: str) -> dict[str, str]:
    """The environment of one container: a container-like base, envFrom, then env."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {"HOSTNAME": hostname}
    for source in container.get("envFrom") or []:
        for kind in ("configMapRef", "secretRef"):
            ref = source.get(kind)
            if ref is None:
                continue
            data = fetch(kind, namespace, ref["name"])
            if data is None and not ref.get("optional"):
                raise SpecError("CreateContainerConfigError", f"{kind} {ref['name']} not found")
            prefix = source.get("prefix", "")
            env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var:
            env[name] = expand_refs(str(var["value"]), env)
            continue
        source = var.get("valueFrom") or {}
        if "fieldRef" in source:
            env[name] = _field_value(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            kind = "secretRef" if "secretKeyRef" in source else "configMapRef"
            ref = source.get("secretKeyRef") or source["configMapKeyRef"]
            data = fetch(kind, namespace, ref["name"]) or {}
            if ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional"):
                raise SpecError(
                    "CreateContainerConfigError", f"{kind} {ref['name']} has no key {ref['key']}"
                )
        else:
            env[name] = ""
    return env


def image_entrypoint(image: str) -> str:
    """Without a command, the image's last path segment (tag and digest cut) names the binary."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def container_argv(container: Json, env: Mapping[str, str], path_dirs: list[Path]) -> list[str]:
    """command+args with $(VAR) expanded, the command resolved on the agent's PATH."""
    command = list(container.get("command") or [image_entrypoint(container.get("image", ""))])
    argv = [expand_refs(str(part), env) for part in command + list(container.get("args") or [])]
    if not argv or not argv[0]:
        raise SpecError("RunContainerError", "container has neither command nor image")
    if "/" not in argv[0]:
        found = shutil.which(argv[0], path=search_path(path_dirs))
        if found is None:
            raise SpecError(
                "RunContainerError", f"executable {argv[0]!r} not found in {search_path(path_dirs)}"
            )
        argv[0] = found
    return argv


def search_path(path_dirs: list[Path]) -> str:
    return ":".join([*map(str, path_dirs), *SYSTEM_PATH])


@dataclass
class Termination:
    """How one run of a container ended."""

    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    signal: int | None = None
    message: str = ""

    def as_api(self, container_id: str) -> Json:
        out: Json = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": container_id,
        }
        if self.signal:
            out["signal"] = self.signal
        if self.message:
            out["message"] = self.message
        return out


def termination_reason(exit_code: int, oom_killed: bool) -> str:
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


@dataclass
class ContainerRecord:
    """What the agent knows about one container of a pod, across restarts."""

    name: str
    image: str
    restart_count: int = 0
    container_id: str = ""
    running_since: str | None = None
    terminated: Termination | None = None
    last_terminated: Termination | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    restart_pending: bool = False
    config_error: bool = False

    @property
    def running(self) -> bool:
        return self.running_since is not None

    @property
    def finished(self) -> bool:
        """Terminated for good: exited and will not be restarted."""
        return self.terminated is not None and not self.restart_pending

    def state(self) -> Json:
        # Every key is present: a strategic merge patch must clear the states left behind.
        state: Json = {"waiting": None, "running": None, "terminated": None}
        if self.running_since is not None:
            state["running"] = {"startedAt": self.running_since}
        elif self.finished and self.terminated is not None:
            state["terminated"] = self.terminated.as_api(self.container_id)
        else:
            waiting: Json = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state["waiting"] = waiting
        return state

    def as_api(self) -> Json:
        last = self.last_terminated
        return {
            "name": self.name,
            "image": self.image,
            "imageID": f"nodeagent://{self.image}",
            "containerID": self.container_id or None,
            "ready": self.running,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": self.state(),
            "lastState": {"terminated": last.as_api(self.container_id)} if last else {},
        }


def native_sidecars(spec: Json) -> list[Json]:
    """Init containers with restartPolicy Always: kubelet starts them before the main
    containers and restarts them whenever they exit, for as long as the main containers run."""
    return [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]


def restart_wanted(pod_policy: str, exit_code: int, *, sidecar: bool, main_done: bool) -> bool:
    """Whether a container that exited starts again: a native sidecar always does while the
    main containers have not finished; a main container follows the pod's restartPolicy."""
    if sidecar:
        return not main_done
    return pod_policy == "Always" or (pod_policy == "OnFailure" and exit_code != 0)


def pod_phase(records: list[ContainerRecord]) -> str:
    """Kubelet's phase rule over the main containers (native sidecars do not count), for pods
    without probes."""
    if any(r.running for r in records):
        return "Running"
    if records and all(r.finished for r in records):
        failed = any(r.terminated is not None and r.terminated.exit_code != 0 for r in records)
        return "Failed" if failed else "Succeeded"
    started = any(r.terminated is not None or r.last_terminated is not None for r in records)
    return "Running" if started else "Pending"


class ConditionBook:
    """The pod conditions the agent owns, with transition times kept across updates."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[str, str]] = {}

    def _condition(self, kind: str, status: bool, reason: str | None = None) -> Json:
        value = "True" if status else "False"
        previous = self._since.get(kind)
        since = previous[1] if previous and previous[0] == value else now_rfc3339()
        self._since[kind] = (value, since)
        condition: Json = {"type": kind, "status": value, "lastTransitionTime": since}
        condition["reason"] = reason
        return condition

    def conditions(self, records: list[ContainerRecord], phase: str) -> list[Json]:
        ready = bool(records) and all(r.running for r in records)
        why = None if ready else ("PodCompleted" if phase in ("Succeeded", "Failed") else None)
        why = why or (None if ready else "ContainersNotReady")
        return [
            self._condition("PodReadyToStartContainers", True),
            self._condition("Initialized", True),
            self._condition("ContainersReady", ready, why),
            self._condition("Ready", ready, why),
            self._condition("PodScheduled", True),
        ]
