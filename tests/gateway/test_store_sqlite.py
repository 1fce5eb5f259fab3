"""The SQLite store: atomic ingest with dedup and cursor, leases, group completion, recovery."""

from __future__ import annotations

import pytest

from factories import envelope
from gateway.store import DeliveryState, Outcome, Rejection, Route
from gateway.store.sqlite import SQLiteStore, StoreLockedError
from schemas import Classification


def to_hlwjg(_env):
    return [Route("hlwjg")]


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(tmp_path / "s.db", synchronous="NORMAL")
    await s.open()
    yield s
    await s.close()


async def test_page_messages_rejections_and_cursor_commit_together(store) -> None:
    rej = Rejection("zwfw", "malformed JSON", "{bad", "p1")
    result = await store.ingest_page("zwfw", [envelope("A"), envelope("B")], [rej], "c2", to_hlwjg)
    assert (result.accepted, result.rejected) == (2, 1)
    assert await store.get_cursor("zwfw") == "c2"
    status = await store.status()
    assert status["messages"] == 2 and status["rejected"] == 1
    assert status["deliveries"]["pending"] == 2
    assert (await store.rejected())[0]["reason"] == "malformed JSON"


async def test_failed_ingest_changes_nothing(store) -> None:
    def broken_router(_env):
        raise RuntimeError("router bug")

    with pytest.raises(RuntimeError):
        await store.ingest_page("zwfw", [envelope("A")], [], "c9", broken_router)
    assert await store.get_cursor("zwfw") is None
    assert (await store.status())["messages"] == 0


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
    status = await store.status()
    assert status["duplicates_suppressed"] == 2 and status["deliveries"]["pending"] == 2


async def test_same_fact_from_another_source_is_one_fact(store) -> None:
    await store.ingest_page("zwfw", [envelope("A", source="zwfw")], [], "1", to_hlwjg)
    r = await store.ingest_page("specialty", [envelope("A", source="specialty")], [], "1", to_hlwjg)
    assert r.duplicates == 1 and r.accepted == 0


async def test_secret_messages_only_get_paper_deliveries(store) -> None:
    await store.ingest_page("zwfw", [envelope("S", classification=Classification.secret)], [], "1", to_hlwjg)
    deliveries = (await store.status())["deliveries"]
    assert deliveries["paper_pending"] == 1 and deliveries["pending"] == 0
    assert await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60) == []


async def test_unrouted_messages_are_held_and_counted(store) -> None:
    await store.ingest_page("zwfw", [envelope("U")], [], "1", lambda _e: [])
    status = await store.status()
    assert status["unrouted"] == 1 and status["messages"] == 1


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
    assert (await store.status())["deliveries"]["delivered"] == 1


async def test_recovery_returns_in_flight_to_pending_or_uncertain(store) -> None:
    await store.ingest_page("zwfw", [envelope("A")], [], "1", lambda _e: [Route("hlwjg"), Route("soap")])
    await store.lease_due(owner="dead", destination="hlwjg", limit=10, lease_s=60)
    await store.lease_due(owner="dead", destination="soap", limit=10, lease_s=60)
    assert (await store.status())["deliveries"]["in_flight"] == 2
    assert await store.recover(owner="me", verify=[], uncertain=["soap"]) == 2
    deliveries = (await store.status())["deliveries"]
    assert deliveries["pending"] == 1 and deliveries["uncertain"] == 1
    [again] = await store.lease_due(owner="me", destination="hlwjg", limit=10, lease_s=60)
    assert again.attempts == 2


async def test_one_process_per_database_file(tmp_path) -> None:
    first = SQLiteStore(tmp_path / "x.db")
    await first.open()
    try:
        with pytest.raises(StoreLockedError, match="in use by another shenguan process"):
            await SQLiteStore(tmp_path / "x.db").open()
        reader = SQLiteStore(tmp_path / "x.db")
        await reader.open(exclusive=False)  # status readers do not need the lock
        await reader.close()
    finally:
        await first.close()


async def test_paper_recall_before_printing_and_return_after(store) -> None:
    from gateway.store.sqlite import PaperStateError

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
