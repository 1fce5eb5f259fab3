"""Three ``shenguan serve`` instances on one PostgreSQL database, under faults, losing two of them.

The 互联网+监管 mock fails 20 % of requests, drops 10 % of responses after committing them, and expires
its tokens every 3 s; the 政务服务一体化平台 feed holds 400 approvals plus exact duplicates and re-reports.
Three instances share the store: one owns the zwfw feed, all three relay. The feed's owner is SIGKILLed
mid-run (its source lease and its delivery leases must be taken over by the others), then another
instance is stopped with SIGTERM (it must finish or hand back its work and exit 0). The last one settles
everything.

At the end: every fact at the receiver once, at its latest revision, with zero duplicate creations; every
delivery terminal; every feed record stored exactly once (messages + suppressions = records generated —
a page read twice would show up as extra suppressions); and the audit chain, written by three processes,
verifies.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from pgtest import create_database, drop_database, require_pg
from procs import FAST_RETRIES, SHENGUAN, Gateway, Mocks, relay_config, wait_for

UNIQUE = 400


@pytest.fixture
def database() -> str:
    require_pg()
    url = create_database("shenguan_e2e")
    yield url
    drop_database(url)


def write_config(path: Path, mocks: Mocks, db: str) -> None:
    path.write_text(
        relay_config(
            mocks,
            db,
            gateway={"source_lease_s": 2, "pg_pool_size": 6},
            zwfw={"page_size": 100},
            hlwjg={
                "timeout_s": 2,
                "lease_s": 5,
                "concurrency": 12,
                **FAST_RETRIES,
                "max_attempts": 60,
                "breaker_failures": 500,
                "breaker_cooldown_s": 0.5,
            },
        )
    )


def feed_owner(db: str, gateways: list[Gateway]) -> Gateway | None:
    """The instance that owns the zwfw feed now (instance ids carry the process id)."""
    with psycopg.connect(db) as conn:
        if conn.execute("SELECT to_regclass('source_leases')").fetchone() == (None,):
            return None  # no instance has created the schema yet
        row = conn.execute("SELECT owner, expires_at FROM source_leases").fetchone()
    if row is None or row[1] < time.time():
        return None
    pid = int(row[0].rsplit("-", 2)[1])
    return next((g for g in gateways if g.proc is not None and g.proc.pid == pid and g.alive()), None)


def test_three_instances_sigkill_and_sigterm_lose_and_duplicate_nothing(tmp_path: Path, database: str) -> None:
    mocks = Mocks(tmp_path)
    config = tmp_path / "shenguan.toml"
    gateways = []
    for n in range(3):
        (tmp_path / f"g{n}").mkdir()
        gateways.append(Gateway(config, tmp_path / f"g{n}"))

    def logs() -> str:
        return "\n".join(f"--- instance {n} ---\n{g.logs()}" for n, g in enumerate(gateways))

    try:
        generated = mocks.post(
            "/zwfw/_mock/generate",
            {"count": UNIQUE, "seed": 21, "duplicate_rate": 0.1, "revision_rate": 0.05, "secret_rate": 0.0},
        )
        assert generated["unique_facts"] == UNIQUE
        mocks.post("/hlwjg/_mock/faults", {"error_rate": 0.2, "drop_response_rate": 0.1, "token_ttl_s": 3, "seed": 9})
        write_config(config, mocks, database)
        for g in gateways:
            g.start()

        def started_owner() -> Gateway | None:
            assert all(g.alive() for g in gateways), logs()
            return feed_owner(database, gateways)

        owner = wait_for(started_owner, 30, "an instance to own the feed")
        wait_for(
            lambda: mocks.records("hlwjg")["accepted"] >= UNIQUE * 0.25, 60, f"25% relayed before the kill\n{logs()}"
        )
        owner.kill()  # mid-page, mid-attempts: its feed and delivery leases are left to expire
        survivors = [g for g in gateways if g is not owner]

        successor = wait_for(lambda: feed_owner(database, survivors), 30, f"the feed to be taken over\n{logs()}")
        wait_for(
            lambda: mocks.records("hlwjg")["accepted"] >= UNIQUE * 0.6, 60, f"60% relayed before SIGTERM\n{logs()}"
        )
        assert successor.terminate() == 0, logs()  # graceful: releases the feed, finishes its attempts
        [last] = [g for g in survivors if g is not successor]

        def settled() -> bool:
            assert last.alive(), logs()
            d = last.status()["deliveries"]
            return d["pending"] + d["in_flight"] + d["retry_wait"] == 0 and mocks.records("hlwjg")["accepted"] >= UNIQUE

        wait_for(settled, 90, f"every delivery to settle\n{logs()}", interval=0.5)
        assert last.terminate() == 0, logs()

        received = mocks.records("hlwjg")
        assert received["duplicate_creations"] == 0
        assert received["accepted"] == UNIQUE
        latest: dict[str, int] = {}
        for item in mocks.zwfw_feed():
            latest[item["PROJID"]] = max(latest.get(item["PROJID"], 0), int(item["DATAVERSION"]))
        assert {r["approvalNo"]: r["dataVersion"] for r in received["records"]} == latest, "latest revisions"

        status = last.status()
        d = status["deliveries"]
        assert d["pending"] == d["in_flight"] == d["retry_wait"] == d["dead"] == d["uncertain"] == 0, status
        assert d["delivered"] == status["messages"]
        assert status["messages"] + status["duplicates_suppressed"] == generated["generated"], (
            "every feed record stored exactly once: no page was read twice by two instances"
        )

        verify = subprocess.run(
            [*SHENGUAN, "audit", "verify", "--db", database, "--json"], capture_output=True, timeout=60, check=False
        )
        report = json.loads(verify.stdout)
        assert verify.returncode == 0 and report["ok"], report
        with psycopg.connect(database) as conn:
            claims = conn.execute("SELECT COUNT(*) FROM audit WHERE kind = 'source.claimed'").fetchone()[0]
        assert claims >= 2, "the feed changed hands when its owner was killed"
    finally:
        for g in gateways:
            if g.alive():
                g.kill()
        mocks.close()
