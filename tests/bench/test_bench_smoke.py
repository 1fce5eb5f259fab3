"""The benchmark's code paths with tiny counts, so that ``benchmarks/run.py`` cannot rot.

No timing is asserted (a timed assertion is not a performance test; the figures live in
docs/benchmarks.md). What is asserted is what every run must hold whatever the machine: every leg relays
every approval exactly once, the summary carries the keys the issue asks for, and the ratios are the
ratios of the figures beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pgtest import require_pg

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # benchmarks/ is not installed with the package

from benchmarks.relay import DestinationSettings  # noqa: E402
from benchmarks.run import Sizes, run, table  # noqa: E402

REQUIRED = {"ceiling_msgs_per_s", "sqlite_msgs_per_s", "sqlite_vs_ceiling", "pg1_msgs_per_s", "pg3_msgs_per_s"}
REQUIRED |= {"dedup_p99_ms_at_1m", "pg1_vs_ceiling", "pg3_vs_ceiling", "memory_200k_vs_20k"}


def tiny(count: int) -> Sizes:
    sizes = Sizes(quick=True, count=count, dedup_facts=20_000)
    sizes.memory = (100, 300)
    sizes.dedup_sample = 200
    return sizes


def script(
    name: str, *args: str, timeout: float, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<name>`` as a user would, its output captured as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        cwd=cwd,
    )


def by_leg(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {leg["leg"]: leg for leg in summary["legs"]}


def test_sqlite_ceiling_dedup_and_memory_legs_report_what_they_measured(tmp_path: Path) -> None:
    summary = run(
        tmp_path,
        tiny(150),
        legs=("ceiling", "sqlite", "dedup", "memory"),
        destination=DestinationSettings(concurrency=4),
        progress=lambda _message: None,
    )
    legs = by_leg(summary)
    assert legs["ceiling"]["messages"] == legs["sqlite"]["messages"] == 150
    assert legs["ceiling"]["failures"] == 0 and legs["sqlite"]["duplicate_creations"] == 0
    assert summary["sqlite_vs_ceiling"] == round(summary["sqlite_msgs_per_s"] / summary["ceiling_msgs_per_s"], 3)
    assert summary["sqlite_p50_ms"] <= summary["sqlite_p99_ms"]
    assert summary["sqlite_peak_rss_mb"] > 0 and legs["sqlite"]["cpu_ms_per_msg"] > 0

    dedup = legs["dedup"]
    assert dedup["facts"] == 20_000 and dedup["decisions"] == 3 * 200
    assert set(dedup) >= {"new", "duplicate", "revision"}
    assert summary["dedup_p50_ms_at_1m"] <= summary["dedup_p99_ms_at_1m"]

    assert legs["memory-100"]["messages"] == 100 and legs["memory-300"]["messages"] == 300
    expected = round(summary["memory_large_peak_rss_mb"] / summary["memory_small_peak_rss_mb"], 3)
    assert summary["memory_200k_vs_20k"] == expected

    assert summary["pg1_msgs_per_s"] is None, "legs not asked for are reported as null"
    assert REQUIRED <= set(summary)
    assert "ceiling" in table(summary) and json.loads(json.dumps(summary)) == summary


def test_postgresql_legs_with_one_and_three_instances(tmp_path: Path) -> None:
    require_pg()
    summary = run(
        tmp_path, tiny(120), legs=("pg1", "pg3"), destination=DestinationSettings(concurrency=4), progress=print
    )
    legs = by_leg(summary)
    assert summary["skipped"] == {}
    assert legs["pg1"]["instances"] == 1 and legs["pg3"]["instances"] == 3
    for leg in ("pg1", "pg3"):
        assert legs[leg]["messages"] == 120 and legs[leg]["duplicate_creations"] == 0
    assert len(legs["pg3"]["cpu_s_by_instance"]) == 3
    assert summary["pg3_vs_pg1"] == round(summary["pg3_msgs_per_s"] / summary["pg1_msgs_per_s"], 3)
    assert summary["pg3_vs_pg1_by_round"] == [summary["pg3_vs_pg1"]]  # one round: its own ratio


def test_the_command_prints_a_table_then_one_json_line(tmp_path: Path) -> None:
    out = script("run.py", "--quick", "--legs", "ceiling", "--count", "60", timeout=300, cwd=tmp_path)
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert REQUIRED <= set(summary) and summary["quick"] is True
    assert summary["ceiling_msgs_per_s"] > 0 and summary["sqlite_msgs_per_s"] is None
    assert any(line.startswith("ceiling") for line in lines[:-1]), "the human table comes first"


def test_unknown_legs_are_refused(tmp_path: Path) -> None:
    out = script("run.py", "--legs", "sqlite,bogus", timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 2 and "unknown legs: bogus" in out.stderr


@pytest.mark.parametrize("pct", [50, 99])
def test_percentiles_are_nearest_rank(pct: int) -> None:
    from benchmarks.stats import percentile_ms

    samples = [i / 1000 for i in range(1, 101)]  # 1 … 100 ms
    assert percentile_ms(samples, pct) == float(pct)
    assert percentile_ms([], pct) is None


def test_with_rounds_each_leg_keeps_its_best_and_ratios_are_the_median_of_the_rounds(tmp_path: Path) -> None:
    summary = run(
        tmp_path,
        tiny(60),
        legs=("ceiling", "sqlite"),
        destination=DestinationSettings(concurrency=4),
        repeat=3,
        progress=lambda _message: None,
    )
    ceiling, sqlite = (by_leg(summary)[leg]["runs_msgs_per_s"] for leg in ("ceiling", "sqlite"))
    assert len(ceiling) == len(sqlite) == 3
    assert summary["sqlite_msgs_per_s"] == max(sqlite) and summary["ceiling_msgs_per_s"] == max(ceiling)
    by_round = [round(s / c, 3) for s, c in zip(sqlite, ceiling, strict=True)]
    assert summary["sqlite_vs_ceiling_by_round"] == by_round
    assert summary["sqlite_vs_ceiling"] == sorted(by_round)[1]
    assert summary["sqlite_best_vs_best_ceiling"] == round(max(sqlite) / max(ceiling), 3)
    assert "sqlite ÷ ceiling" in table(summary)


def test_store_cost_reports_cpu_per_message_for_both_stores() -> None:
    require_pg()
    out = script("store_cost.py", "--count", "300", timeout=300)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for store in ("sqlite", "postgresql"):
        figures = results[store]
        assert figures["messages"] == 300
        assert figures["ingest_client_ms"] > 0 and figures["lease_complete_client_ms"] > 0
    assert results["sqlite"]["ingest_server_ms"] is None  # in process: all of it is the client's
    server = results["postgresql"]["ingest_server_ms"]
    assert server is None or server > 0  # None when the server's process is not visible from here
