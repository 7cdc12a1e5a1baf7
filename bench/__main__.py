"""`python -m bench`: runs the selected sections and writes results.json and results.md.

    PYTHONPATH=tests:. .venv/bin/python -m bench [--out build/bench]
    PYTHONPATH=tests:. .venv/bin/python -m bench.doc   # docs/performance.md from the results

A section that fails is logged with its traceback, its figures stay null, and the run exits
non-zero after writing what it measured.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
import traceback
from pathlib import Path

from bench.cluster import run_cluster
from bench.config import BenchConfig
from bench.database import run_database
from bench.figures import Results, write
from bench.policies import run_policies
from bench.realnode import run_realnode

log = logging.getLogger("bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument(
        "--keep-state", action="store_true", help="keep <out>/state (databases, logs) after a run"
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Absolute: daemons (node agents) run in their own folders and get paths under this one.
    options.out = options.out.resolve()
    config = BenchConfig.from_env(options.out)
    state_dir = options.out / "state" / time.strftime("%Y%m%d-%H%M%S")
    state_dir.mkdir(parents=True, exist_ok=True)
    results = Results()
    results.details["config"] = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in vars(config).items()
        if k != "out_dir"
    }
    failed = []
    for section in config.sections:
        started = time.monotonic()
        log.info("section %s: starting", section)
        try:
            _run_section(section, config, state_dir / section, results)
        except Exception:
            failed.append(section)
            log.error("section %s failed:\n%s", section, traceback.format_exc())
        results.details.setdefault("section_seconds", {})[section] = round(
            time.monotonic() - started, 1
        )
    json_path, md_path = write(results, options.out)
    print(md_path.read_text())
    log.info("wrote %s and %s", json_path, md_path)
    if failed:
        log.error("failed sections: %s (state kept in %s)", ", ".join(failed), state_dir)
        return 1
    if not options.keep_state:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


def _run_section(section: str, config: BenchConfig, state_dir: Path, results: Results) -> None:
    runners = {
        "database": run_database,
        "cluster": run_cluster,
        "policies": run_policies,
        "realnode": run_realnode,
    }
    runners[section](config, state_dir, results)


if __name__ == "__main__":
    sys.exit(main())
