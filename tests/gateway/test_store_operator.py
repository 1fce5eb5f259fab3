"""Operator look-ups and actions in the store (admin API and console build on these), on every backend.

Each action is one transaction with its audit entry naming the actor; a retry keeps the record of earlier
attempts; a replay reuses the delivery's idempotency key so an idempotent receiver cannot get a second record.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from factories import approval, envelope
from gateway.store import DeliveryState, Outcome, Route
from gateway.store.base import MessageQuery, NotFoundError, StateConflictError, idempotency_key
from schemas import Envelope
from schemas.events.supervision import SupervisionTaskCreated


def to_hlwjg(_env: Envelope) -> list[Route]:
    return [Route("hlwjg")]


async def fail_once(store: Any, state: DeliveryState, error: str = "refused: 统一社会信用代码 invalid") -> int:
    """Lease the one due hlwjg delivery and record ``state`` for it; returns its id."""
    [row] = await store.lease_due(owner="me", destination="hlwjg", limit=1, lease_s=60)
    await store.complete("me", [Outcome(row.id, state, error=error, error_kind="permanent")])
    return row.id


async def audit_kinds(store: Any) -> list[tuple[str, str, dict[str, Any]]]:
    import json

    if hasattr(store, "chain_audit"):  # PostgreSQL queues entries per transaction and chains them afterwards
        await store.chain_audit()
    return [(e.kind, e.subject, json.loads(e.detail)) for e in await store.audit_entries()]


async def test_find_messages_by_each_filter_newest_first_with_paging(store, clock) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    clock.advance(10)
    await store.ingest_page("zwfw", [envelope("B"), envelope("C")], [], "2", lambda _e: [])
    await fail_once(store, DeliveryState.dead)

    rows, total = await store.find_messages(MessageQuery())
    assert total == 3 and [r["business_key"] for r in rows][-1] == "A", "newest first"
    rows, total = await store.find_messages(MessageQuery(business_key="B"))
    assert total == 1 and rows[0]["deliveries"] == [] and rows[0]["routed"] is False
    [a] = (await store.find_messages(MessageQuery(state="dead")))[0]
    assert a["business_key"] == "A" and [d["state"] for d in a["deliveries"]] == ["dead"]
    assert (await store.find_messages(MessageQuery(message_id=a["id"])))[1] == 1
    assert (await store.find_messages(MessageQuery(correlation_id="A")))[1] == 1
    assert (await store.find_messages(MessageQuery(destination="hlwjg")))[1] == 1
    assert (await store.find_messages(MessageQuery(state="dead", destination="credit")))[1] == 0
    assert (await store.find_messages(MessageQuery(received_from=clock.now)))[1] == 2
    assert (await store.find_messages(MessageQuery(received_to=clock.now)))[1] == 1
    assert (await store.find_messages(MessageQuery(type="approval.decided", source="zwfw")))[1] == 3
    page, total = await store.find_messages(MessageQuery(limit=2, offset=2))
    assert total == 3 and len(page) == 1


async def test_message_delivery_and_attempt_log_with_errors(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    delivery_id = await fail_once(store, DeliveryState.retry_wait, "HTTP 503")
    message_id = (await store.find_messages(MessageQuery()))[0][0]["id"]
    message = await store.message(message_id)
    assert message["envelope"]["business_key"] == "A" and message["deliveries"][0]["id"] == delivery_id
    detail = await store.delivery(delivery_id)
    assert detail["state"] == "retry_wait" and detail["attempts"] == 1
    assert [(a["attempt"], a["outcome"], a["error"]) for a in detail["attempt_log"]] == [(1, "retry_wait", "HTTP 503")]
    assert await store.message("nope") is None and await store.delivery(999) is None


async def test_retry_dead_resets_the_budget_keeps_history_and_records_who(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    delivery_id = await fail_once(store, DeliveryState.dead)
    await store.retry_dead(delivery_id, actor="console:wang")

    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=1, lease_s=60)
    assert again.id == delivery_id and again.attempts == 1, "a fresh retry budget"
    assert again.idempotency_key == idempotency_key("hlwjg", envelope("A")), "the same key as before"
    await store.complete("me", [Outcome(delivery_id, DeliveryState.delivered, remote_id="T1")])
    log = (await store.delivery(delivery_id))["attempt_log"]
    assert [(a["attempt"], a["outcome"]) for a in log] == [(1, "dead"), (2, "delivered")], "attempt 1 kept"
    assert ("delivery.retried", str(delivery_id), {"actor": "console:wang", "previous": "dead"}) in await audit_kinds(
        store
    )


async def test_retry_refuses_what_is_not_dead_and_unknown_ids(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    delivery_id = (await store.deliveries(state="pending"))[0][0]["id"]
    with pytest.raises(StateConflictError, match="it is pending"):
        await store.retry_dead(delivery_id, actor="api:x")
    with pytest.raises(NotFoundError, match="no delivery 999"):
        await store.retry_dead(999, actor="api:x")
    assert not [k for k in await audit_kinds(store) if k[0] == "delivery.retried"], "a refused action leaves no entry"


async def test_resolve_uncertain_as_delivered_or_resend(store) -> None:
    await store.ingest_page("zwfw", [envelope("A"), envelope("B")], [], "1", to_hlwjg)
    [a, b] = await store.lease_due(owner="me", destination="hlwjg", limit=2, lease_s=60)
    await store.complete(
        "me", [Outcome(a.id, DeliveryState.uncertain, error="timeout"), Outcome(b.id, DeliveryState.uncertain)]
    )
    with pytest.raises(ValueError, match="delivered' or 'resend"):
        await store.resolve_uncertain(a.id, "maybe", actor="api:x")
    await store.resolve_uncertain(a.id, "delivered", actor="console:li")
    await store.resolve_uncertain(b.id, "resend", actor="console:li")
    assert (await store.delivery(a.id))["state"] == "delivered"
    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=5, lease_s=60)
    assert again.id == b.id and not again.verify_first
    with pytest.raises(StateConflictError, match="only an uncertain"):
        await store.resolve_uncertain(a.id, "resend", actor="console:li")
    entries = [k for k in await audit_kinds(store) if k[0] == "delivery.resolved"]
    assert [(e[1], e[2]["resolution"], e[2]["actor"]) for e in entries] == [
        (str(a.id), "delivered", "console:li"),
        (str(b.id), "resend", "console:li"),
    ]


async def test_replay_reopens_with_the_same_key_or_creates_the_missing_delivery(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    message_id = (await store.find_messages(MessageQuery()))[0][0]["id"]
    [row] = await store.lease_due(owner="me", destination="hlwjg", limit=1, lease_s=60)
    with pytest.raises(StateConflictError, match="already on its way"):
        await store.replay(message_id, "hlwjg", actor="api:x")
    await store.complete("me", [Outcome(row.id, DeliveryState.delivered, remote_id="T1")])

    again = await store.replay(message_id, "hlwjg", actor="api:ops")
    assert again == row.id, "one delivery per (message, destination): reopened, same idempotency key"
    [leased] = await store.lease_due(owner="me", destination="hlwjg", limit=1, lease_s=60)
    assert leased.idempotency_key == row.idempotency_key and leased.attempts == 1

    other = await store.replay(message_id, "credit", actor="api:ops")
    detail = await store.delivery(other)
    assert detail["destination"] == "credit" and detail["state"] == "pending"
    assert detail["idempotency_key"] == idempotency_key("credit", envelope("A"))
    with pytest.raises(NotFoundError):
        await store.replay("nope", "hlwjg", actor="api:ops")
    replays = [k for k in await audit_kinds(store) if k[0] == "delivery.replayed"]
    assert [(r[2]["destination"], r[2]["reopened"], r[2]["actor"]) for r in replays] == [
        ("hlwjg", True, "api:ops"),
        ("credit", False, "api:ops"),
    ]


async def test_replay_of_an_older_revision_is_refused(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    old = (await store.find_messages(MessageQuery()))[0][0]["id"]
    await store.ingest_page("zwfw", [envelope("A", revision=2, result_description="变更")], [], "2", to_hlwjg)
    with pytest.raises(StateConflictError, match="revision 2 is newer"):
        await store.replay(old, "hlwjg", actor="api:x")


async def test_replay_refuses_uncertain_and_paper_deliveries(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    message_id = (await store.find_messages(MessageQuery()))[0][0]["id"]
    delivery_id = await fail_once(store, DeliveryState.uncertain)
    with pytest.raises(StateConflictError, match="resolve it"):
        await store.replay(message_id, "hlwjg", actor="api:x")
    await store.resolve_uncertain(delivery_id, "resend", actor="api:x")
    await fail_once(store, DeliveryState.paper_pending)
    with pytest.raises(StateConflictError, match="went to paper"):
        await store.replay(message_id, "hlwjg", actor="api:x")


async def test_overview_counts_by_destination_and_oldest_waiting(store, clock) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("hlwjg"), Route("credit")])
    clock.advance(60)
    await store.ingest_page("zwfw", [envelope("B")], [], "2", to_hlwjg)
    [first, _second] = await store.lease_due(owner="me", destination="hlwjg", limit=2, lease_s=60)
    await store.complete("me", [Outcome(first.id, DeliveryState.delivered)])
    overview = await store.destination_overview()
    assert overview["hlwjg"]["counts"]["delivered"] == 1 and overview["hlwjg"]["counts"]["in_flight"] == 1
    assert overview["hlwjg"]["oldest_pending"]["business_key"] == "B"
    assert overview["credit"]["counts"]["pending"] == 1 and overview["credit"]["oldest_pending"]["business_key"] == "A"
    dead, total = await store.deliveries(state="dead")
    assert (dead, total) == ([], 0)


async def test_trace_is_the_closed_loop_in_business_time_order(store) -> None:
    decided = envelope("P1")
    task = Envelope.wrap(
        SupervisionTaskCreated(
            task_no="T-P1",
            approval_case_no="P1",
            supervision_matter_code="32070000000001",
            created_at=approval("P1").decided_at + timedelta(hours=2),
        ),
        source="hlwjg",
        correlation_id="P1",
    )
    unrelated = envelope("P2")
    await store.ingest_page("mixed", [task, unrelated, decided], [], "1", to_hlwjg)
    loop = await store.trace("P1")
    assert [(m["type"], m["business_key"]) for m in loop] == [
        ("approval.decided", "P1"),
        ("supervision.task.created", "T-P1"),
    ], "business-time order, not arrival order"
    assert all(len(m["deliveries"]) == 1 for m in loop)
    assert await store.trace("nobody") == []
