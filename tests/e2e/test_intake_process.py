"""``shenguan serve`` runs its intake (pollers, deadline tracker) in a child process: the process boundary under faults.

The child is tied to its gateway both ways: a SIGKILLed gateway takes its intake process with it (no orphan
left reading the feed when the gateway restarts), a killed intake process stops the gateway with a non-zero
exit (a supervisor restarts it), and in both cases the restart relays every fact exactly once — a page the
child was storing when it died was rolled back and is read again, never stored twice.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import FAST_RETRIES, Gateway, Mocks, free_port, relay_config, wait_for

UNIQUE = 1500


def write_config(path: Path, mocks: Mocks, db: Path, *, intake: str = "process", listen: str = "127.0.0.1:0") -> None:
    path.write_text(
        relay_config(
            mocks,
            db,
            gateway={"listen": listen, "intake": intake},
            deadlines={"calendar_dir": str(path.parent / "calendar")},
            zwfw={"page_size": 50},
            hlwjg={"timeout_s": 5, "concurrency": 8, **FAST_RETRIES},
        )
    )


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[tuple[Mocks, Gateway]]:
    """The mocks, and a ``shenguan serve`` (not started) configured against them; both stopped afterwards."""
    mocks = Mocks(tmp_path)
    gateway = Gateway(tmp_path / "shenguan.toml", tmp_path)
    write_config(gateway.config, mocks, tmp_path / "shenguan.db")
    try:
        yield mocks, gateway
    finally:
        if gateway.alive():
            gateway.kill()
        mocks.close()


def log_events(gateway: Gateway, event: str) -> list[dict]:
    """The JSON log lines named ``event`` of the gateway's latest start."""
    text = (gateway.log_dir / f"serve-{gateway.starts}.log").read_text(errors="replace")
    lines = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("event") == event:
            lines.append(item)
    return lines


def intake_pid(gateway: Gateway) -> int:
    started = wait_for(lambda: log_events(gateway, "intake.started"), 30, f"the intake process\n{gateway.logs()}")
    pid = int(started[-1]["pid"])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"gateway.intake_process" in cmdline
    assert os.getpgid(pid) != os.getpgid(gateway.proc.pid)  # its own group: a terminal's Ctrl-C goes to serve only
    assert os.getsid(pid) == os.getsid(gateway.proc.pid)  # the gateway's session: one CPU share (autogroup)
    # The default intake_nice: the relay gets the CPU first.
    assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, gateway.proc.pid) + 5
    return pid


def gone(pid: int) -> bool:
    """No such process any more (a zombie awaiting its reaper counts as gone: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def relayed_exactly_once(mocks: Mocks, gateway: Gateway, unique: int) -> None:
    wait_for(lambda: mocks.records("hlwjg")["accepted"] >= unique, 180, f"all relayed\n{gateway.logs()}")
    wait_for(lambda: gateway.status()["deliveries"]["delivered"] >= unique, 60, "every delivery recorded")
    held = mocks.records("hlwjg")
    assert held["accepted"] == unique and held["duplicate_creations"] == 0
    status = gateway.status()
    assert status["messages"] == unique  # no page stored twice by two intakes, or by one after a rollback
    assert status["duplicates_suppressed"] == 0
    assert status["deliveries"]["delivered"] == unique
    assert sum(status["deliveries"].values()) == unique


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_sigkilled_gateway_takes_its_intake_process_with_it(platforms: tuple[Mocks, Gateway]) -> None:
    mocks, gateway = platforms
    mocks.post("/zwfw/_mock/generate", {"count": UNIQUE, "seed": 3, "duplicate_rate": 0, "revision_rate": 0})
    mocks.faults("hlwjg", latency_ms=20)  # keep the relay behind the intake, so the kill lands mid-run
    gateway.start()
    child = intake_pid(gateway)
    wait_for(lambda: mocks.records("hlwjg")["accepted"] >= 100, 60, f"relaying\n{gateway.logs()}")
    gateway.kill()
    wait_for(lambda: gone(child), 5, "the intake process to die with its gateway")
    mocks.faults("hlwjg", latency_ms=0)
    gateway.start()
    assert intake_pid(gateway) != child
    relayed_exactly_once(mocks, gateway, UNIQUE)
    assert gateway.terminate() == 0


def test_a_killed_intake_process_stops_serve_and_the_restart_loses_nothing(platforms: tuple[Mocks, Gateway]) -> None:
    mocks, gateway = platforms
    mocks.post("/zwfw/_mock/generate", {"count": UNIQUE, "seed": 4, "duplicate_rate": 0, "revision_rate": 0})
    mocks.faults("zwfw", latency_ms=300)  # slow pages: the kill lands while the feed is being read
    gateway.start()
    child = intake_pid(gateway)
    wait_for(lambda: gateway.status()["messages"] >= 200, 60, f"ingesting\n{gateway.logs()}")
    os.kill(child, signal.SIGKILL)
    assert gateway.proc is not None
    code = gateway.proc.wait(30)
    assert code != 0
    failed = log_events(gateway, "serve.failed")
    assert failed and "intake process" in failed[0]["error"] and "-9" in failed[0]["error"]
    assert 200 <= gateway.status()["messages"] < UNIQUE  # it stopped mid-feed
    mocks.faults("zwfw", latency_ms=0)
    gateway.start()
    relayed_exactly_once(mocks, gateway, UNIQUE)
    assert gateway.terminate() == 0


def test_an_intake_process_that_cannot_start_fails_serve_with_its_reason(
    platforms: tuple[Mocks, Gateway], tmp_path: Path
) -> None:
    _mocks, gateway = platforms
    (tmp_path / "calendar").mkdir()
    (tmp_path / "calendar" / "2027.json").write_text("{not json")  # the deadline tracker refuses to start
    gateway.start()
    assert gateway.proc is not None
    assert gateway.proc.wait(60) != 0
    log = gateway.logs()
    assert "holiday schedule is invalid" in log and "2027.json" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("intake", ["process", "inline"])
def test_metrics_count_what_the_intake_stored_in_either_mode(
    platforms: tuple[Mocks, Gateway], tmp_path: Path, intake: str
) -> None:
    mocks, gateway = platforms
    port = free_port()
    generated = mocks.post("/zwfw/_mock/generate", {"count": 40, "seed": 5, "duplicate_rate": 0.25})["generated"]
    write_config(gateway.config, mocks, tmp_path / "shenguan.db", intake=intake, listen=f"127.0.0.1:{port}")
    gateway.start()
    wait_for(lambda: mocks.records("hlwjg")["accepted"] >= 40, 60, f"relayed\n{gateway.logs()}")
    (started,) = log_events(gateway, "gateway.started")
    assert started["intake"] == intake
    assert bool(log_events(gateway, "intake.started")) == (intake == "process")

    def counted() -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        out = {}
        for line in text.splitlines():
            if line.startswith("shenguan_messages_in_total{"):
                labels, value = line.rsplit(" ", 1)
                out[labels.split('verdict="')[1].split('"')[0]] = float(value)
        return out

    def all_counted() -> dict[str, float] | None:
        counts = counted()
        return counts if sum(counts.values()) == generated else None

    counts = wait_for(all_counted, 30, "every item counted")
    assert counts == {"new": 40, "duplicate": generated - 40}
    assert gateway.status()["duplicates_suppressed"] == generated - 40 > 0
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    started_at = time.monotonic()
    assert gateway.terminate() == 0
    assert time.monotonic() - started_at < 15
    assert log_events(gateway, "gateway.stopped")
