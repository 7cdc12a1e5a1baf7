"""One pod on the node: its containers' processes, restarts, status reports and deletion.

Each pod gets a thread (PodWorker) that owns its processes and is the only writer of its
status, so process and pod object move together: a process that dies shows as terminated, a
pod that is deleted loses its processes (SIGTERM, grace period, SIGKILL) before the agent
completes the deletion, like a kubelet does.
"""

from __future__ import annotations

import base64
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.nodeagent.kube import ApiError, KubeClient
from devenv.nodeagent.proc import ContainerProcess, Exit, remove_cgroup_tree
from devenv.nodeagent.spec import (
    POD_IP,
    ConditionBook,
    ContainerRecord,
    SpecError,
    Termination,
    container_argv,
    container_env,
    memory_limit,
    native_sidecars,
    now_rfc3339,
    pod_hostname,
    pod_phase,
    restart_wanted,
    search_path,
    termination_reason,
)

Json = dict[str, Any]
log = logging.getLogger("nodeagent.pod")

POLL_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 10.0
# Kubelet's limits for a termination message taken from the log.
TERMINATION_LOG_LINES = 80
TERMINATION_LOG_BYTES = 2048


@dataclass
class AgentContext:
    """What every pod worker shares with the agent."""

    kube: KubeClient
    node_name: str
    path_dirs: list[Path]
    pods_dir: Path
    cgroup_root: Path | None  # <memory cgroup>/lifeguard/<node>, None: RSS polling
    node_failed: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)


def pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


class PodWorker(threading.Thread):
    def __init__(self, ctx: AgentContext, pod: Json) -> None:
        meta = pod["metadata"]
        # Thread.name is the pod's name too; Thread.__init__ must run before it is set.
        super().__init__(name=meta["name"], daemon=True)
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.ctx = ctx
        self._pod = pod
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._removed = False
        self.hostname = pod_hostname(self.name)
        self.dir = ctx.pods_dir / f"{self.namespace}_{self.name}_{self.uid}"
        containers = pod["spec"].get("containers") or []
        sidecars = native_sidecars(pod["spec"])
        self.specs: dict[str, Json] = {c["name"]: c for c in [*sidecars, *containers]}
        # Native sidecars first: they start before the main containers, as with kubelet.
        self.sidecars = [ContainerRecord(c["name"], c.get("image", "")) for c in sidecars]
        self.main = [ContainerRecord(c["name"], c.get("image", "")) for c in containers]
        self.records = [*self.sidecars, *self.main]
        self.processes: dict[str, ContainerProcess] = {}
        self._restart_at: dict[str, float] = {}
        # Native sidecar processes already sent SIGTERM after the main containers finished.
        self._stopped_sidecars: set[int] = set()
        self._conditions = ConditionBook()
        self._last_posted: Json | None = None
        self.start_time = (pod.get("status") or {}).get("startTime") or now_rfc3339()

    # --- called from the watch and control threads --------------------------------------
    def update(self, pod: Json) -> None:
        with self._lock:
            self._pod = pod
        self._wake.set()

    def removed(self) -> None:
        """The pod object is gone from the API (force-deleted): its processes go too."""
        self._removed = True
        self._wake.set()

    def signal_all(self, sig: int) -> list[int]:
        # Snapshots: the worker thread adds and removes processes meanwhile.
        processes = list(self.processes.values())
        for process in processes:
            process.signal(sig)
        return [p.pid for p in processes]

    def _signal(self, sig: int, which: Callable[[str], bool]) -> None:
        for name, process in list(self.processes.items()):
            if which(name):
                process.signal(sig)

    def describe(self) -> Json:
        processes = list(self.processes.items())
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "pids": {name: p.pid for name, p in processes},
            "memory": {name: p.memory_mechanism for name, p in processes},
        }

    # --- the worker's own thread ----------------------------------------------------------
    @property
    def pod(self) -> Json:
        with self._lock:
            return self._pod

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # an odd pod must never take the agent down
            log.exception("pod %s/%s: worker failed", self.namespace, self.name)
        finally:
            self._cleanup()

    def _run(self) -> None:
        phase = (self.pod.get("status") or {}).get("phase")
        terminal_on_arrival = phase in ("Succeeded", "Failed")
        if not terminal_on_arrival and not self.pod["metadata"].get("deletionTimestamp"):
            (self.dir / "work").mkdir(parents=True, exist_ok=True)
            self._post_status()
            for record in self.records:
                self._start(record)
        while True:
            if self.ctx.node_failed.is_set():
                # A failed node's kubelet is dead: nothing is reported or restarted any more.
                self.ctx.stopping.wait()
                return
            if self.ctx.stopping.is_set() or self._removed:
                return
            if self.pod["metadata"].get("deletionTimestamp"):
                self._terminate()
                return
            if not terminal_on_arrival:
                self._reap_and_restart()
                if self._post_status() and self._cgroups_done():
                    terminal_on_arrival = True  # nothing runs or restarts any more
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _start(self, record: ContainerRecord) -> None:
        container = self.specs[record.name]
        try:
            env = container_env(self.pod, container, self._fetch, self.hostname)
            argv = container_argv(container, env, self.ctx.path_dirs)
            limit = memory_limit(container)
        except SpecError as exc:
            log.warning("pod %s/%s %s: %s", self.namespace, self.name, record.name, exc)
            if exc.reason == "RunContainerError":
                now = now_rfc3339()
                self._finish(record, Termination(128, "StartError", now, now, message=str(exc)))
            else:  # configuration may appear later (a secret): retry after a backoff
                record.waiting_reason, record.waiting_message = exc.reason, str(exc)
                self._restart_at[record.name] = time.monotonic() + 2
            return
        full_env = {"PATH": search_path(self.ctx.path_dirs), "HOME": str(self.dir / "work")}
        full_env.update(env)
        cgroup = self.ctx.cgroup_root / self.uid / record.name if self.ctx.cgroup_root else None
        process = ContainerProcess(
            argv,
            env=full_env,
            cwd=self.dir / "work",
            hostname=self.hostname,
            log_path=self.dir / f"{record.name}.log",
            cgroup=cgroup,
            memory_limit=limit,
        )
        self.processes[record.name] = process
        record.running_since = now_rfc3339()
        record.container_id = f"nodeagent://{self.ctx.node_name}/{process.pid}"
        record.terminated, record.waiting_message = None, ""
        log.info(
            "pod %s/%s %s: started pid %d hostname %s memory limit %s (mechanism: %s): %s",
            self.namespace,
            self.name,
            record.name,
            process.pid,
            self.hostname,
            limit,
            process.memory_mechanism,
            argv,
        )

    def _fetch(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        resource = "secrets" if kind == "secretRef" else "configmaps"
        try:
            obj = self.ctx.kube.get(f"/api/v1/namespaces/{namespace}/{resource}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise SpecError("CreateContainerConfigError", str(exc)) from exc
        data: dict[str, str] = dict(obj.get("data") or {})
        if resource == "secrets":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        return data

    def _restart_wanted(self, record: ContainerRecord, exit_code: int) -> bool:
        return restart_wanted(
            self.pod["spec"].get("restartPolicy", "Always"),
            exit_code,
            sidecar=record in self.sidecars,
            main_done=self._main_done(),
        )

    def _main_done(self) -> bool:
        return bool(self.main) and all(r.finished for r in self.main)

    def _finish(self, record: ContainerRecord, ended: Termination) -> None:
        """Records one run's end and decides whether the container starts again."""
        record.running_since = None
        if self._restart_wanted(record, ended.exit_code) and not self.pod["metadata"].get(
            "deletionTimestamp"
        ):
            delay = min(BACKOFF_MAX_SECONDS, 2.0**record.restart_count)
            record.last_terminated, record.terminated = ended, None
            record.restart_pending, record.waiting_reason = True, "CrashLoopBackOff"
            self._restart_at[record.name] = time.monotonic() + delay
        else:
            record.terminated, record.restart_pending = ended, False

    def _record_exit(self, record: ContainerRecord, ended: Exit, restart: bool = True) -> None:
        termination = Termination(
            exit_code=ended.exit_code,
            reason=termination_reason(ended.exit_code, ended.oom_killed),
            started_at=record.running_since or now_rfc3339(),
            finished_at=now_rfc3339(),
            signal=ended.signal,
            message=self._termination_message(record.name, ended.exit_code),
        )
        log.info(
            "pod %s/%s %s: exited %s (%s)",
            self.namespace,
            self.name,
            record.name,
            ended,
            termination.reason,
        )
        self.processes.pop(record.name, None)
        if restart:
            self._finish(record, termination)
        else:
            record.running_since, record.terminated = None, termination
            record.restart_pending = False

    def _termination_message(self, container: str, exit_code: int) -> str:
        """terminationMessagePolicy FallbackToLogsOnError: a failed run's log tail, as kubelet."""
        policy = self.specs[container].get("terminationMessagePolicy")
        if policy != "FallbackToLogsOnError" or exit_code == 0:
            return ""
        try:
            text = (self.dir / f"{container}.log").read_bytes()[-TERMINATION_LOG_BYTES:]
        except OSError:
            return ""
        lines = text.decode(errors="replace").splitlines()[-TERMINATION_LOG_LINES:]
        return "\n".join(lines)

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        if self._main_done():
            # The main containers finished for good: kubelet stops the native sidecars.
            for record in self.sidecars:
                self._restart_at.pop(record.name, None)
                if record.restart_pending:
                    record.restart_pending, record.terminated = False, record.last_terminated
                process = self.processes.get(record.name)
                if process is not None and process.pid not in self._stopped_sidecars:
                    self._stopped_sidecars.add(process.pid)
                    process.signal(signal.SIGTERM)
        for record in self.records:
            process = self.processes.get(record.name)
            if process is not None:
                ended = process.poll()
                if ended is not None:
                    if record in self.sidecars and self._main_done():
                        self._record_exit(record, ended, restart=False)
                    else:
                        self._record_exit(record, ended)
            elif record.name in self._restart_at and now >= self._restart_at[record.name]:
                del self._restart_at[record.name]
                if record.restart_pending:
                    record.restart_count += 1
                    record.restart_pending = False
                self._start(record)

    def _status(self) -> Json:
        phase = pod_phase(self.main)
        status: Json = {
            "phase": phase,
            "conditions": self._conditions.conditions(self.records, phase),
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "containerStatuses": [r.as_api() for r in self.main],
        }
        if self.sidecars:
            status["initContainerStatuses"] = [r.as_api() for r in self.sidecars]
        return {"metadata": {"uid": self.uid}, "status": status}

    def _post_status(self) -> bool:
        """Reports the pod's status if it changed; False if that failed (retried next time)."""
        body = self._status()
        if body == self._last_posted or self.ctx.node_failed.is_set():
            return True
        try:
            self.ctx.kube.patch(pod_path(self.namespace, self.name) + "/status", body)
            self._last_posted = body
            return True
        except ApiError as exc:
            if exc.status in (404, 409):
                log.info("pod %s/%s gone while reporting status", self.namespace, self.name)
                self._removed = True
            else:
                log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, exc)
            return False

    def _terminate(self) -> None:
        """SIGTERM, the pod's grace period, SIGKILL; then report and complete the deletion."""
        began = time.monotonic()
        log.info("pod %s/%s: deleting, SIGTERM to %s", self.namespace, self.name, self.processes)
        for record in self.records:
            self._restart_at.pop(record.name, None)
            if record.restart_pending:  # in back-off: it simply does not start again
                record.restart_pending = False
                record.terminated = record.last_terminated
        # Like kubelet: the main containers first, the native sidecars once they are gone.
        sidecar_names = {r.name for r in self.sidecars}
        self._signal(signal.SIGTERM, lambda name: name not in sidecar_names)
        sidecars_signalled = False
        while self.processes and not self.ctx.node_failed.is_set():
            if not sidecars_signalled and set(self.processes) <= sidecar_names:
                self._signal(signal.SIGTERM, lambda name: name in sidecar_names)
                sidecars_signalled = True
            grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
            grace = 30 if grace is None else int(grace)
            if time.monotonic() - began >= grace:
                log.info(
                    "pod %s/%s: grace period %ds over: SIGKILL", self.namespace, self.name, grace
                )
                self.signal_all(signal.SIGKILL)
            for record in self.records:
                process = self.processes.get(record.name)
                ended = process.poll() if process is not None else None
                if ended is not None:
                    self._record_exit(record, ended, restart=False)
            if self.ctx.stopping.is_set() or self._removed:
                return
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
        if self.ctx.node_failed.is_set():
            self.ctx.stopping.wait()
            return
        self._post_status()
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        for _ in range(10):
            try:
                self.ctx.kube.delete(pod_path(self.namespace, self.name), options)
                log.info("pod %s/%s: deletion completed", self.namespace, self.name)
                return
            except ApiError as exc:
                if exc.status in (404, 409):
                    return
                log.warning("pod %s/%s: delete failed: %s", self.namespace, self.name, exc)
                if self.ctx.stopping.wait(1.0):
                    return

    def _cgroups_done(self) -> bool:
        """Once every container finished for good, its cgroups go (the pod object stays)."""
        if self.processes or not all(r.finished for r in self.records):
            return False
        if self.ctx.cgroup_root is not None:
            remove_cgroup_tree(self.ctx.cgroup_root / self.uid)
        return True

    def _cleanup(self) -> None:
        for process in list(self.processes.values()):
            process.kill_and_reap()
        self.processes.clear()
        if self.ctx.cgroup_root is not None:
            remove_cgroup_tree(self.ctx.cgroup_root / self.uid)
        shutil.rmtree(self.dir / "work", ignore_errors=True)
