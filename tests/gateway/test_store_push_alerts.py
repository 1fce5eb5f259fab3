"""Store methods behind push ingest, alerts and metrics, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FakeClock

from factories import envelope
from gateway.alerts import ALERT_KINDS, ALERT_MARKS
from gateway.store import DeliveryState, Outcome, Rejection, Route


async def test_a_nonce_is_spent_once_and_forgotten_after_its_window(store: Any, clock: FakeClock) -> None:
    expires = clock.now + 300
    assert await store.use_nonce("src|paas", "n1", expires) is True
    assert await store.use_nonce("src|paas", "n1", expires) is False, "replay"
    assert await store.use_nonce("other|paas", "n1", expires) is True, "scopes are separate"
    clock.advance(301)
    # by now the signature window refuses the old timestamp; the nonce row may go
    assert await store.use_nonce("src|paas", "n2", clock.now + 300) is True
    assert await store.use_nonce("src|paas", "n1", clock.now + 300) is True


async def test_a_spent_nonce_survives_reopening(store_factory: Any, clock: FakeClock) -> None:
    first = await store_factory()
    assert await first.use_nonce("s", "n", clock.now + 300)
    await first.close()
    again = await store_factory()
    assert await again.use_nonce("s", "n", clock.now + 300) is False


async def test_alert_candidates_are_only_the_entries_that_may_call_for_one(store: Any) -> None:
    routed, held = envelope("A"), envelope("B")
    rejection = Rejection("zwfw", "unreadable", "{", "p1")
    await store.ingest_page("zwfw", [routed, held], [rejection], "1", lambda e: [Route("a")] if e is routed else [])
    (leased,) = await store.lease_due(owner="me", destination="a", limit=10, lease_s=60)
    await store.complete("me", [Outcome(leased.id, DeliveryState.dead, error="refused", error_kind="permanent")])
    await store.chain_audit()  # PostgreSQL links queued entries; SQLite already has
    everything = await store.audit_entries()
    assert len(everything) >= 4

    def scan(after: int, span: int) -> Any:
        return store.alert_candidates(after_seq=after, span=span, kinds=ALERT_KINDS, detail_marks=ALERT_MARKS)

    entries, reached = await scan(0, 1000)
    assert reached == everything[-1].seq, "the span stops at the chain's tip"
    assert [(e.kind, e.subject) for e in entries] == [
        (e.kind, e.subject)
        for e in everything
        if e.kind in ("message.rejected", "delivery.dead") or (e.kind == "message.accepted" and e.subject == held.id)
    ]
    assert {e.kind for e in entries} == {"message.accepted", "message.rejected", "delivery.dead"}
    first, reached = await scan(0, 2)
    assert reached == 2 and all(e.seq <= 2 for e in first)
    rest, reached = await scan(2, 1000)
    assert first + rest == entries and reached == everything[-1].seq
    assert await scan(reached, 1000) == ([], reached), "nothing new: the span reaches no further"


async def test_alerts_are_claimed_once_and_the_scan_position_only_moves_forward(store: Any) -> None:
    assert await store.alerts_scanned() == 0
    assert await store.claim_alerts([(3, "delivery.dead", "7"), (5, "message.rejected", "r")], 10) == [3, 5]
    assert await store.alerts_scanned() == 10
    assert await store.claim_alerts([(3, "delivery.dead", "7"), (12, "delivery.dead", "8")], 12) == [12]
    assert await store.claim_alerts([], 4) == []
    assert await store.alerts_scanned() == 12, "never backwards"


async def test_delivery_metrics_count_by_destination_and_state(store: Any, clock: FakeClock) -> None:
    route = lambda _e: [Route("a"), Route("b")]  # noqa: E731
    await store.ingest_page("zwfw", [envelope("A"), envelope("B")], [], "1", route)
    start = clock.now
    clock.advance(30)
    leased = await store.lease_due(owner="me", destination="a", limit=10, lease_s=60)
    assert {d.type for d in leased} == {"approval.decided"}
    assert all(d.accepted_at == pytest.approx(start, abs=1e-4) for d in leased)  # created, not leased
    await store.complete("me", [Outcome(r.id, DeliveryState.delivered) for r in leased])
    snap = await store.delivery_metrics()
    assert snap["by_state"] == {("a", "delivered"): 2, ("b", "pending"): 2}
    assert snap["oldest_open"] == {"b": start}
