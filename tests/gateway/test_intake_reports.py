"""The gateway ↔ intake process protocol: what the child reports, how the gateway reads it, start and stop."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from factories import envelope
from gateway.config import Config
from gateway.intake_process import IntakeProcess, IntakeProcessError, _Reports
from gateway.runtime import Gateway
from gateway.store import IngestResult, PageCounts

APPROVAL = "approval.decided"


def config(tmp_path: Path, **deadlines: Any) -> Config:
    return Config.model_validate(
        {
            "gateway": {"db": str(tmp_path / "shenguan.db"), "shutdown_grace_s": 5},
            "deadlines": {"calendar_dir": str(tmp_path / "calendar"), **deadlines},
            "sources": {
                "zwfw": {"adapter": "zwfw", "base_url": "http://127.0.0.1:9/zwfw", "paasid": "p", "token": "t"},
                "pushed": {
                    "adapter": "zwfw",
                    "base_url": "http://127.0.0.1:9/zwfw",
                    "paasid": "p",
                    "token": "t",
                    "mode": "push",
                    "ingest": {"auth": "api_key", "api_keys": ["k"]},
                },
            },
        }
    )


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


class Recorder:
    def __init__(self) -> None:
        self.pages: list[tuple[str, PageCounts]] = []
        self.wakes = 0

    def ingested(self, source: str, counts: PageCounts) -> None:
        self.pages.append((source, counts))

    def wake(self) -> None:
        self.wakes += 1


def handle(tmp_path: Path, recorder: Recorder) -> IntakeProcess:
    return IntakeProcess(config(tmp_path), instance_id="i", on_ingested=recorder.ingested, on_wake=recorder.wake)


def test_a_page_report_carries_the_counts_the_metrics_need(tmp_path: Path) -> None:
    result = IngestResult()
    first, again, other = envelope("A"), envelope("B"), envelope("C")
    result.record_accepted(first, "new", routed=True)
    result.record_accepted(other, "revision", routed=False)
    result.record_suppressed(again, "duplicate", first.id)
    result.rejected = 2
    read, write = os.pipe()
    try:
        _Reports(write).ingested("zwfw", result)
        line = os.read(read, 65536)
    finally:
        os.close(read)
        os.close(write)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one report, one line
    recorder = Recorder()
    handle(tmp_path, recorder)._apply(json.loads(line))
    assert recorder.pages == [
        (
            "zwfw",
            PageCounts(
                {(APPROVAL, "new"): 1, (APPROVAL, "revision"): 1, (APPROVAL, "duplicate"): 1},
                accepted=2,
                rejected=2,
                unrouted=1,
            ),
        )
    ]
    assert recorder.pages[0][1] == result.counts()


async def test_progress_wake_and_failure_reports_update_the_gateways_view(tmp_path: Path) -> None:
    recorder = Recorder()
    intake = handle(tmp_path, recorder)
    assert [s.name for s in intake.sources] == ["zwfw"]  # a push-only source is never polled
    assert not intake.sources[0].caught_up
    progress = {"zwfw": [True, True], "gone": [True, True]}  # a source the child knows and the gateway does not
    intake._apply({"event": "progress", "sources": progress, "deadlines": {"claim": 3}})
    assert intake.sources[0].caught_up and intake.sources[0].caught_up_once
    assert await intake.deadline_risk() == {("claim",): 3.0}
    intake._apply({"event": "wake"})
    intake._apply({"event": "mystery"})  # a newer child's report: logged, not fatal
    intake._apply({"event": "failed", "error": "boom"})
    assert recorder.wakes == 1 and intake._error == "boom"


async def test_the_gateway_starts_and_stops_its_intake_process(tmp_path: Path) -> None:
    gateway = Gateway(config(tmp_path), intake="process")
    await gateway.start()
    try:
        assert isinstance(gateway.intake, IntakeProcess)
        pid = gateway.intake.pid
        assert pid is not None
        assert b"gateway.intake_process" in cmdline(pid)
        assert gateway.deadlines is None  # the tracker runs in the child
        assert gateway.failed_task() is None
    finally:
        await gateway.stop()
    assert gateway.intake._proc is not None and gateway.intake._proc.returncode == 0


async def test_an_intake_process_that_fails_to_start_fails_the_gateway_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "calendar").mkdir()
    (tmp_path / "calendar" / "2027.json").write_text("{not json")
    gateway = Gateway(config(tmp_path), intake="process")
    with pytest.raises(IntakeProcessError, match="holiday schedule is invalid"):
        await gateway.start()
    assert gateway.relay is not None and not gateway._tasks  # everything started was stopped again
