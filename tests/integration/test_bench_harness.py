"""The bench harness on tiny sizes: `make bench` must not rot between full runs.

Runs `python -m bench` as `make bench` does (its database section, on the real PostgreSQL and
River schema, with the real Go heartbeat middleware) and checks both output files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.cluster import _go_duration, river_rescue_after_default, river_rescuer_interval
from bench.figures import FIGURE_KEYS, FIGURES
from bench.scans import round_trips

from devenv.tools import repo_root

pytestmark = pytest.mark.integration

TINY = {
    "BENCH_SECTIONS": "database",
    "BENCH_SIZES": "50,200",
    "BENCH_SCAN_REPEATS": "2",
    "BENCH_WAL_JOBS": "300",
    "BENCH_WAL_BEATS": "100",
    "BENCH_BEAT_CONCURRENCY": "2",
    "BENCH_HEARTBEAT_ROWS_JOBS": "200",
}


@pytest.fixture(scope="module")
def bench_run(state_dir: Path) -> tuple[dict[str, object], str]:
    # Under the session's state folder: PostgreSQL (run as `postgres`) must reach it.
    out = state_dir / "bench"
    root = repo_root()
    env = {**os.environ, **TINY, "PYTHONPATH": f"{root / 'tests'}{os.pathsep}{root}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--out", str(out)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    results = json.loads((out / "results.json").read_text())
    return results, (out / "results.md").read_text()


def test_results_json_has_every_figure_key_of_the_issue(
    bench_run: tuple[dict[str, object], str],
) -> None:
    results, _ = bench_run
    assert set(results) == {*FIGURE_KEYS, "meta"}
    # The keys are fixed by issue 8: a rename breaks whoever reads the file.
    assert "infra_death_to_retryable_p99_s" in results
    assert "heartbeat_wal_ratio_metadata_over_table" in results


def test_database_section_measures_scans_round_trips_and_wal(
    bench_run: tuple[dict[str, object], str],
) -> None:
    results, _ = bench_run
    meta = results["meta"]
    assert isinstance(meta, dict)
    assert set(meta["scans"]) >= {"50", "200"}
    assert all(meta["scans"][size]["median_s"] > 0 for size in ("50", "200"))
    breakdown = meta["scans"]["200"]["breakdown"]
    assert set(breakdown) == {"server_s", "fetch_text_s", "fetch_binary_s", "river_fetch_s"}
    assert all(seconds > 0 for seconds in breakdown.values())
    # Sizes not run leave their figure empty instead of reporting another size's number.
    assert results["scan_1k_running_s"] is None
    assert results["scan_queries_per_policy"] == 1
    table = results["heartbeat_wal_bytes_per_beat_table"]
    metadata = results["heartbeat_wal_bytes_per_beat_metadata"]
    assert isinstance(table, float) and isinstance(metadata, float)
    assert 0 < table < metadata
    assert results["heartbeat_wal_ratio_metadata_over_table"] == pytest.approx(
        metadata / table, rel=0.01
    )
    assert isinstance(results["heartbeat_beats_per_s_table"], float)
    assert results["heartbeat_beats_per_s_table"] > 0
    # 200 jobs, not 10k: the figure stays empty, the details show the table ended empty.
    assert results["heartbeat_rows_after_10k_jobs"] is None
    rows = meta["heartbeat_rows"]
    assert rows["jobs"] == 200 and rows["crashed_mid_job"] == 2
    assert rows["rows_after_the_crash"] == 2 and rows["pruned"] == 1
    assert rows["rows_after_pruning"] == 0 and rows["running_jobs"] == 0
    # The cluster section did not run: its figures are null, not zero.
    assert results["operator_rss_mb_10k_pods"] is None
    assert results["false_rescues"] is None


def test_results_md_tables_each_figure_with_its_target_and_method(
    bench_run: tuple[dict[str, object], str],
) -> None:
    _, markdown = bench_run
    rows = {line.split("|")[1].strip(): line for line in markdown.splitlines() if "| `" in line}
    for figure in FIGURES:
        row = rows[f"`{figure.key}`"]
        assert figure.method[:40] in row
        if figure.target:
            assert figure.target in row
    assert "not measured" in rows["`operator_rss_mb_10k_pods`"]
    assert "meets" in rows["`scan_queries_per_policy`"]


def test_round_trips_count_syncs_and_simple_queries_sent_by_the_client() -> None:
    trace = "\n".join(
        [
            '2026-01-01 00:00:00.000000\tF\t120\tParse\t "" "SELECT 1" 0',
            '2026-01-01 00:00:00.000000\tF\t12\tBind\t "" "" 0 0 0',
            "2026-01-01 00:00:00.000000\tF\t4\tSync",
            "2026-01-01 00:00:00.000001\tB\t4\tParseComplete",
            '2026-01-01 00:00:00.000002\tF\t13\tQuery\t "SELECT 2"',
            "2026-01-01 00:00:00.000003\tB\t5\tReadyForQuery\t I",
        ]
    )
    assert round_trips(trace) == 2
    assert round_trips("") == 0


def test_river_rescuer_defaults_are_read_from_rivers_own_source() -> None:
    # River v0.51.2: JobRescuerRescueAfterDefault = time.Hour, JobRescuerIntervalDefault = 30s.
    assert river_rescue_after_default() == 3600.0
    assert river_rescuer_interval() == 30.0


def test_go_durations_of_constants_parse_with_and_without_a_factor() -> None:
    source = "const (\n\tA = time.Hour\n\tB    = 30 * time.Second\n\tC = 5 * time.Minute\n)"
    assert [_go_duration(source, name) for name in "ABC"] == [3600.0, 30.0, 300.0]
    with pytest.raises(ValueError, match="D not found"):
        _go_duration(source, "D")
