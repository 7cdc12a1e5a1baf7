"""A real Kubernetes node: kubelet, containerd, runc and CNI, all built from their Go modules.

Everything lives under <state>/realnode/ and is named after the state folder, so two
environments on one machine never share a socket, a bridge, a cgroup or a mount:

- containerd with its CRI plugin, the overlayfs snapshotter and runc (cgroupfs driver); its
  network namespaces are mounted under its own state folder.
- CNI: the `bridge` plugin on a bridge this module creates with the first address of the pod
  subnet, so the kubelet (host side) reaches pod addresses directly. No default route in pods
  and no IP forwarding on the host: pod traffic stays inside the pod network, and pods reach
  PostgreSQL through its unix socket folder (hostPath), never over an address.
- the kubelet, with its own client certificate (system:node:<name>) under the Node authorizer,
  `failCgroupV1: false` (this machine's cgroups are v1, hybrid), and a cgroup root of its own.
  Like every kubelet it sets a few host sysctls (vm.overcommit_memory, kernel.panic, ...) at
  start; their values before are saved and put back by `stop`.

`stop` (also called by `devenv down`) kills the containers, stops both daemons, unmounts what
they mounted, and removes the bridge and the cgroups.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from devenv import ports, procs
from devenv.controlplane import ControlPlane
from devenv.realnode_images import CRI_NAMESPACE, Image, built_images, import_images
from devenv.tools import tool_dir

KUBELET, CONTAINERD = "realnode-kubelet", "realnode-containerd"
NODE_NAME = "realnode"
# Only pods that tolerate it land on the real node: in a control plane shared with node agents,
# their pods (which name commands, not images) never reach a kubelet that cannot run them.
TAINT_KEY = "lifeguard.dev/real-node"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The pod subnet is a /24 of this range, chosen per state folder (see `_ids`).
POD_RANGE = ipaddress.IPv4Network("10.244.0.0/16")


class RealNodeError(RuntimeError):
    """The real node could not be started."""


@dataclass(frozen=True)
class RealNode:
    state_dir: Path
    name: str
    images: dict[str, Image]
    subnet: ipaddress.IPv4Network

    @property
    def home(self) -> Path:
        return home(self.state_dir)


def home(state_dir: Path) -> Path:
    return state_dir / "realnode"


def runtime_dir(state_dir: Path) -> Path:
    """Sockets and the kubelet's root folder: a short path, because a unix socket's path has
    at most 107 bytes and the kubelet makes sockets deep inside its root folder."""
    return Path("/tmp") / f"lgnode-{_ids(state_dir)[1].removeprefix('lifeguard-')}"


def _socket(state_dir: Path) -> Path:
    return runtime_dir(state_dir) / "containerd.sock"


def _ids(state_dir: Path) -> tuple[str, str, ipaddress.IPv4Network]:
    """(bridge name, cgroup folder, pod subnet): stable per state folder, distinct across."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).digest()
    subnets = list(POD_RANGE.subnets(new_prefix=24))
    # A /24 not routed on this machine already.
    routes = subprocess.run(
        ["ip", "-4", "route"], capture_output=True, text=True, check=False
    ).stdout
    start = int.from_bytes(digest[:2]) % len(subnets)
    for offset in range(len(subnets)):
        subnet = subnets[(start + offset) % len(subnets)]
        if str(subnet) not in routes:
            break
    tag = digest.hex()[:8]
    return f"lgbr{tag}", f"lifeguard-{tag}", subnet


def _cgroup_controllers() -> list[Path]:
    """The v1 controller folders (cpu, memory, pids, ...) and the unified one of a hybrid host."""
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def _make_cgroup_root(name: str) -> None:
    # The kubelet insists that its cgroup root exists in every controller; cpuset needs the
    # parent's CPUs and memory nodes before any child can hold a task.
    for controller in _cgroup_controllers():
        folder = controller / name
        folder.mkdir(exist_ok=True)
        if controller.name == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (folder / knob).write_text((controller / knob).read_text())


def _remove_cgroups(name: str) -> None:
    for controller in _cgroup_controllers():
        folder = controller / name
        if not folder.is_dir():
            continue
        # Deepest first: a cgroup folder is removable once it has no children and no tasks.
        for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
        with contextlib.suppress(OSError):
            folder.rmdir()


# The host sysctls the kubelet sets to its own values when it starts (setupKernelTunables;
# with protectKernelDefaults it refuses to start instead). Saved before and restored by `stop`.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


def _save_sysctls(path: Path) -> None:
    if not path.exists():
        values = {k: (Path("/proc/sys") / k).read_text().strip() for k in KUBELET_SYSCTLS}
        path.write_text(json.dumps(values))


def _restore_sysctls(path: Path) -> None:
    if not path.exists():
        return
    for key, value in json.loads(path.read_text()).items():
        with contextlib.suppress(OSError):
            (Path("/proc/sys") / key).write_text(value)
    path.unlink()


def _host_address(subnet: ipaddress.IPv4Network) -> str:
    """The bridge's own address (the pods' side of the host): also the node's InternalIP."""
    return str(next(subnet.hosts()))


def _create_bridge(bridge: str, subnet: ipaddress.IPv4Network) -> None:
    gateway = f"{_host_address(subnet)}/{subnet.prefixlen}"
    for argv in (
        ["ip", "link", "add", bridge, "type", "bridge"],
        ["ip", "addr", "add", gateway, "dev", bridge],
        ["ip", "link", "set", bridge, "up"],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RealNodeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def _write_containerd_config(
    root: Path, socket: Path, pause: Image, cni_bin: Path, runc: Path
) -> Path:
    config = root / "containerd.toml"
    state = root / "containerd"
    cri_images, cri_runtime = '"io.containerd.cri.v1.images"', '"io.containerd.cri.v1.runtime"'
    runc_runtime = f"plugins.{cri_runtime}.containerd.runtimes.runc"
    # Version 3: containerd 2.4 migrates it (a warning); version 4 moves [grpc] into plugins.
    config.write_text(
        f"""version = 3
root = "{state / "root"}"
state = "{state / "state"}"
# NRI's socket has a fixed path shared by every containerd on the machine; nothing uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"

[plugins.{cri_images}]
  snapshotter = "overlayfs"
  [plugins.{cri_images}.pinned_images]
    sandbox = "{pause.reference}"

[plugins.{cri_runtime}]
  netns_mounts_under_state_dir = true
  # This machine withholds CAP_SYS_RESOURCE, so no process may lower its oom_score_adj; the
  # CRI asks -998 for sandboxes. Clamp to containerd's own score instead of failing each pod.
  restrict_oom_score_adj = true
  [plugins.{cri_runtime}.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{root / "net.d"}"
    use_internal_loopback = true
  [{runc_runtime}]
    runtime_type = "io.containerd.runc.v2"
    [{runc_runtime}.options]
      BinaryName = "{runc}"
      Root = "{state / "runc"}"
      SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
    )
    return config


def _write_cni_config(root: Path, bridge: str, subnet: ipaddress.IPv4Network) -> None:
    net_d = root / "net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    conflist = {
        "cniVersion": "1.0.0",
        "name": "lifeguard",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                # The bridge and its address exist already (see _create_bridge): no gateway
                # role, so the plugin neither adds a default route nor turns on forwarding.
                "isGateway": False,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(subnet)}]],
                    "dataDir": str(root / "ipam"),
                },
            }
        ],
    }
    (net_d / "10-lifeguard.conflist").write_text(json.dumps(conflist, indent=2))


def _write_kubelet_config(
    root: Path, ca_crt: Path, socket: Path, cgroup: str, address: str
) -> Path:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine's cgroups are v1 (hybrid); kubelet >= 1.35 refuses them otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup}",
        "containerRuntimeEndpoint": f"unix://{socket}",
        # The kubelet API on the bridge the environment created (the node's InternalIP), where
        # the apiserver reaches it for `kubectl logs`; never on the machine's own addresses.
        "address": address,
        "port": ports.free_port(),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.free_port(),
        # The apiserver is the kubelet API's only client: client certificates of the cluster
        # CA; the API listens on the bridge address only.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_crt)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "podLogsDir": str(root / "pod-logs"),
        "volumePluginDir": str(root / "volume-plugins"),
        # Imported images cannot be pulled again: never collect them, never evict for disk.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "registerNode": True,
        "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
        "resolvConf": "",
    }
    path = root / "kubelet.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _ctr(socket: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    ctr = tool_dir("containerd") / "ctr"
    return subprocess.run(
        [str(ctr), f"--address={socket}", f"--namespace={CRI_NAMESPACE}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def start(state_dir: Path, plane: ControlPlane, *, timeout: float = 180.0) -> RealNode:
    """Starts containerd and the kubelet, imports the images, waits for the Node to be Ready."""
    state_dir = state_dir.resolve()
    root, run = home(state_dir), runtime_dir(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    socket = _socket(state_dir)
    images = built_images()
    bridge, cgroup, subnet = _ids(state_dir)
    containerd_bin, runc_bin, cni_bin = tool_dir("containerd"), tool_dir("runc"), tool_dir("cni")
    kubelet_bin = tool_dir("kubelet") / "kubelet"
    try:
        _create_bridge(bridge, subnet)
        _write_cni_config(root, bridge, subnet)
        config = _write_containerd_config(root, socket, images["pause"], cni_bin, runc_bin / "runc")
        # The shim (containerd-shim-runc-v2) is found on containerd's PATH.
        path = f"{containerd_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        containerd = procs.start_daemon(
            state_dir,
            CONTAINERD,
            [containerd_bin / "containerd", f"--config={config}", "--log-level=warn"],
            env={**os.environ, "PATH": path},
        )
        procs.wait_ready(
            containerd,
            lambda: _ctr(socket, "version", timeout=5).returncode == 0,
            timeout=timeout,
            what="serving",
        )
        import_images(containerd_bin / "ctr", socket, images)

        _make_cgroup_root(cgroup)
        _save_sysctls(root / "sysctls-before.json")
        ca_crt = plane.home / "pki" / "ca.crt"
        kubeconfig = plane.user_kubeconfig(
            f"system:node:{NODE_NAME}", ["system:nodes"], root / "kubelet.kubeconfig"
        )
        kubelet_config = _write_kubelet_config(root, ca_crt, socket, cgroup, _host_address(subnet))
        kubelet = procs.start_daemon(
            state_dir,
            KUBELET,
            [
                kubelet_bin,
                f"--config={kubelet_config}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                # Without it the kubelet looks its node name up in DNS at every status update
                # (the machine's DNS server is outside what the environment may reach).
                f"--node-ip={_host_address(subnet)}",
                f"--root-dir={run / 'kubelet'}",
                f"--cert-dir={root / 'kubelet-pki'}",
                "--v=1",
            ],
            env={**os.environ, "PATH": path},
        )
        procs.wait_ready(
            kubelet, lambda: _node_ready(plane), timeout=timeout, what="Ready (Node condition)"
        )
    except BaseException:
        stop(state_dir)
        raise
    return RealNode(state_dir, NODE_NAME, images, subnet)


def pod_logs(state_dir: Path, namespace: str, pod: str) -> list[Path]:
    """The log files the kubelet wrote for a pod's containers (podLogsDir, on the host), for
    tests that read a pod's output after the pod is gone (`kubectl logs` needs the pod)."""
    return sorted((home(state_dir.resolve()) / "pod-logs").glob(f"{namespace}_{pod}_*/*/*.log"))


def _node_ready(plane: ControlPlane) -> bool:
    done = plane.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    if done.returncode != 0:
        return False
    conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def stop(state_dir: Path) -> bool:
    """Stops the node started in `state_dir` and removes every trace of it from the machine.

    Returns whether anything was running. Order: the kubelet (so it does not restart what is
    killed next), the containers, containerd, the shims it leaves behind, then mounts, the
    bridge and the cgroups.
    """
    state_dir = state_dir.resolve()
    root, run = home(state_dir), runtime_dir(state_dir)
    runs = procs.run_dir(state_dir)
    was_running = procs.stop_pid_file(runs / f"{KUBELET}.pid")
    socket = _socket(state_dir)
    if procs.pid_alive(runs / f"{CONTAINERD}.pid"):
        was_running = True
        tasks = _ctr(socket, "tasks", "list", "--quiet", timeout=30).stdout.split()
        for task in tasks:
            _ctr(socket, "tasks", "kill", "--signal", "SIGKILL", task, timeout=30)
        for task in tasks:
            _ctr(socket, "tasks", "delete", "--force", task, timeout=30)
    procs.stop_pid_file(runs / f"{CONTAINERD}.pid")
    _kill_shims(socket)
    _unmount_under(run)
    _unmount_under(root)
    shutil.rmtree(run, ignore_errors=True)
    bridge, cgroup, _ = _ids(state_dir)
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
    _remove_cgroups(cgroup)
    _restore_sysctls(root / "sysctls-before.json")
    return was_running


def _kill_shims(socket: Path) -> None:
    """Kills the containerd shims of this node only: those started with its socket address."""
    marker = str(socket).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and marker in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    time.sleep(0.2)


def _unmount_under(root: Path) -> None:
    """Unmounts everything mounted below `root` (rootfs overlays, netns, volume tmpfs)."""
    prefix = str(root) + "/"
    for _ in range(3):
        mounts = [
            line.split()[1].replace("\\040", " ")
            for line in Path("/proc/self/mounts").read_text().splitlines()
        ]
        inside = sorted({m for m in mounts if m.startswith(prefix)}, key=len, reverse=True)
        if not inside:
            return
        for mount in inside:
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
