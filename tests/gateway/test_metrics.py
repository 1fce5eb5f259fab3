"""Prometheus metrics: counted at the event, state read at scrape time, one registry per gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters import RetryableError
from factories import envelope
from fakes import FakeDestination, Receiver
from gateway.config import DestinationConfig
from gateway.demo import relay_config
from gateway.http import create_app
from gateway.metrics import GatewayMetrics
from gateway.relay import Destination, Relay
from gateway.runtime import Gateway
from gateway.store import Rejection, Route
from gateway.store.sqlite import SQLiteStore
from mock_platforms.generator import generate_banjian
from mock_platforms.server import run_in_background

FAST = {
    "adapter": "fake",
    "concurrency": 2,
    "max_attempts": 5,
    "backoff_initial_s": 0.001,
    "backoff_max_s": 0.002,
    "backoff_jitter_s": 0.0,
    "breaker_failures": 1000,
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "m.db", synchronous="NORMAL")
    await s.open()
    yield s
    await s.close()


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


async def test_each_gateway_has_its_own_registry() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()  # would raise "Duplicated timeseries" on a shared registry
    a.breaker_openings.labels("hlwjg").inc()
    assert value(a, "shenguan_breaker_openings_total", destination="hlwjg") == 1
    assert value(b, "shenguan_breaker_openings_total", destination="hlwjg") is None


async def test_relay_events_and_scrape_time_state(store: SQLiteStore) -> None:
    metrics = GatewayMetrics()
    metrics.read_store_with(store.delivery_metrics)
    envs = [envelope(f"3207002611210000{i:05d}") for i in range(4)]
    result = await store.ingest_page(
        "zwfw",
        [*envs, envs[0]],
        [Rejection("zwfw", "bad", "{")],
        "1",
        lambda _e: [
            Route("fake"),
            Route("later"),
        ],
    )
    metrics.ingested("zwfw", result)
    # the first delivery attempt of each message fails once, then succeeds
    seen: set[str] = set()

    def script(env: Any, _n: int) -> Any:
        if env.business_key not in seen:
            seen.add(env.business_key)
            return RetryableError("HTTP 503")
        return None

    dest = Destination("fake", FakeDestination(Receiver(), script=script), DestinationConfig.model_validate(FAST))
    relay = Relay(store, {"fake": dest}, owner="t", idle_s=0.005, observers=(metrics,))
    metrics.read_breakers_with(lambda: {n: d.breaker.state for n, d in relay.destinations.items()})
    await relay.recover()
    task = asyncio.create_task(relay.run())
    async with asyncio.timeout(20):
        while (await store.status())["deliveries"]["delivered"] < 4:  # type: ignore[index]  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    relay.stop()
    await task
    await metrics.refresh()

    t = "approval.decided"
    assert value(metrics, "shenguan_messages_in_total", source="zwfw", type=t, verdict="new") == 4
    assert value(metrics, "shenguan_messages_in_total", source="zwfw", type=t, verdict="duplicate") == 1
    assert value(metrics, "shenguan_messages_in_total", source="zwfw", type="unknown", verdict="rejected") == 1
    assert value(metrics, "shenguan_messages_out_total", destination="fake", type=t) == 4
    assert value(metrics, "shenguan_delivery_retries_total", destination="fake") == 4
    assert value(metrics, "shenguan_delivery_attempts_total", destination="fake", outcome="retry_wait") == 4
    assert value(metrics, "shenguan_delivery_attempts_total", destination="fake", outcome="delivered") == 4
    assert value(metrics, "shenguan_relay_latency_seconds_count", destination="fake") == 4
    # scrape-time state, read from the store: "later" has no relay worker, so its four still wait
    assert value(metrics, "shenguan_deliveries", destination="fake", state="delivered") == 4
    assert value(metrics, "shenguan_deliveries", destination="later", state="pending") == 4
    assert value(metrics, "shenguan_oldest_open_delivery_age_seconds", destination="fake") == 0
    later_age = value(metrics, "shenguan_oldest_open_delivery_age_seconds", destination="later")
    assert later_age is not None and later_age > 0
    assert value(metrics, "shenguan_breaker_state", destination="fake", state="closed") == 1
    assert value(metrics, "shenguan_breaker_state", destination="fake", state="open") == 0


async def test_a_breaker_opening_is_counted_and_shown(store: SQLiteStore) -> None:
    metrics = GatewayMetrics()
    await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("fake")])
    config = DestinationConfig.model_validate(FAST | {"breaker_failures": 1, "breaker_cooldown_s": 60})
    dest = Destination("fake", FakeDestination(Receiver(), script=lambda _e, _n: RetryableError("503")), config)
    relay = Relay(store, {"fake": dest}, owner="t", idle_s=0.005, observers=(metrics,))
    metrics.read_breakers_with(lambda: {n: d.breaker.state for n, d in relay.destinations.items()})
    await relay.recover()
    task = asyncio.create_task(relay.run())
    async with asyncio.timeout(10):
        while not value(metrics, "shenguan_breaker_openings_total", destination="fake"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    relay.stop()
    await task
    await metrics.refresh()
    assert value(metrics, "shenguan_breaker_state", destination="fake", state="open") == 1


async def test_deadline_risk_hook() -> None:
    metrics = GatewayMetrics()

    async def at_risk() -> dict[tuple[str, ...], float]:
        return {("claim",): 3, ("push",): 1}

    metrics.read_deadline_risk_with(at_risk, labels=("kind",))
    await metrics.refresh()
    assert value(metrics, "shenguan_deadlines_at_risk", kind="claim") == 3


async def test_the_metrics_endpoint_of_a_running_gateway(tmp_path: Path) -> None:
    """Polled records (new, duplicate, malformed) show up by source, type and verdict at GET /metrics."""
    mocks = await run_in_background()
    try:
        cfg = relay_config(mocks.base_url, tmp_path / "g.db")
        feed = generate_banjian(3, seed=5, duplicate_rate=0.34)
        async with httpx.AsyncClient(base_url=mocks.base_url) as mock:
            await mock.post("/zwfw/_mock/inject", json={"records": [*feed, {"PROJID": "bad"}]})
        gateway = Gateway(cfg)
        await gateway.start()
        try:
            assert await gateway.wait_idle(timeout_s=20)
            transport = httpx.ASGITransport(app=create_app(gateway))
            async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
                response = await client.get("/metrics")
        finally:
            await gateway.stop()
    finally:
        await mocks.stop()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    got = {
        (s.labels["verdict"], s.labels["type"]): s.value
        for s in families["shenguan_messages_in"].samples
        if s.name.endswith("_total")
    }
    assert got == {("new", "approval.decided"): 3, ("duplicate", "approval.decided"): 1, ("rejected", "unknown"): 1}
    delivered = [s for s in families["shenguan_deliveries"].samples if s.labels["state"] == "delivered"]
    assert [(s.labels["destination"], s.value) for s in delivered] == [("hlwjg", 3)]
    assert "shenguan_breaker_state" in families and "shenguan_relay_latency_seconds" in families
