"""A Kubernetes control plane on loopback: etcd, kube-apiserver, controller manager, scheduler.

Every binary is built from its Go module by tools/build.sh. Ports are free ones chosen at start;
the daemons log to <state>/logs/ and are stopped by their PID files. Timings are short so that
node loss plays out in seconds: the node-lifecycle controller marks a silent node NotReady after
NODE_MONITOR_GRACE, and pods tolerate the not-ready/unreachable taints for TOLERATION_SECONDS.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devenv import pki, ports, procs
from devenv.tools import tool_bin

NODE_MONITOR_GRACE = "15s"
TOLERATION_SECONDS = 10
SERVICE_CIDR = "10.0.0.0/24"
# The first address of SERVICE_CIDR: the `kubernetes` Service, which the serving cert must name.
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

# Stop order: dependants first, etcd last.
DAEMONS = ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


class KubectlError(RuntimeError):
    """kubectl exited non-zero."""

    def __init__(self, args: Sequence[str], done: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"kubectl {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr.strip()}"
        )
        self.completed = done


def _get(url: str, context: ssl.SSLContext | None, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _insecure() -> ssl.SSLContext:
    # The controller manager and scheduler serve /healthz with a self-signed certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class ControlPlane:
    """A running control plane; start with `ControlPlane.start(state_dir)`."""

    state_dir: Path
    server: str
    kubeconfig: Path
    daemons: list[procs.Daemon] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return home(self.state_dir)

    @property
    def ca(self) -> pki.CertificateAuthority:
        directory = self.home / "pki"
        return pki.CertificateAuthority.load(directory / "ca.crt", directory / "ca.key")

    @classmethod
    def start(cls, state_dir: Path, *, timeout: float = 180.0) -> ControlPlane:
        """Starts etcd, the apiserver, controller manager and scheduler; waits until they are
        healthy and the default service account exists (pods can be created)."""
        root = home(state_dir)
        root.mkdir(parents=True, exist_ok=True)
        binaries = {name: tool_bin(name) for name in (*DAEMONS, "kubectl")}
        api_port = ports.free_port()
        plane = cls(state_dir, f"https://{ports.LOOPBACK}:{api_port}", root / "admin.kubeconfig")
        try:
            plane._start(binaries, api_port, timeout)
        except BaseException:
            plane.stop()
            raise
        return plane

    def _start(self, binaries: dict[str, Path], api_port: int, timeout: float) -> None:
        root, pki_dir = self.home, self.home / "pki"
        ca = pki.CertificateAuthority.create()
        ca_crt, _ = ca.pair.write(pki_dir, "ca")
        serving_crt, serving_key = ca.issue(
            "kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=[ports.LOOPBACK, KUBERNETES_SERVICE_IP],
        ).write(pki_dir, "apiserver")
        sa_private, sa_public = pki.service_account_keys()
        sa_key, sa_pub = pki_dir / "service-account.key", pki_dir / "service-account.pub"
        sa_key.touch(mode=0o600)
        sa_key.write_bytes(sa_private)
        sa_pub.write_bytes(sa_public)
        # The aggregation layer's front proxy identity; with it the apiserver publishes a
        # request-header CA, which the controller manager's and scheduler's delegated
        # authentication otherwise keep reporting as missing.
        proxy_crt, proxy_key = ca.issue("front-proxy-client").write(pki_dir, "front-proxy-client")
        # The apiserver's client certificate towards kubelets (logs, exec, port-forward).
        kubelet_client_crt, kubelet_client_key = ca.issue(
            "kube-apiserver-kubelet-client", ["kubeadm:cluster-admins"]
        ).write(pki_dir, "kubelet-client")
        admin = ca.issue("lifeguard-admin", ["system:masters"])
        admin_crt, admin_key = admin.write(pki_dir, "admin")
        self.kubeconfig.write_text(pki.kubeconfig(self.server, ca.cert_pem, "admin", admin))
        component_configs = {
            name: self._write_kubeconfig(root / f"{name}.kubeconfig", f"system:{name}", ())
            for name in ("kube-controller-manager", "kube-scheduler")
        }

        etcd_port, etcd_peer_port = ports.free_port(), ports.free_port()
        etcd_url = f"http://{ports.LOOPBACK}:{etcd_port}"
        peer_url = f"http://{ports.LOOPBACK}:{etcd_peer_port}"
        etcd = self._daemon(
            "etcd",
            [
                binaries["etcd"],
                "--name=devenv",
                f"--data-dir={root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=devenv={peer_url}",
                "--unsafe-no-fsync",  # throwaway data; fsync only slows the tests
                "--log-level=warn",
            ],
        )
        procs.wait_ready(
            etcd,
            lambda: '"health":"true"' in _get(f"{etcd_url}/health", None)[1],
            timeout=timeout,
            what="healthy",
        )

        apiserver = self._daemon(
            "kube-apiserver",
            [
                binaries["kube-apiserver"],
                f"--etcd-servers={etcd_url}",
                f"--bind-address={ports.LOOPBACK}",
                f"--advertise-address={ports.LOOPBACK}",
                f"--secure-port={api_port}",
                f"--tls-cert-file={serving_crt}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={ca_crt}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--default-not-ready-toleration-seconds={TOLERATION_SECONDS}",
                f"--default-unreachable-toleration-seconds={TOLERATION_SECONDS}",
                # Endpoints may not hold loopback addresses, and nothing here reaches the
                # apiserver through the `kubernetes` Service.
                "--endpoint-reconciler-type=none",
                f"--requestheader-client-ca-file={ca_crt}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={proxy_crt}",
                f"--proxy-client-key-file={proxy_key}",
                # A node's InternalIP only: the Hostname address would be resolved through the
                # machine's DNS server, traffic the environment must never send.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={kubelet_client_crt}",
                f"--kubelet-client-key={kubelet_client_key}",
                "--allow-privileged=true",
                "--profiling=false",
            ],
        )
        admin_tls = ssl.create_default_context(cafile=str(ca_crt))
        admin_tls.load_cert_chain(admin_crt, admin_key)
        procs.wait_ready(
            apiserver,
            lambda: _get(f"{self.server}/readyz", admin_tls)[0] == 200,
            timeout=timeout,
            what="ready (/readyz)",
        )

        health_ports = {
            "kube-controller-manager": ports.free_port(),
            "kube-scheduler": ports.free_port(),
        }
        common = [
            f"--bind-address={ports.LOOPBACK}",
            "--leader-elect=false",  # one replica; leader election only delays the start
        ]
        kcm_config = component_configs["kube-controller-manager"]
        scheduler_config = component_configs["kube-scheduler"]
        started = [
            self._daemon(
                "kube-controller-manager",
                [
                    binaries["kube-controller-manager"],
                    *common,
                    f"--secure-port={health_ports['kube-controller-manager']}",
                    f"--cert-dir={root / 'kube-controller-manager-certs'}",
                    f"--kubeconfig={kcm_config}",
                    f"--authentication-kubeconfig={kcm_config}",
                    f"--authorization-kubeconfig={kcm_config}",
                    # Every controller that is on by default: job, garbage-collector,
                    # namespace, serviceaccount(-token), pod-garbage-collector,
                    # node-lifecycle and taint-eviction among them.
                    "--controllers=*",
                    "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={sa_key}",
                    f"--root-ca-file={ca_crt}",
                    f"--cluster-signing-cert-file={ca_crt}",
                    f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
                    f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
                    "--node-monitor-period=2s",
                    # Tests fail nodes and leave them NotReady; with a few of them a zone would
                    # count as partially disrupted (more than 55 % unhealthy) and a cluster this
                    # small then stops taint eviction altogether. Only a full outage stops it here.
                    "--unhealthy-zone-threshold=1",
                ],
            ),
            self._daemon(
                "kube-scheduler",
                [
                    binaries["kube-scheduler"],
                    *common,
                    f"--secure-port={health_ports['kube-scheduler']}",
                    f"--cert-dir={root / 'kube-scheduler-certs'}",
                    f"--kubeconfig={scheduler_config}",
                    f"--authentication-kubeconfig={scheduler_config}",
                    f"--authorization-kubeconfig={scheduler_config}",
                ],
            ),
        ]
        insecure = _insecure()
        for daemon in started:
            url = f"https://{ports.LOOPBACK}:{health_ports[daemon.name]}/healthz"
            procs.wait_ready(
                daemon,
                lambda url=url: _get(url, insecure)[0] == 200,  # type: ignore[misc]
                timeout=timeout,
                what="healthy (/healthz)",
            )
        # The ServiceAccount admission plugin rejects pods until the serviceaccount
        # controller has created the namespace's `default` account.
        default_sa = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        procs.wait_ready(
            started[0],
            lambda: _get(default_sa, admin_tls)[0] == 200,
            timeout=timeout,
            what="done creating the default service account",
        )

    def _daemon(self, name: str, argv: Sequence[str | os.PathLike[str]]) -> procs.Daemon:
        daemon = procs.start_daemon(self.state_dir, name, argv)
        self.daemons.append(daemon)
        return daemon

    def _write_kubeconfig(self, path: Path, user: str, groups: Sequence[str]) -> Path:
        credentials = self.ca.issue(user, groups)
        path.touch(mode=0o600)
        path.write_text(pki.kubeconfig(self.server, self.ca.cert_pem, user, credentials))
        return path

    def user_kubeconfig(
        self, user: str, groups: Sequence[str] = (), path: Path | None = None
    ) -> Path:
        """A kubeconfig for identity `user` in `groups` (client certificate signed by the
        cluster CA), e.g. ("system:node:n1", ["system:nodes"]) for a node agent."""
        if path is None:
            users = self.home / "users"
            users.mkdir(exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
            path = users / f"{safe}.kubeconfig"
        return self._write_kubeconfig(path, user, groups)

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the built kubectl against this cluster (as admin unless `kubeconfig`)."""
        argv = [str(tool_bin("kubectl")), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        done = subprocess.run(
            argv, input=input, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and done.returncode != 0:
            raise KubectlError(args, done)
        return done

    def kubectl_json(self, *args: str, kubeconfig: Path | None = None) -> dict[str, object]:
        """kubectl ... -o json, parsed."""
        parsed = json.loads(self.kubectl(*args, "-o", "json", kubeconfig=kubeconfig).stdout)
        if not isinstance(parsed, dict):
            raise TypeError(f"kubectl {' '.join(args)} did not print a JSON object")
        return parsed

    def restart(self, name: str, *, down_for: float = 0.0, timeout: float = 180.0) -> None:
        """Stops one component (etcd, kube-apiserver, ...) and starts it again with the same
        command line after `down_for` seconds, for outage tests; returns once the apiserver
        answers /readyz again."""
        with self.down(name, timeout=timeout):
            time.sleep(down_for)

    @contextlib.contextmanager
    def down(self, name: str, *, timeout: float = 180.0) -> Iterator[None]:
        """Stops one component for the block, then starts it again with the same command line;
        leaves the block once the apiserver answers /readyz again."""
        daemon = next(d for d in self.daemons if d.name == name)
        argv = Path(f"/proc/{daemon.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        daemon.stop()
        try:
            yield
        finally:
            restarted = procs.start_daemon(self.state_dir, name, [a.decode() for a in argv])
            self.daemons[self.daemons.index(daemon)] = restarted

            def ready() -> bool:
                done = self.kubectl("get", "--raw", "/readyz", check=False, timeout=10)
                return done.returncode == 0

            procs.wait_ready(restarted, ready, timeout=timeout, what="ready again (/readyz)")

    def stop(self) -> None:
        """Stops every daemon, dependants first."""
        stop(self.state_dir)
        self.daemons.clear()


def home(state_dir: Path) -> Path:
    """Where the control plane keeps its PKI, etcd data and kubeconfigs."""
    return state_dir / "controlplane"


def stop(state_dir: Path) -> None:
    """Stops the control plane started in `state_dir` (by this or an earlier process)."""
    for name in DAEMONS:
        procs.stop_pid_file(procs.run_dir(state_dir) / f"{name}.pid")
