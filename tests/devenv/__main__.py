"""python -m devenv up|down --state-dir DIR [--nodes N] [--real-node]: the local environment
for people."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devenv import env, procs
from devenv.realnode import TAINT_KEY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=Path("build/devenv"))
    parser.add_argument("--nodes", type=int, default=2, help="process node agents (default 2)")
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="also the real node: kubelet, containerd, runc (make node-tools images first)",
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()

    if args.command == "down":
        stopped = env.down(state_dir)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0

    try:
        environment = env.up(state_dir, nodes=args.nodes, real_node=args.real_node)
    except Exception as exc:
        print(f"devenv up failed: {exc}", file=sys.stderr)
        print(f"logs kept in {procs.log_dir(state_dir)}", file=sys.stderr)
        return 1
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in environment.timings.items())
    print(f"ready ({timings})")
    print(f"  source {environment.env_file}")
    print(f"  logs   {procs.log_dir(state_dir)}")
    if environment.real_site is not None:
        node = environment.real_site.node
        print(
            f"  node   {node.name} (taint {TAINT_KEY}); images"
            f" {', '.join(i.reference for i in node.images.values())}; pods reach PostgreSQL"
            f" through {environment.real_site.socket_dir} (hostPath)"
        )
    print(f"  stop   python -m devenv down --state-dir {state_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
