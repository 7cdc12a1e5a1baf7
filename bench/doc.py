"""docs/performance.md from a bench run's results.json and the hand-written notes beside it.

    PYTHONPATH=tests:. python -m bench.doc build/bench/results.json docs/performance.md

The table (value, target, status, method) is generated; `bench/performance_notes.md` holds the
explanations of the figures (why a number is what it is, and what misses its target), which
only a person can write after reading a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.figures import FIGURE_KEYS, table_markdown

NOTES = Path(__file__).with_name("performance_notes.md")

HEADER = """# Performance

Numbers measured by `make bench` on the real local environment: PostgreSQL from Debian's
packages with River's schema (River's own migrator), a Kubernetes control plane built from its
Go modules, process node agents, the example Go worker with the heartbeat middleware, and
`lifeguard run`. Timings depend on the machine; read medians and ratios, and each figure's
method. Regenerate this page with `make bench && make bench-doc` (after `make test` on a fresh
clone: `make bench` builds nothing the tests did not). The run writes
`build/bench/results.json` (the figure keys below, plus `meta`) and `build/bench/results.md`;
it took 13 minutes on two cores (tools and images cached): 6 for the `policies` section
(10k pods in 50 namespaces, then three policy counts), under 1 each for `database` and
`realnode`. `make test` runs the same harness on tiny sizes
(tests/integration/test_bench_harness.py) and never the full bench.

Sizes and parts are environment variables (bench/config.py): `BENCH_SECTIONS`
(`database,cluster,policies,realnode`), `BENCH_SIZES` (running jobs per scan figure),
`BENCH_WAL_JOBS`, `BENCH_WAL_BEATS`, `BENCH_HEARTBEAT_ROWS_JOBS`, `BENCH_DEATH_EVENTS`,
`BENCH_RERUN_EVENTS`, `BENCH_NODE_LOSS_JOBS`, `BENCH_STUCK_EVENTS`, `BENCH_HEALTHY_JOBS`,
`BENCH_RESCUER_AFTER_S`, `BENCH_SCALE_PODS`, `BENCH_IDLE_JOBS`, `BENCH_IDLE_WINDOW_S`,
`BENCH_POLL_INTERVAL_S`, `BENCH_NODE_MONITOR_GRACE`, and for the `policies` section
`BENCH_POLICY_SIZES`, `BENCH_POLICY_NAMESPACES`, `BENCH_POLICY_JOBS`,
`BENCH_POLICY_CONNECTION_CAP`, and for the `realnode` section `BENCH_REAL_NODE_OOMS` (kubelet,
containerd and runc from source, the operator from its image; alone with
`BENCH_SECTIONS=realnode`).
A figure whose size was not run stays `null` ("not measured").

Measured on: {machine}.

## Figures

"""


def render(results: dict[str, Any]) -> str:
    meta = results.get("meta") or {}
    values = {key: results.get(key) for key in FIGURE_KEYS}
    parts = [HEADER.format(machine=meta.get("machine", "unknown")), table_markdown(values)]
    config = meta.get("config")
    if config:
        sizes = ", ".join(f"{k}={v}" for k, v in config.items())
        parts.append(f"\nRun configuration: {sizes}.\n")
    if NOTES.exists():
        parts.append("\n" + NOTES.read_text())
    details = {k: v for k, v in meta.items() if k not in ("machine", "config")}
    if details:
        parts.append(
            "\n## Raw details of this run\n\n```json\n"
            + json.dumps(details, indent=2, default=str)
            + "\n```\n"
        )
    return "".join(parts)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    results = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
