"""The 前置库 under SIGKILL, with real processes: every exchange row marked, none stored twice, each fact once.

The zwfw mock and the 前置库 mock carry the same 1,200 approvals (same seed). ``shenguan serve`` reads both and
relays to a faulty 互联网+监管; it is SIGKILLed twice while the exchange table is being read and marked, and
restarted. Every one of the 2,400 native items must be stored exactly once — as a relayed message or as a
suppressed repeat of the other platform's copy — so ``messages + duplicates_suppressed`` is exactly 2,400: a
row read again after a crash would add a suppression. (The exact window between commit and marking is hit
deterministically in tests/gateway/test_poller_acknowledge.py; here the kills land wherever they land.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from procs import FAST_RETRIES, Gateway, Mocks, relay_config, wait_for

UNIQUE = 1200


def write_config(path: Path, mocks: Mocks, db: Path) -> None:
    path.write_text(
        relay_config(
            mocks,
            db,
            gateway={"sqlite_synchronous": "FULL"},
            zwfw={"page_size": 50},
            sources={
                "gcjs": {"adapter": "specialty", "url": mocks.specialty_url, "poll_interval_s": 0.2, "page_size": 20}
            },
            hlwjg={
                "timeout_s": 5,
                "concurrency": 16,
                **FAST_RETRIES,
                "breaker_failures": 200,
                "breaker_cooldown_s": 0.5,
            },
        )
    )


@pytest.mark.slow
def test_sigkill_while_reading_the_exchange_table_marks_every_row_and_stores_none_twice(tmp_path: Path) -> None:
    mocks = Mocks(tmp_path)
    gateway = Gateway(tmp_path / "shenguan.toml", tmp_path)
    try:
        body = {"count": UNIQUE, "seed": 13}
        assert mocks.post("/zwfw/_mock/generate", body) == mocks.post("/specialty/_mock/generate", body)
        mocks.post("/hlwjg/_mock/faults", {"error_rate": 0.1, "drop_response_rate": 0.05, "seed": 2})
        write_config(gateway.config, mocks, tmp_path / "shenguan.db")

        def marked() -> int:
            return int(mocks.http.get("/specialty/_mock/records", params={"limit": 0}).json()["accepted"])

        at_kill: list[int] = []
        gateway.start()
        for fraction in (0.3, 0.7):
            wait_for(
                lambda f=fraction: gateway.alive() and marked() >= UNIQUE * f,
                120,
                f"{fraction:.0%} of the exchange rows marked before the kill\n{gateway.logs()}",
                interval=0.02,
            )
            gateway.kill()
            at_kill.append(marked())
            gateway.start()

        def settled() -> bool:
            report = mocks.http.get("/specialty/_mock/records", params={"limit": 0}).json()
            return report["pending"] == 0 and mocks.records("hlwjg")["accepted"] >= UNIQUE

        wait_for(settled, 180, f"every row marked and every fact relayed\n{gateway.logs()}")
        wait_for(lambda: gateway.status()["deliveries"]["delivered"] >= UNIQUE, 120, "deliveries to settle")
        assert gateway.terminate() == 0
        status = gateway.status()
        specialty = mocks.http.get("/specialty/_mock/records", params={"limit": 0}).json()
        hlwjg = mocks.records("hlwjg")
    finally:
        if gateway.alive():
            gateway.kill()
        mocks.close()
    assert (specialty["accepted"], specialty["rejected"], specialty["pending"]) == (UNIQUE, 0, 0)
    assert hlwjg["accepted"] == UNIQUE and hlwjg["duplicate_creations"] == 0
    assert status["rejected"] == 0 and status["messages"] == UNIQUE
    assert status["messages"] + status["duplicates_suppressed"] == 2 * UNIQUE, status
    assert gateway.starts == 3 and all(n < UNIQUE for n in at_kill), at_kill  # killed while rows were pending
