"""The process node agent: a small test-side kubelet that runs pods as local processes.

    python -m devenv.nodeagent --kubeconfig K --node NAME --state-dir D --path DIR[:DIR]

It registers a Node, renews its Lease, watches the pods bound to it and runs each container's
command as a local process (own UTS namespace with the pod's name as hostname, memory cgroup
for the memory limit), reports their states, and honours deletions like a kubelet. Tests and
`devenv up` start it with `start_node_agent` (handle.py) and steer it through the returned
handle.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from devenv.nodeagent.control import ControlServer
from devenv.nodeagent.handle import node_cgroup
from devenv.nodeagent.kube import ApiError, KubeClient
from devenv.nodeagent.node import LEASE_RENEW_SECONDS, NodeHeartbeat
from devenv.nodeagent.pod import AgentContext, PodWorker
from devenv.nodeagent.proc import cgroup_v1_available, remove_cgroup_tree

Json = dict[str, Any]
log = logging.getLogger("nodeagent")


class NodeAgent:
    def __init__(
        self,
        kube: KubeClient,
        node_name: str,
        state_dir: Path,
        path_dirs: list[Path],
        lease_renew_seconds: float = LEASE_RENEW_SECONDS,
    ):
        self.state_dir = state_dir
        cgroup_root: Path | None = None
        if cgroup_v1_available():
            cgroup_root = node_cgroup(state_dir)
            # Left by an agent that was killed hard: its processes must not outlive it.
            remove_cgroup_tree(cgroup_root)
        self.memory_mechanism = "cgroup-v1" if cgroup_root else "rss-polling"
        log.info("memory limits on node %s enforced by %s", node_name, self.memory_mechanism)
        self.ctx = AgentContext(kube, node_name, path_dirs, state_dir / "pods", cgroup_root)
        self.heartbeat_stop = threading.Event()
        self.heartbeat = NodeHeartbeat(
            kube, node_name, self.heartbeat_stop, renew_seconds=lease_renew_seconds
        )
        self.workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()

    # --- control ---------------------------------------------------------------------------
    def health(self) -> Json:
        return {
            "node": self.ctx.node_name,
            "registered": self.heartbeat.registered.is_set(),
            "failed": self.ctx.node_failed.is_set(),
            "memory_mechanism": self.memory_mechanism,
        }

    def pods(self) -> list[Json]:
        with self._lock:
            return [w.describe() for w in self.workers.values() if w.is_alive()]

    def _find(self, namespace: str, name: str) -> PodWorker | None:
        with self._lock:
            found = [
                w
                for w in self.workers.values()
                if w.namespace == namespace and w.name == name and w.is_alive()
            ]
        return found[-1] if found else None

    def signal_pod(self, namespace: str, name: str, sig: int) -> Json | None:
        worker = self._find(namespace, name)
        if worker is None:
            return None
        pids = worker.signal_all(sig)
        log.info("control: signal %d to pod %s/%s pids %s", sig, namespace, name, pids)
        return {"pids": pids, "signal": sig}

    def pause_kubelet(self, seconds: float) -> Json:
        """The kubelet stalls for `seconds` (no Lease, no status); pods keep running."""
        self.heartbeat.pause(seconds)
        return {"paused_seconds": seconds}

    def fail_node(self, mode: str) -> Json:
        """The node dies: no more Lease or status, and its processes are killed or frozen."""
        self.ctx.node_failed.set()
        self.heartbeat_stop.set()
        sig = signal.SIGKILL if mode == "kill" else signal.SIGSTOP
        with self._lock:
            workers = list(self.workers.values())
        pids = [pid for w in workers for pid in w.signal_all(sig)]
        log.warning(
            "control: node %s failed (%s): signal %d to %s", self.ctx.node_name, mode, sig, pids
        )
        return {"mode": mode, "pids": pids}

    # --- pods --------------------------------------------------------------------------------
    def _dispatch(self, event_type: str, pod: Json) -> None:
        if self.ctx.node_failed.is_set():
            return  # a dead kubelet starts and stops nothing
        uid = pod["metadata"]["uid"]
        with self._lock:
            worker = self.workers.get(uid)
            if event_type == "DELETED":
                self.workers.pop(uid, None)
            elif worker is None:
                worker = self.workers[uid] = PodWorker(self.ctx, pod)
                worker.start()
                return
        if worker is None:
            return
        if event_type == "DELETED":
            worker.removed()
        else:
            worker.update(pod)

    def _dispatch_safely(self, event_type: str, pod: Json) -> None:
        try:
            self._dispatch(event_type, pod)
        except Exception:  # an odd pod must not stop the agent from serving the others
            log.exception("could not handle %s of %s", event_type, pod.get("metadata"))

    def _list_and_watch(self) -> None:
        path = "/api/v1/pods"
        selector = f"spec.nodeName={self.ctx.node_name}"
        listed = self.ctx.kube.get(path, fieldSelector=selector)
        seen = {p["metadata"]["uid"] for p in listed.get("items") or []}
        with self._lock:
            vanished = [uid for uid in self.workers if uid not in seen]
        for uid in vanished:
            self._dispatch_safely("DELETED", {"metadata": {"uid": uid}})
        for pod in listed.get("items") or []:
            self._dispatch_safely("MODIFIED", pod)
        version = listed["metadata"]["resourceVersion"]
        while not self.ctx.stopping.is_set():
            for event in self.ctx.kube.watch(
                path, fieldSelector=selector, resourceVersion=version, allowWatchBookmarks="true"
            ):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    log.info("watch ended by the server (%s): relisting", obj.get("message"))
                    return
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._dispatch_safely(str(kind), obj)
                if self.ctx.stopping.is_set():
                    return

    def watch_pods(self) -> None:
        while not self.ctx.stopping.is_set():
            if self.ctx.node_failed.is_set():
                self.ctx.stopping.wait()  # a dead kubelet watches nothing
                return
            try:
                self._list_and_watch()
            except ApiError as exc:
                log.warning("pod watch failed (retrying): %s", exc)
                self.ctx.stopping.wait(1.0)
            except Exception:
                log.exception("pod watch crashed (retrying)")
                self.ctx.stopping.wait(1.0)

    # --- life cycle --------------------------------------------------------------------------
    def run(self) -> None:
        while not self.ctx.stopping.is_set():
            try:
                self.heartbeat.register()
                break
            except ApiError as exc:
                log.warning("node registration failed (retrying): %s", exc)
                self.ctx.stopping.wait(1.0)
        self.heartbeat.start()
        control = ControlServer(self)
        control.start()
        control_file = self.state_dir / "control.json"
        control_file.write_text(json.dumps({"port": control.port}))
        log.info("control endpoint on 127.0.0.1:%d (%s)", control.port, control_file)
        threading.Thread(target=self.watch_pods, name="pod-watch", daemon=True).start()
        while not self.ctx.stopping.wait(1.0):
            pass  # a short wait keeps the main thread responsive to SIGTERM
        self.shutdown()
        control.close()

    def shutdown(self) -> None:
        """Kills every pod process (workers clean up on `stopping`) and the node's cgroups."""
        log.info("shutting down: killing pod processes")
        self.heartbeat_stop.set()
        self.ctx.stopping.set()
        with self._lock:
            workers = list(self.workers.values())
        deadline = time.monotonic() + 15
        for worker in workers:
            worker.join(max(0.1, deadline - time.monotonic()))
        if self.ctx.cgroup_root is not None:
            remove_cgroup_tree(self.ctx.cgroup_root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.nodeagent", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--path", default="", help="dirs searched for container commands")
    parser.add_argument(
        "--lease-renew-seconds",
        type=float,
        default=LEASE_RENEW_SECONDS,
        help="Lease renewal period (a kubelet's default is 10 s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args.state_dir.mkdir(parents=True, exist_ok=True)
    path_dirs = [Path(p) for p in args.path.split(":") if p]
    agent = NodeAgent(
        KubeClient(args.kubeconfig),
        args.node,
        args.state_dir,
        path_dirs,
        lease_renew_seconds=args.lease_renew_seconds,
    )

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        agent.ctx.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run()
    log.info("node agent %s stopped", args.node)
    return 0
