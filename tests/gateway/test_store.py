"""The store contract, run against every backend (SQLite and PostgreSQL): atomic ingest with dedup and
cursor, leases, group completion, recovery, the paper queue, mapping versions and the audit chain.

Backend-specific behaviour lives beside it: the one-process lock and SQLite migrations in
``test_store_sqlite.py``, several instances on one database in ``test_store_postgres.py``.
"""

from __future__ import annotations

import pytest

from factories import envelope
from gateway.audit import verify_entries
from gateway.store import DeliveryState, Outcome, Rejection, Route
from gateway.store.sqlite import PaperStateError
from schemas import Classification


def to_hlwjg(_env):
    return [Route("hlwjg")]


async def chain(store) -> list:
    """The whole audit chain, after chaining what a multi-instance store has queued."""
    await store.chain_audit()
    entries = await store.audit_entries(after_seq=0, limit=100_000)
    assert verify_entries(entries, algorithm=store.audit_algorithm).ok
    return entries


async def test_page_messages_rejections_and_cursor_commit_together(store) -> None:
    rej = Rejection("zwfw", "malformed JSON", "{bad", "p1")
    result = await store.ingest_page("zwfw", [envelope("A"), envelope("B")], [rej], "c2", to_hlwjg)
    assert (result.accepted, result.rejected) == (2, 1)
    assert await store.get_cursor("zwfw") == "c2"
    status = await store.status()
    assert status["messages"] == 2 and status["rejected"] == 1
    assert status["deliveries"]["pending"] == 2
    [stored] = await store.rejected()
    assert (stored["reason"], stored["raw"], stored["position"]) == ("malformed JSON", "{bad", "p1")


async def test_failed_ingest_changes_nothing(store) -> None:
    def broken_router(_env):
        raise RuntimeError("router bug")

    with pytest.raises(RuntimeError):
        await store.ingest_page("zwfw", [envelope("A")], [Rejection("zwfw", "bad", "{")], "c9", broken_router)
    assert await store.get_cursor("zwfw") is None
    status = await store.status()
    assert status["messages"] == 0 and status["rejected"] == 0
    # The fact was not marked as seen by the failed attempt: it is new the next time.
    assert (await store.ingest_page("zwfw", [envelope("A")], [], "c9", to_hlwjg)).accepted == 1


async def test_duplicates_and_stale_versions_are_suppressed_revisions_relayed(store) -> None:
    first = envelope("A")
    await store.ingest_page("zwfw", [first], [], "1", to_hlwjg)
    r = await store.ingest_page(
        "zwfw",
        [
            first,
            envelope("A", revision=2, result_description="变更"),
            envelope("A", revision=1, result_description="旧"),
        ],
        [],
        "2",
        to_hlwjg,
    )
    assert (r.accepted, r.revisions, r.duplicates, r.stale) == (1, 1, 1, 1)
    assert [v.verdict for v in r.verdicts] == ["duplicate", "revision", "stale"]
    assert r.verdicts[0].original_message_id == first.id
    status = await store.status()
    assert status["duplicates_suppressed"] == 2 and status["deliveries"]["pending"] == 2


async def test_an_unnumbered_correction_is_relayed_as_the_next_revision(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    later = envelope("A", result_description="更正", decided_at="2026-11-21T10:00:00+08:00")
    r = await store.ingest_page("zwfw", [later], [], "2", to_hlwjg)
    assert (r.accepted, r.revisions) == (1, 1)
    leased = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert [row.envelope().revision for row in leased] == [1]


async def test_same_fact_from_another_source_is_one_fact(store) -> None:
    await store.ingest_page("zwfw", [envelope("A", source="zwfw")], [], "1", to_hlwjg)
    r = await store.ingest_page("specialty", [envelope("A", source="specialty")], [], "1", to_hlwjg)
    assert r.duplicates == 1 and r.accepted == 0


async def test_secret_messages_only_get_paper_deliveries(store) -> None:
    await store.ingest_page("zwfw", [envelope("S", classification=Classification.secret)], [], "1", to_hlwjg)
    deliveries = (await store.status())["deliveries"]
    assert deliveries["paper_pending"] == 1 and deliveries["pending"] == 0
    assert await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60) == []


async def test_unrouted_messages_are_held_counted_and_rerouted(store) -> None:
    r = await store.ingest_page("zwfw", [envelope("U"), envelope("V")], [], "1", lambda _e: [])
    assert r.unrouted_ids == r.message_ids and r.unrouted == 2
    status = await store.status()
    assert status["unrouted"] == 2 and status["messages"] == 2
    only_u = lambda env: [Route("hlwjg")] if env.business_key.endswith("U") else []  # noqa: E731
    assert await store.reroute_unrouted(only_u, batch=1) == 1
    status = await store.status()
    assert status["unrouted"] == 1 and status["deliveries"]["pending"] == 1
    assert await store.reroute_unrouted(to_hlwjg) == 1
    assert await store.reroute_unrouted(to_hlwjg) == 0


async def test_leasing_counts_attempts_and_returns_the_envelope(store) -> None:
    env = envelope("A")
    await store.ingest_page("zwfw", [env], [], "1", to_hlwjg)
    [row] = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert (row.message_id, row.destination, row.attempts, row.verify_first) == (env.id, "hlwjg", 1, False)
    assert row.envelope() == env and row.type == env.type and row.accepted_at is not None
    assert await store.lease_due(owner="other", destination="hlwjg", limit=10, lease_s=60) == []
    assert await store.open_deliveries() == 1


async def test_a_later_revision_waits_for_the_earlier_one(store) -> None:
    await store.ingest_page(
        "zwfw", [envelope("A"), envelope("A", revision=2, result_description="变更")], [], "1", to_hlwjg
    )
    leased = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert [row.envelope().revision for row in leased] == [1]
    assert await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60) == []
    await store.complete("me", [Outcome(leased[0].id, DeliveryState.delivered, remote_id="T1")])
    second = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert [row.envelope().revision for row in second] == [2]


async def test_outcomes_apply_only_under_the_lease_they_were_made_with(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    [row] = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert row.attempts == 1
    assert await store.complete("someone-else", [Outcome(row.id, DeliveryState.delivered)]) == 0
    assert await store.complete("me", [Outcome(row.id, DeliveryState.delivered)]) == 1
    assert await store.complete("me", [Outcome(row.id, DeliveryState.delivered)]) == 0, "applied once"
    assert (await store.status())["deliveries"]["delivered"] == 1


async def test_group_commit_applies_each_outcome_with_its_own_fields(store, clock) -> None:
    await store.ingest_page("zwfw", [envelope(k) for k in "ABC"], [], "1", to_hlwjg)
    a, b, c = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    applied = await store.complete(
        "me",
        [
            Outcome(a.id, DeliveryState.delivered, remote_id="T-A"),
            Outcome(b.id, DeliveryState.retry_wait, error="503", error_kind="retryable", next_attempt_at=clock() + 5),
            Outcome(c.id, DeliveryState.dead, error="bad code", error_kind="permanent"),
            Outcome(999_999, DeliveryState.delivered),  # no such lease: ignored
        ],
    )
    assert applied == 3
    d = (await store.status())["deliveries"]
    assert (d["delivered"], d["retry_wait"], d["dead"]) == (1, 1, 1)
    assert await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60) == [], "b waits 5 s"
    clock.advance(5)
    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert (again.id, again.attempts) == (b.id, 2)
    kinds = [e.kind for e in await chain(store) if e.kind.startswith("delivery.")]
    assert kinds == ["delivery.delivered", "delivery.retry_wait", "delivery.dead"]


async def test_recovery_returns_in_flight_to_pending_or_uncertain(store, clock) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("hlwjg"), Route("soap")])
    await store.lease_due(owner="dead", destination="hlwjg", limit=10, lease_s=60)
    await store.lease_due(owner="dead", destination="soap", limit=10, lease_s=60)
    assert (await store.status())["deliveries"]["in_flight"] == 2
    clock.advance(61)  # the dead process's leases have run out (SQLite releases them at any age)
    assert await store.recover(owner="me", verify=[], uncertain=["soap"]) == 2
    deliveries = (await store.status())["deliveries"]
    assert deliveries["pending"] == 1 and deliveries["uncertain"] == 1
    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert again.attempts == 2 and not again.verify_first
    assert any(e.kind == "deliveries.recovered" for e in await chain(store))


async def test_recovery_marks_status_query_destinations_verify_first(store, clock) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert await store.recover(owner="me", verify=["hlwjg"], uncertain=[]) == 1, "a restart with the same id"
    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert again.verify_first


async def test_paper_recall_before_printing_and_return_after(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    [row] = await store.lease_due(owner="me", destination="hlwjg", limit=1, lease_s=60)
    await store.complete("me", [Outcome(row.id, DeliveryState.paper_pending, error="budget spent")])

    await store.recall_paper(row.id)  # a fallback item, not printed yet: back to electronic delivery
    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=1, lease_s=60)
    assert again.attempts == 1, "a recalled item gets a fresh retry budget"
    await store.complete("me", [Outcome(row.id, DeliveryState.paper_pending, error="budget spent")])

    assert await store.mark_printed([row.id]) == 1
    assert await store.mark_printed([row.id]) == 0, "printing is recorded once"
    with pytest.raises(PaperStateError, match="already printed"):
        await store.recall_paper(row.id)
    await store.return_paper(row.id, "受送达人地址不详")
    [item] = await store.paper_deliveries(state="paper_pending")
    assert item["printed_at"] is None and "受送达人地址不详" in item["last_error"], "returned: open, printable again"
    with pytest.raises(PaperStateError, match="no delivery 999"):
        await store.confirm_paper(999, {}, 0.0)
    kinds = [e["kind"] for e in await store.paper_events(row.id)]
    assert kinds == ["recalled", "printed", "returned"]


async def test_paper_confirm_flag_and_classified_items(store) -> None:
    secret = envelope("S", classification=Classification.secret)
    await store.ingest_page("zwfw", [secret, envelope("A")], [], "1", to_hlwjg)
    [paper] = await store.paper_deliveries(state="paper_pending")
    assert paper["channel"] == "paper" and not paper["flagged"] and paper["message_id"] == secret.id
    with pytest.raises(PaperStateError, match="not a fallback"):
        await store.recall_paper(paper["id"])
    assert await store.flag_paper(paper["id"], {"remote_id": "T9"}) is True
    assert await store.flag_paper(paper["id"], {"remote_id": "T9"}) is False, "flagged once"
    [flagged] = await store.paper_deliveries(ids=[paper["id"]])
    assert flagged["flagged"]
    await store.confirm_paper(paper["id"], {"receiver": "张三", "recorded_by": "op"}, 1_800_000_000.0)
    [done] = await store.paper_deliveries(state="paper_delivered")
    assert done["delivered_at"] == 1_800_000_000.0 and done["printed_at"] is not None
    with pytest.raises(PaperStateError, match="it is paper_delivered"):
        await store.confirm_paper(paper["id"], {}, 0.0)
    assert [e["kind"] for e in await store.paper_events(paper["id"])] == ["electronic_success", "confirmed"]
    assert (await store.status())["deliveries"]["paper_delivered"] == 1


async def test_mapping_versions_import_restore_and_no_op_reimport(store) -> None:
    rows1 = [{"item": "A", "region": "320700"}]
    rows2 = [{"item": "B", "region": "320700"}, {"item": "C", "region": "320706"}]
    assert await store.active_mapping_version() is None and await store.active_mapping() == []
    v1 = await store.import_mapping(rows1, source="m1.csv", digest="d1")
    assert await store.import_mapping(rows1, source="m1.csv", digest="d1") is None, "same sheet: nothing changes"
    v2 = await store.import_mapping(rows2, source="m2.csv", digest="d2")
    assert (v1, v2) == (1, 2)
    assert await store.active_mapping_version() == 2
    assert sorted(r["item"] for r in await store.active_mapping()) == ["B", "C"]
    await store.restore_mapping(1)
    assert await store.active_mapping() == rows1
    versions = await store.mapping_versions()
    assert [(v["version"], v["active"], v["row_count"]) for v in versions] == [(2, False, 2), (1, True, 1)]
    with pytest.raises(KeyError):
        await store.restore_mapping(7)
    kinds = [e.kind for e in await chain(store)]
    assert kinds == ["mapping.imported", "mapping.imported", "mapping.restored"]


async def test_every_state_change_is_in_the_audit_chain_in_order(store) -> None:
    route = lambda _e: [Route("hlwjg")]  # noqa: E731
    await store.ingest_page(
        "zwfw", [envelope("A"), envelope("A"), envelope("B")], [Rejection("zwfw", "bad", "{")], "1", route
    )
    leased = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    await store.complete("me", [Outcome(r.id, DeliveryState.delivered) for r in leased])
    entries = await chain(store)
    assert [e.kind for e in entries] == [
        "message.accepted",
        "message.suppressed",
        "message.accepted",
        "message.rejected",
        "delivery.delivered",
        "delivery.delivered",
    ]
    assert [e.seq for e in entries] == list(range(1, 7))
    text = " ".join(e.detail for e in entries)
    assert "91320700MA1X2Y3K05" not in text and "13800138000" not in text, "metadata only"
    assert await store.chain_audit() == 0, "nothing left to chain"


async def test_a_source_is_owned_and_pages_need_the_owner(store, backend) -> None:
    assert await store.claim_source("zwfw", "me", 30)
    r = await store.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg, owner="me")
    assert r.accepted == 1 and await store.get_cursor("zwfw") == "1"
    await store.release_source("zwfw", "me")
    if backend == "postgresql":
        from gateway.store.postgres import SourceNotOwnedError

        assert await store.claim_source("zwfw", "other", 30), "released: another instance takes it at once"
        with pytest.raises(SourceNotOwnedError):
            await store.ingest_page("zwfw", [envelope("B")], [], "2", to_hlwjg, owner="me")
        assert await store.get_cursor("zwfw") == "1"
