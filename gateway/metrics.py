"""Prometheus metrics of one gateway: counted at the event, or read at scrape time.

Two kinds of figures, kept apart on purpose:

- **Events** (messages in, attempts and their outcomes, retries, relay latency, breaker openings, push
  requests) are counters and a histogram updated where they happen — in memory, no store access, so the
  hot path pays a dictionary lookup per message, never a query.
- **State** (deliveries by state, the age of the oldest delivery still moving, breaker state, deadlines at
  risk) is read when Prometheus scrapes ``/metrics``: one store query per scrape, whatever the traffic.
  State gauges computed at the event would drift after a restart or on a second instance; read from the
  store they are the truth.

Each ``Gateway`` owns a ``CollectorRegistry`` of its own rather than the process-global one, so tests
(and a process embedding several gateways) can build as many as they like without name clashes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.breaker import BreakerState
from gateway.store.base import DeliveryState, IngestResult, LeasedDelivery, Outcome, PageCounts

__all__ = ["DeadlineRisk", "GatewayMetrics", "metrics_router"]

# Relay latency (acceptance → delivered): sub-second on a healthy link, hours when a receiver was down.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)

# Deadline risk, filled in by whoever tracks statutory deadlines: label values → count of items at risk.
DeadlineRisk = Callable[[], Awaitable[Mapping[tuple[str, ...], float]]]


class GatewayMetrics:
    """The metrics of one gateway. Also a ``RelayObserver`` (``on_outcome``, ``on_breaker_open``)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "shenguan_messages_in",
            "Records received from sources, by the dedup verdict (new, revision, duplicate, stale) or rejected",
            ["source", "type", "verdict"],
            registry=r,
        )
        self.messages_out = Counter(
            "shenguan_messages_out", "Messages delivered to a destination", ["destination", "type"], registry=r
        )
        self.attempts = Counter(
            "shenguan_delivery_attempts",
            "Delivery attempts by the state they left the delivery in",
            ["destination", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "shenguan_delivery_retries", "Attempts that failed and were scheduled again", ["destination"], registry=r
        )
        self.latency = Histogram(
            "shenguan_relay_latency_seconds",
            "From acceptance (the delivery was stored) to the receiver holding it",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_openings = Counter(
            "shenguan_breaker_openings", "Times a destination's circuit breaker opened", ["destination"], registry=r
        )
        self.ingest_requests = Counter(
            "shenguan_ingest_requests",
            "Push requests to /ingest/{source} by HTTP status",
            ["source", "status"],
            registry=r,
        )
        self.alerts = Counter("shenguan_alerts", "Operator alerts fired", ["kind"], registry=r)
        self._state = _StateCollector()
        r.register(self._state)
        self._store_reader: Callable[[], Awaitable[dict[str, Any]]] | None = None
        self._breakers: Callable[[], Mapping[str, BreakerState]] | None = None
        self._deadline_risk: tuple[DeadlineRisk, tuple[str, ...]] | None = None

    # -- sources of scrape-time state -------------------------------------------------------------------

    def read_store_with(self, reader: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """``reader()`` → ``{"by_state": {(destination, state): n}, "oldest_open": {destination: created_at}}``."""
        self._store_reader = reader

    def read_breakers_with(self, breakers: Callable[[], Mapping[str, BreakerState]]) -> None:
        self._breakers = breakers

    def read_deadline_risk_with(self, reader: DeadlineRisk, labels: Iterable[str] = ("kind",)) -> None:
        """Hook for the deadline tracker: ``reader()`` → {label values: open items whose deadline is at risk}."""
        self._deadline_risk = (reader, tuple(labels))

    # -- events -----------------------------------------------------------------------------------------

    def ingested(self, source: str, result: IngestResult | PageCounts) -> None:
        """A page (poll) or a push was stored: count each record by type and verdict."""
        counts = result.counts() if isinstance(result, IngestResult) else result
        for (type_, verdict), n in counts.verdicts.items():
            self.messages_in.labels(source, type_, verdict).inc(n)
        if counts.rejected:
            self.messages_in.labels(source, "unknown", "rejected").inc(counts.rejected)

    def on_outcome(self, destination: str, delivery: LeasedDelivery, outcome: Outcome) -> None:
        state = outcome.state.value
        self.attempts.labels(destination, state).inc()
        if outcome.state == DeliveryState.retry_wait:
            self.retries.labels(destination).inc()
        elif outcome.state == DeliveryState.delivered:
            self.messages_out.labels(destination, delivery.type or "unknown").inc()
            if delivery.accepted_at is not None:
                self.latency.labels(destination).observe(max(0.0, self._clock() - delivery.accepted_at))

    def on_breaker_open(self, destination: str) -> None:
        self.breaker_openings.labels(destination).inc()

    # -- scrape -----------------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the scrape-time state (one store query); ``render`` then reports it."""
        snapshot: dict[str, Any] = {"now": self._clock()}
        if self._store_reader is not None:
            snapshot.update(await self._store_reader())
        if self._breakers is not None:
            snapshot["breakers"] = dict(self._breakers())
        if self._deadline_risk is not None:
            reader, labels = self._deadline_risk
            snapshot["deadline_risk"] = (labels, dict(await reader()))
        self._state.snapshot = snapshot

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges built from the last snapshot taken by ``GatewayMetrics.refresh``."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}

    def describe(self) -> list[Any]:
        return []  # dynamic: nothing to check at registration

    def collect(self) -> Iterable[Any]:
        snap = self.snapshot
        now = snap.get("now", time.time())
        by_state = GaugeMetricFamily(
            "shenguan_deliveries",
            "Deliveries by destination and state (read from the store)",
            labels=["destination", "state"],
        )
        seen_dests: set[str] = set()
        for (dest, state), n in sorted(snap.get("by_state", {}).items()):
            by_state.add_metric([dest, state], n)
            seen_dests.add(dest)
        yield by_state
        oldest = GaugeMetricFamily(
            "shenguan_oldest_open_delivery_age_seconds",
            "Age of the oldest delivery still pending, in flight or waiting to retry (0 when none)",
            labels=["destination"],
        )
        open_since = snap.get("oldest_open", {})
        for dest in sorted(seen_dests | set(open_since) | set(snap.get("breakers", {}))):
            since = open_since.get(dest)
            oldest.add_metric([dest], max(0.0, now - since) if since is not None else 0.0)
        yield oldest
        if "breakers" in snap:
            breaker = GaugeMetricFamily(
                "shenguan_breaker_state",
                "Circuit breaker of each destination: 1 for its current state",
                labels=["destination", "state"],
            )
            for dest, current in sorted(snap["breakers"].items()):
                for state in BreakerState:
                    breaker.add_metric([dest, state.value], 1.0 if state == current else 0.0)
            yield breaker
        if "deadline_risk" in snap:
            labels, values = snap["deadline_risk"]
            risk = GaugeMetricFamily(
                "shenguan_deadlines_at_risk",
                "Open statutory deadlines (时限) at risk of being missed",
                labels=list(labels),
            )
            for key, n in sorted(values.items()):
                risk.add_metric(list(key), n)
            yield risk


def metrics_router(metrics: Callable[[], GatewayMetrics]) -> APIRouter:
    """``GET /metrics`` in Prometheus text format."""
    router = APIRouter()

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
    )
    async def scrape() -> Response:
        m = metrics()
        await m.refresh()
        return Response(m.render(), media_type=CONTENT_TYPE_LATEST)

    return router
