"""The database-only figures: scan time and round trips, heartbeat WAL and throughput.

They need PostgreSQL and River's schema only: a throwaway cluster under the bench's state
folder, River migrated by River's own migrator, the heartbeat table by Lifeguard's DDL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from bench import seed
from bench.config import BenchConfig
from bench.figures import Results
from bench.gobuild import heartbeatwal_binary
from bench.heartbeat_rows import run_heartbeat_rows
from bench.scans import scan_breakdown, scan_round_trips, scan_wall_time
from devenv import river
from devenv.postgres import PostgresCluster

log = logging.getLogger("bench")

SCAN_KEYS = {
    1_000: "scan_1k_running_s",
    10_000: "scan_10k_running_s",
    100_000: "scan_100k_running_s",
}
METADATA_KEY = "health_check_at"


def run_database(config: BenchConfig, state_dir: Path, results: Results) -> None:
    cluster = PostgresCluster.start(state_dir)
    try:
        dsn = river.create_database(cluster, "bench", heartbeats=True)
        _scans(config, dsn, state_dir, results)
        _heartbeats(config, dsn, results)
        # Its own database: the scans' seeded running jobs have heartbeat rows of their own.
        rows_dsn = river.create_database(cluster, "bench_rows", heartbeats=True)
        run_heartbeat_rows(config, rows_dsn, state_dir, results)
    finally:
        cluster.stop()


def _scans(config: BenchConfig, dsn: str, state_dir: Path, results: Results) -> None:
    scans: dict[str, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for size in sorted(config.scan_sizes):
            missing = size - seed.running_jobs(conn)
            if missing > 0:
                log.info("seeding %d running jobs (to %d)", missing, size)
                seed.add_running_jobs(conn, missing)
            seconds, returned = asyncio.run(
                scan_wall_time(dsn, max_jobs=size, repeats=config.scan_repeats)
            )
            capped, capped_rows = asyncio.run(
                scan_wall_time(dsn, max_jobs=10_000, repeats=config.scan_repeats)
            )
            log.info(
                "scan of %d running jobs: %.4f s (capped at 10k: %.4f s)", size, seconds, capped
            )
            if returned != size:
                raise RuntimeError(f"the scan returned {returned} jobs, expected {size}")
            scans[str(size)] = {
                "median_s": seconds,
                "breakdown": scan_breakdown(dsn, max_jobs=size, repeats=config.scan_repeats),
                "default_cap_10k_median_s": capped,
                "default_cap_rows": capped_rows,
                "repeats": config.scan_repeats,
            }
            if size in SCAN_KEYS:
                results.set(SCAN_KEYS[size], round(seconds, 4))
        scans["args_bytes_avg"] = round(seed.args_bytes(conn), 1)
    results.details["scans"] = scans
    trips = scan_round_trips(dsn, state_dir / "traces")
    results.set("scan_queries_per_policy", trips)


def _heartbeats(config: BenchConfig, dsn: str, results: Results) -> None:
    binary = heartbeatwal_binary()
    with psycopg.connect(dsn, autocommit=True) as conn:
        total = _count(conn, "SELECT count(*) FROM river_job")
        if total < config.wal_jobs:
            log.info("seeding %d more jobs for the WAL figures", config.wal_jobs - total)
            seed.add_running_jobs(conn, config.wal_jobs - total)
        for name in ("river_job", "river_job_heartbeat"):
            # Autovacuum at a random moment would add WAL that belongs to neither store's beats.
            conn.execute(f"ALTER TABLE {name} SET (autovacuum_enabled = false)")
        jobs = min(seed.running_jobs(conn), max(1, config.wal_beats // 2))

        def beat(store: str, beats: int) -> dict[str, Any]:
            conn.execute("CHECKPOINT")
            done = subprocess.run(
                [
                    str(binary),
                    "--database-url",
                    dsn,
                    "--store",
                    store,
                    "--metadata-key",
                    METADATA_KEY,
                    "--beats",
                    str(beats),
                    "--jobs",
                    str(jobs),
                    "--concurrency",
                    str(config.beat_concurrency),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=1800,
            )
            if done.returncode != 0:
                raise RuntimeError(f"heartbeatwal --store {store} failed: {done.stderr}")
            measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            if measured["applied"] != measured["beats"]:
                raise RuntimeError(f"not every beat applied: {measured}")
            return measured

        # Warm-up: each job's first Metadata beat adds the key (the row grows once); measure
        # the steady state of a long job, as for the Table store's seeded rows.
        beat("metadata", 2 * jobs)
        beat("table", 2 * jobs)
        table = beat("table", config.wal_beats)
        metadata = beat("metadata", config.wal_beats)
        for name in ("river_job", "river_job_heartbeat"):
            conn.execute(f"ALTER TABLE {name} RESET (autovacuum_enabled)")
        total = _count(conn, "SELECT count(*) FROM river_job")
    per_beat_table = table["wal_bytes"] / table["beats"]
    per_beat_metadata = metadata["wal_bytes"] / metadata["beats"]
    results.set("heartbeat_wal_bytes_per_beat_table", round(per_beat_table, 1))
    results.set("heartbeat_wal_bytes_per_beat_metadata", round(per_beat_metadata, 1))
    results.set(
        "heartbeat_wal_ratio_metadata_over_table", round(per_beat_metadata / per_beat_table, 2)
    )
    results.set("heartbeat_beats_per_s_table", round(table["beats"] / table["seconds"], 1))
    results.details["heartbeats"] = {
        "jobs_in_table": total,
        "jobs_beating": jobs,
        "table": table,
        "metadata": metadata,
        "metadata_beats_per_s": round(metadata["beats"] / metadata["seconds"], 1),
    }


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])
