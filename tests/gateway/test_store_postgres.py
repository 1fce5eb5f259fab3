"""Several gateway instances on one PostgreSQL store: what only a shared database has to get right.

Each test opens two or more ``PostgresStore`` objects on one schema — separate pools, separate
connections, exactly what separate ``shenguan serve`` processes hold — and races them.
"""

from __future__ import annotations

import asyncio
import json
import random

import psycopg
import pytest

from factories import envelope
from gateway.audit import verify_entries
from gateway.store import DeliveryState, Outcome, Route
from gateway.store.base import SourceNotOwnedError
from gateway.store.common import Migration, StoreVersionError
from gateway.store.postgres import MIGRATIONS, PostgresStore, StoreMissingError, StoreUnavailableError, migrate

pytestmark = pytest.mark.usefixtures("pg_url")


def to_hlwjg(_env):
    return [Route("hlwjg")]


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def test_concurrent_leasing_never_hands_out_one_delivery_twice(store_factory) -> None:
    a, b, c = [await store_factory() for _ in range(3)]
    await a.ingest_page("zwfw", [envelope(f"F{i:03}") for i in range(300)], [], "1", to_hlwjg)

    async def drain(store, owner: str) -> list[int]:
        got: list[int] = []
        while batch := await store.lease_due(owner=owner, destination="hlwjg", limit=7, lease_s=60):
            got.extend(row.id for row in batch)
            await asyncio.sleep(0)
        return got

    results = await asyncio.gather(*(drain(s, f"i{n}") for n, s in enumerate((a, b, c, a, b, c))))
    leased = [i for r in results for i in r]
    assert len(leased) == 300 and len(set(leased)) == 300, "every delivery leased exactly once"
    assert sum(1 for r in results if r) >= 2, "the work was actually shared"


async def test_an_expired_lease_is_taken_over_under_the_recovery_rules(store_factory, clock) -> None:
    dying, live = await store_factory(), await store_factory()
    routes = lambda _e: [Route("hlwjg"), Route("soap"), Route("ws")]  # noqa: E731
    await dying.ingest_page("zwfw", [envelope("A")], [], "1", routes)
    for dest in ("hlwjg", "soap", "ws"):
        assert len(await dying.lease_due(owner="dying", destination=dest, limit=5, lease_s=30)) == 1
    policy = {"verify": ["ws"], "uncertain": ["soap"]}
    assert await live.take_over_expired(owner="live", **policy) == 0, "a live lease is never taken"
    clock.advance(31)
    assert await live.take_over_expired(owner="live", **policy) == 3
    assert await live.take_over_expired(owner="live", **policy) == 0
    d = (await live.status())["deliveries"]
    assert (d["pending"], d["uncertain"], d["in_flight"]) == (2, 1, 0)
    [plain] = await live.lease_due(owner="live", destination="hlwjg", limit=5, lease_s=30)
    [verify] = await live.lease_due(owner="live", destination="ws", limit=5, lease_s=30)
    assert not plain.verify_first and verify.verify_first and verify.attempts == 2
    assert await live.lease_due(owner="live", destination="soap", limit=5, lease_s=30) == [], "uncertain: an operator"
    # The paused instance wakes up and reports its (stale) outcome: refused, the new holder's counts.
    assert await dying.complete("dying", [Outcome(plain.id, DeliveryState.delivered)]) == 0
    assert await live.complete("live", [Outcome(plain.id, DeliveryState.delivered)]) == 1
    await live.chain_audit()
    [taken] = [e for e in await live.audit_entries() if e.kind == "deliveries.taken_over"]
    assert '"previous_owners":["dying"]' in taken.detail and taken.subject == "live"


async def test_recover_at_start_leaves_live_instances_leases_alone(store_factory, clock) -> None:
    a, b = await store_factory(), await store_factory()
    await a.ingest_page("zwfw", [envelope("A"), envelope("B")], [], "1", to_hlwjg)
    [mine] = await a.lease_due(owner="a", destination="hlwjg", limit=1, lease_s=30)
    [theirs] = await b.lease_due(owner="b", destination="hlwjg", limit=1, lease_s=30)
    assert await a.recover(owner="a", verify=[], uncertain=[]) == 1, "only a's own (a restart with its id)"
    assert await b.complete("b", [Outcome(theirs.id, DeliveryState.delivered)]) == 1, "b's lease still holds"
    assert await a.complete("a", [Outcome(mine.id, DeliveryState.delivered)]) == 0, "a's old lease is gone"


async def test_the_same_fact_ingested_concurrently_becomes_one_message(store_factory) -> None:
    stores = [await store_factory() for _ in range(4)]
    keys = [f"K{i:03}" for i in range(40)]

    async def ingest(n: int, store) -> None:
        order = keys[:]
        random.Random(n).shuffle(order)  # opposite orders: the row locks must not deadlock
        for start in range(0, len(order), 10):
            page = [envelope(k, source=f"src{n}") for k in order[start : start + 10]]
            await store.ingest_page(f"src{n}", page, [], str(start), to_hlwjg)

    await asyncio.gather(*(ingest(n, s) for n, s in enumerate(stores)))
    status = await stores[0].status()
    assert status["messages"] == len(keys), "one message per fact, whichever instance won"
    assert status["duplicates_suppressed"] == 3 * len(keys)
    assert status["deliveries"]["pending"] == len(keys)


async def test_a_revision_waits_for_the_earlier_one_held_by_another_instance(store_factory) -> None:
    a, b = await store_factory(), await store_factory()
    await a.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    [first] = await a.lease_due(owner="a", destination="hlwjg", limit=5, lease_s=30)
    await b.ingest_page("zwfw", [envelope("A", revision=2, result_description="变更")], [], "2", to_hlwjg)
    assert await b.lease_due(owner="b", destination="hlwjg", limit=5, lease_s=30) == []
    await a.complete("a", [Outcome(first.id, DeliveryState.delivered)])
    [second] = await b.lease_due(owner="b", destination="hlwjg", limit=5, lease_s=30)
    assert second.envelope().revision == 2


async def test_a_source_has_one_owner_and_a_stale_owner_cannot_commit(store_factory, clock) -> None:
    a, b = await store_factory(), await store_factory()
    assert await a.claim_source("zwfw", "a", 10)
    assert not await b.claim_source("zwfw", "b", 10), "owned: b stands by"
    assert await a.claim_source("zwfw", "a", 10), "renewed"
    await a.ingest_page("zwfw", [envelope("A")], [], "c1", to_hlwjg, owner="a")
    clock.advance(11)  # a is paused past its lease (GC pause, SIGSTOP, network partition)
    assert await b.claim_source("zwfw", "b", 10), "expired: b takes the source over"
    assert await b.get_cursor("zwfw") == "c1", "and reads on from the cursor a committed"
    with pytest.raises(SourceNotOwnedError, match="owned by b"):
        await a.ingest_page("zwfw", [envelope("B")], [], "c2", to_hlwjg, owner="a")
    assert await a.get_cursor("zwfw") == "c1" and (await a.status())["messages"] == 1, "nothing of it stored"
    assert not await a.claim_source("zwfw", "a", 10)
    await b.release_source("zwfw", "b")
    assert await a.claim_source("zwfw", "a", 10), "released at a graceful stop: taken at once"


async def test_a_standby_is_answered_at_once_while_the_owner_stores_a_page(store_factory, store_url) -> None:
    a, b = await store_factory(), await store_factory()
    assert await a.claim_source("zwfw", "a", 10)
    async with await psycopg.AsyncConnection.connect(store_url) as owner_page:
        # What the owner's page transaction holds while it stores (PostgresStore._ingest).
        await owner_page.execute("SELECT owner FROM source_leases WHERE source = 'zwfw' FOR SHARE")
        claimed = await asyncio.wait_for(b.claim_source("zwfw", "b", 10), timeout=5)
        assert claimed is False, "owned: b stands by, without waiting for the owner's page"
        await owner_page.rollback()


async def test_concurrent_claims_of_a_free_source_have_one_winner(store_factory) -> None:
    stores = [await store_factory() for _ in range(5)]
    won = await asyncio.gather(*(s.claim_source("feed", f"i{n}", 10) for n, s in enumerate(stores)))
    assert sum(won) == 1


async def test_the_audit_chain_holds_with_concurrent_writers_and_chainers(store_factory) -> None:
    stores = [await store_factory() for _ in range(3)]

    async def work(n: int, store) -> None:
        for page in range(5):
            await store.ingest_page(f"s{n}", [envelope(f"N{n}P{page}R{r}") for r in range(5)], [], str(page), to_hlwjg)
            await store.chain_audit()

    await asyncio.gather(*(work(n, s) for n, s in enumerate(stores)))
    while await stores[0].chain_audit():
        pass
    entries = await stores[1].audit_entries(limit=10_000)
    assert len(entries) == 75 and await stores[2].audit_backlog() == 0
    result = verify_entries(entries, algorithm=stores[0].audit_algorithm)
    assert result.ok and result.checked == 75


async def test_the_first_instance_fixes_the_chain_algorithm_for_all(store_factory) -> None:
    from gateway.audit import AuditAlgorithmError

    sm3 = await store_factory(audit_algorithm="sm3")
    await sm3.ingest_page("zwfw", [envelope("A")], [], "1", to_hlwjg)
    with pytest.raises(AuditAlgorithmError, match="hashed with sm3"):
        await store_factory(audit_algorithm="sha256")
    other = await store_factory()  # no choice configured: follows the chain
    assert other.audit_algorithm == "sm3"
    await other.chain_audit()
    assert verify_entries(await other.audit_entries(), algorithm="sm3").ok


async def test_instances_starting_together_migrate_once(pg_url) -> None:
    stores = [PostgresStore(pg_url, pool_max=2) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            cur = await conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert await cur.fetchone() == (str(MIGRATIONS[-1].version),)
    finally:
        for s in stores:
            await s.close()


async def test_an_older_store_is_migrated_and_a_newer_one_refused(pg_url) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        assert await migrate(conn, migrations=MIGRATIONS[:1]) == 1  # a store written by the first release
        next_one = Migration(
            MIGRATIONS[-1].version + 1, "test: a column added later", "ALTER TABLE cursors ADD COLUMN note TEXT"
        )
        assert await migrate(conn, migrations=[*MIGRATIONS, next_one]) == next_one.version
        cur = await conn.execute("SELECT note FROM cursors")  # the column exists
        assert await cur.fetchall() == []
        assert await migrate(conn, migrations=[*MIGRATIONS, next_one]) == next_one.version, "applied once"
        with pytest.raises(StoreVersionError, match=f"schema version {next_one.version}"):
            await migrate(conn, migrations=MIGRATIONS)


async def test_operator_commands_do_not_create_stores_and_name_unreachable_servers(pg_url) -> None:
    with pytest.raises(StoreMissingError, match="no shenguan store"):
        await PostgresStore(pg_url).open(create=False)
    url = "postgresql://shenguan:secret@127.0.0.1:1/none"
    with pytest.raises(StoreUnavailableError, match="cannot connect") as caught:
        await PostgresStore(url, connect_timeout_s=1).open()
    assert "secret" not in str(caught.value), "the password is never printed"


async def test_every_pooled_connection_plans_prepared_statements_afresh(store_factory) -> None:
    """A generic plan cached while the outbox was nearly empty made one lease take 26-46 s at a backlog of
    20,000 (docs/benchmarks.md): every connection the store hands out plans each execution anew."""
    store = await store_factory()
    pool = store._require_pool()
    async with pool.connection() as first, pool.connection() as second:
        for conn in (first, second):
            row = await (await conn.execute("SHOW plan_cache_mode")).fetchone()
            assert row == ("force_custom_plan",)


async def test_a_page_is_written_row_for_row_as_sent_in_one_statement_per_table(store_factory) -> None:
    """Messages, deliveries, ledger and audit rows of a page go in as arrays: every value arrives intact
    (quotes, backslashes, Chinese, a missing region), in page order, and a route repeated within the page
    still makes one delivery."""
    store = await store_factory()
    names = ["引号\"与\\反斜杠'公司", "连云港海州区某某餐饮有限公司", '{"not": ["json"]}']
    page = [envelope(f"W{i:03}", applicant={**envelope().data["applicant"], "name": n}) for i, n in enumerate(names)]
    page.append(envelope("W003").model_copy(update={"region": None}))
    page.append(page[0])  # the same fact again: suppressed, not stored twice
    twice = lambda _e: [Route("hlwjg"), Route("hlwjg")]  # noqa: E731
    result = await store.ingest_page("zwfw", page, [], "1", twice)
    assert result.accepted == 4 and result.duplicates == 1
    for env in page[:4]:
        stored = await store.message(env.id)
        assert stored is not None and stored["envelope"] == json.loads(env.model_dump_json())
        assert stored["region"] == env.region
        assert [d["destination"] for d in stored["deliveries"]] == ["hlwjg"]
    await store.chain_audit()
    accepted = [e.subject for e in await store.audit_entries(limit=100) if e.kind == "message.accepted"]
    assert accepted == [env.id for env in page[:4]]  # queued, and so chained, in page order
    # The ledger took each fact's revision: the same page again is all duplicates.
    again = await store.ingest_page("zwfw", page[:4], [], "2", twice)
    assert again.accepted == 0 and again.duplicates == 4
