"""Alerts fire once per subject and state change: not per retry, not again after a restart.

The webhook receiver is a respx route that counts what it got; the destination is a scripted fake that
fails as often as the test says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import tenacity
from structlog.testing import capture_logs

from adapters import RetryableError
from factories import envelope
from fakes import FakeDestination, Receiver
from gateway.alerts import AlertSink, AlertWatcher, alert_for
from gateway.audit import AuditEntry
from gateway.config import AlertSettings, DestinationConfig
from gateway.relay import Destination, Relay
from gateway.store import Rejection, Route
from gateway.store.sqlite import SQLiteStore

HOOK = "http://alerts.test/hook"
FAST = {
    "adapter": "fake",
    "concurrency": 1,
    "backoff_initial_s": 0.001,
    "backoff_max_s": 0.002,
    "backoff_jitter_s": 0.0,
    "breaker_failures": 1000,
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "a.db", synchronous="NORMAL")
    await s.open()
    yield s
    await s.close()


def sink(**settings: Any) -> AlertSink:
    return AlertSink(AlertSettings.model_validate({"webhook": HOOK} | settings), retry_wait=tenacity.wait_none())


def failing(times: int) -> Callable[[Any, int], Any]:
    return lambda _env, n: RetryableError(f"HTTP 503 (failure {n})") if n <= times else None


async def relay_until(
    store: SQLiteStore, adapter: FakeDestination, done: Callable[[dict], bool], **config: Any
) -> None:
    dest = Destination("hlwjg", adapter, DestinationConfig.model_validate(FAST | config))
    alerts = config.pop("_sink", None)
    relay = Relay(store, {"hlwjg": dest}, owner="t", idle_s=0.005, observers=(alerts,) if alerts else ())
    await relay.recover()
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(30):
            while not done((await store.status())["deliveries"]):  # type: ignore[arg-type]  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        relay.stop()
        await task


def posted(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


async def test_fifty_failures_then_dead_is_one_alert_and_a_restart_fires_nothing_again(store: SQLiteStore) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("hlwjg")])
    adapter = FakeDestination(Receiver(), script=failing(1000))
    await relay_until(store, adapter, lambda d: d["dead"] == 1, max_attempts=50, breaker_failures=1000)
    assert adapter.calls == 50, "the destination failed 50 times"
    async with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=httpx.Response(200))
        first = sink()
        with capture_logs() as logs:
            assert await AlertWatcher(store, first).scan() == 1
        await first.aclose()
        [alert] = posted(hook)
        assert alert["kind"] == "delivery.dead" and alert["detail"]["attempt"] == 50
        assert alert["detail"]["destination"] == "hlwjg" and alert["key"].startswith("audit:")
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["alert"]

        restarted = sink()  # a new process on the same store
        assert await AlertWatcher(store, restarted).scan() == 0
        await restarted.aclose()
        assert hook.call_count == 1


async def test_retries_that_end_delivered_raise_no_alert(store: SQLiteStore) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("hlwjg")])
    await relay_until(
        store, FakeDestination(Receiver(), script=failing(49)), lambda d: d["delivered"] == 1, max_attempts=60
    )
    async with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=httpx.Response(200))
        s = sink()
        assert await AlertWatcher(store, s).scan() == 0
        await s.aclose()
    assert hook.call_count == 0


async def test_a_breaker_opening_is_one_alert_however_often_its_probes_fail(store: SQLiteStore) -> None:
    envs = [envelope(f"3207002611210000{i:05d}") for i in range(3)]
    await store.ingest_page("zwfw", envs, [], "1", lambda _e: [Route("hlwjg")])
    async with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=httpx.Response(200))
        s = sink()
        adapter = FakeDestination(Receiver(), script=failing(50))
        await relay_until(
            store,
            adapter,
            lambda d: d["delivered"] == 3,
            max_attempts=100,
            breaker_failures=5,
            breaker_cooldown_s=0.01,
            _sink=s,
        )
        await s.aclose()
    assert adapter.calls >= 50
    kinds = [a["kind"] for a in posted(hook)]
    assert kinds == ["breaker.open"], "one opening; failed probes re-open it without a new alert"


async def test_each_kind_of_alert_fires_once(store: SQLiteStore) -> None:
    unrouted = envelope("U")
    await store.ingest_page(
        "zwfw",
        [envelope("A"), unrouted],
        [Rejection("zwfw", "missing field PROJID", "{}", "p#1")],
        "1",
        lambda e: [] if e.id == unrouted.id else [Route("hlwjg")],
    )
    await relay_until(store, FakeDestination(Receiver(), script=failing(99)), lambda d: d["dead"] == 1, max_attempts=2)
    async with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=httpx.Response(200))
        s = sink()
        watcher = AlertWatcher(store, s)
        assert await watcher.scan() == 3
        assert await watcher.scan() == 0
        await s.aclose()
    alerts = {a["kind"]: a for a in posted(hook)}
    assert set(alerts) == {"message.unrouted", "message.rejected", "delivery.dead"}
    assert "missing field PROJID" in alerts["message.rejected"]["summary"]
    assert alerts["message.unrouted"]["subject"] == unrouted.id


async def test_the_webhook_is_retried_and_a_lost_alert_is_logged(store: SQLiteStore) -> None:
    await store.ingest_page("zwfw", [], [Rejection("zwfw", "bad", "{")], "1", lambda _e: [])
    async with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(
            side_effect=[httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(200)]
        )
        s = sink()
        assert await AlertWatcher(store, s).scan() == 1
        await s.aclose()
        assert hook.call_count == 3 and s.lost == 0

    await store.ingest_page("zwfw", [], [Rejection("zwfw", "bad again", "{")], "2", lambda _e: [])
    async with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=httpx.Response(500))
        s = sink(webhook_attempts=4)
        with capture_logs() as logs:
            assert await AlertWatcher(store, s).scan() == 1
        await s.aclose()
        assert hook.call_count == 4 and s.lost == 1
        assert any(e["event"] == "alert.webhook_failed" for e in logs)


async def test_without_a_webhook_alerts_are_log_lines() -> None:
    s = AlertSink(AlertSettings())
    entry = AuditEntry(7, 1.0, "delivery.uncertain", "12", '{"destination": "hlwjg"}', "0" * 64, "1" * 64)
    alert = alert_for(entry)
    assert alert is not None
    with capture_logs() as logs:
        assert await s.fire(alert)
    assert (
        logs[0]["event"] == "alert" and logs[0]["log_level"] == "warning" and logs[0]["alert"] == "delivery.uncertain"
    )
    await s.aclose()


@pytest.mark.parametrize(
    ("kind", "detail", "expected"),
    [
        ("delivery.dead", {"destination": "d"}, "delivery.dead"),
        ("delivery.uncertain", {}, "delivery.uncertain"),
        ("delivery.paper_pending", {}, "delivery.paper_pending"),
        ("delivery.retry_wait", {}, None),
        ("delivery.delivered", {}, None),
        ("message.accepted", {"routes": ["hlwjg:platform"]}, None),
        ("message.accepted", {"routes": []}, "message.unrouted"),
        ("message.suppressed", {"verdict": "duplicate"}, None),
        ("message.rejected", {"reason": "x"}, "message.rejected"),
        ("paper.electronic_success", {}, "paper.flagged"),
        ("paper.confirmed", {}, None),
    ],
)
def test_which_audit_entries_call_for_an_alert(kind: str, detail: dict, expected: str | None) -> None:
    alert = alert_for(AuditEntry(1, 1.0, kind, "s", json.dumps(detail), "0" * 64, "1" * 64))
    assert (alert.kind if alert else None) == expected


def test_full_mode_payloads_stay_out_of_alerts() -> None:
    detail = {"routes": [], "payload": {"applicant": {"phone": "13800138000"}}}
    alert = alert_for(AuditEntry(1, 1.0, "message.accepted", "m", json.dumps(detail), "0" * 64, "1" * 64))
    assert alert is not None and "13800138000" not in json.dumps(alert.detail) + alert.summary
