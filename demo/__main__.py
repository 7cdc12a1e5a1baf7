"""`make demo`: Lifeguard doing its job on the local environment, in one command.

    PYTHONPATH=tests:. .venv/bin/python -m demo [--keep] [--state-dir DIR] [--plain]

Builds the tools and the real node's images if they are not cached, starts PostgreSQL with
River, the control plane, two node agents and the real node (kubelet, containerd, runc),
installs the operator with `helm install` from its own image onto the real node, plays the
scenario of demo.scenario and prints the timeline, `kubectl get jp`, the River rows and a
summary against River's own rescuer. Then it stops everything, unless --keep.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from demo.expected import problems
from demo.output import Narrator
from demo.report import river_rows, summary
from demo.scenario import POLICY, Demo, Outcome, Stage
from devenv import env, procs
from devenv.nodeagent import NodeAgentHandle
from devenv.realnode import NODE_NAME
from devenv.realnode_images import built_images
from devenv.tools import repo_root
from devenv.worker import build_worker

TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "helm",
    "river",
    # The real node's.
    "kubelet",
    "containerd",
    "runc",
    "cni",
)
STEADY_NODE, DOOMED_NODE = env.node_name(1), env.node_name(2)


def build_tools(out: Narrator) -> None:
    """tools/build.sh per tool: instant when cached; a first build can take many minutes on a
    small machine, so its own lines are passed on and a line every 30 s says it goes on."""
    out.step("Go tools: " + ", ".join(TOOLS) + " (built once into the cache)")
    script = repo_root() / "tools" / "build.sh"
    for name in TOOLS:
        build = subprocess.Popen(
            [str(script), name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert build.stderr is not None
        said: list[str] = []
        reader = threading.Thread(target=_pass_on, args=(build.stderr, out, said), daemon=True)
        reader.start()
        began = time.monotonic()
        while True:
            try:
                build.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                out.step(f"still building {name} ({time.monotonic() - began:.0f}s so far)")
        reader.join(timeout=5)
        if build.returncode != 0:
            raise RuntimeError(f"tools/build.sh {name} failed: {' '.join(said[-5:])}")
    out.step("the example River worker (go build when its sources changed)")
    build_worker()
    out.step(
        "images: operator (the repository's Dockerfile), worker, pause; built once with buildah"
        " (a first build takes minutes)"
    )
    _saying_it_goes_on(out, "images", built_images)


def _saying_it_goes_on(out: Narrator, what: str, work: Callable[[], object]) -> None:
    """Runs `work`, with a line every 30 s while it lasts (a first build takes minutes)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # raised again below, in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    worker.start()
    while True:
        worker.join(timeout=30)
        if not worker.is_alive():
            break
        out.step(f"still building {what} ({time.monotonic() - began:.0f}s so far)")
    if failure:
        raise failure[0]


def _pass_on(stream: IO[str], out: Narrator, said: list[str]) -> None:
    for line in stream:
        said.append(line.strip())
        out.step(line.strip())


def fresh_state(state_dir: Path, out: Narrator) -> None:
    """A previous `--keep` run may still be up in the same folder: stop it and start clean."""
    if state_dir.exists():
        stopped = env.down(state_dir)
        if stopped:
            out.step(f"stopped a previous demo in {state_dir}: {', '.join(stopped)}")
        shutil.rmtree(state_dir, ignore_errors=True)


def start(state_dir: Path, out: Narrator) -> Demo:
    out.step(
        "PostgreSQL with River's schema, the control plane, node agents node-1 and node-2, and"
        f" the real node {NODE_NAME} (kubelet, containerd, runc, CNI bridge)"
    )
    environment = env.up(state_dir, nodes=2, real_node=True)
    assert environment.real_site is not None
    timings = ", ".join(f"{k} {v:.0f}s" for k, v in environment.timings.items())
    out.step(f"environment ready ({timings})")
    stage = Stage(
        plane=environment.control_plane,
        database_url=environment.database_url,
        state_dir=state_dir,
        worker=build_worker(),
        steady_node=STEADY_NODE,
        doomed_node=NodeAgentHandle.attach(state_dir, DOOMED_NODE),
        real=environment.real_site,
    )
    return Demo(stage, out)


def report(demo: Demo, outcome: Outcome, out: Narrator) -> list[str]:
    out.heading(f"kubectl get jp -n {demo.stage.namespace}")
    out.block(demo.kubectl_get_jp())
    out.heading("River rows of the affected jobs and the healthy long ones")
    river_rows(out, outcome)
    out.heading("Summary: Lifeguard against River's rescuer alone (RescueStuckJobsAfter=1h)")
    summary(out, outcome)
    found = problems(outcome)
    out.say("")
    if found:
        for problem in found:
            out.say(f"UNEXPECTED: {problem}")
    else:
        out.ok("every injected failure was handled with the right cause; healthy jobs untouched")
    return found


def keep_instructions(state_dir: Path, demo: Demo, out: Narrator, succeeded: bool) -> None:
    root = repo_root()
    namespace = demo.stage.namespace
    release_ns = demo.stage.release_namespace
    out.heading("The environment keeps running (--keep)")
    if succeeded:
        # Something for `lifeguard explain` to show: a healthy job that runs for an hour.
        job_id = demo.enqueue("sleep", {"seconds": 3600, "progress_every_seconds": 2}, "reports")
        out.say(f"job {job_id} (sleep, 1h, progress every 2s) now runs on pod reports; try:")
    out.block(
        f"""source {state_dir / "env.sh"}
kubectl get jp -n {namespace}
kubectl describe jp {POLICY} -n {namespace}
{root / ".venv" / "bin" / "lifeguard"} explain {POLICY} -n {namespace}
kubectl get pods -A -o wide
psql "$DATABASE_URL" -c 'SELECT id, kind, state, attempt, errors FROM river_job ORDER BY id'
logs: {procs.log_dir(state_dir)}
kubectl logs -n {release_ns} -l app.kubernetes.io/name=river-lifeguard --tail=50
stop: make devenv-down STATE_DIR={state_dir}"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the environment running")
    parser.add_argument("--state-dir", type=Path, default=repo_root() / "build" / "demo")
    parser.add_argument("--plain", action="store_true", help="no colours")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    out = Narrator(color=False) if args.plain else Narrator.for_terminal()
    began = time.monotonic()

    out.heading("River Lifeguard demo: setting up")
    demo: Demo | None = None
    succeeded = False
    try:
        build_tools(out)
        fresh_state(state_dir, out)
        demo = start(state_dir, out)
        demo.set_up()
        outcome = demo.play()
        succeeded = not report(demo, outcome, out)
    except KeyboardInterrupt:
        out.say("interrupted")
    except Exception as exc:
        out.say(f"the demo failed: {type(exc).__name__}: {exc}")
        out.say(f"logs: {procs.log_dir(state_dir)}")
    finally:
        if args.keep and demo is not None:
            demo.timeline.stop()
            keep_instructions(state_dir, demo, out, succeeded)
        else:
            if demo is not None:
                demo.close()
            stopped = env.down(state_dir)
            out.step(f"cleaned up: stopped {', '.join(stopped) or 'nothing'}")
            if succeeded:
                shutil.rmtree(state_dir, ignore_errors=True)
            else:
                out.step(f"kept {state_dir} for its logs")
    out.step(f"the demo took {time.monotonic() - began:.0f}s")
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
