"""The core relay under faults and crashes, with real processes (issue: core relay, end to end).

The mocks inject 20 % server errors and 10 % dropped responses (committed, then the connection is cut)
on 互联网+监管; the 政务服务一体化平台 feed holds 2,000 approvals plus 10 % exact duplicates and 5 %
re-reports. ``shenguan serve`` is SIGKILLed twice mid-run and restarted. At the end the receiver must
hold exactly the unique facts at their latest revision, with zero duplicate creations, and the gateway
must have nothing left pending.
"""

from __future__ import annotations

from procs import FAST_RETRIES, Gateway, Mocks, relay_config, wait_for

UNIQUE = 2000


def write_config(path, mocks: Mocks, db) -> None:
    path.write_text(
        relay_config(
            mocks,
            db,
            gateway={"sqlite_synchronous": "FULL"},
            zwfw={"page_size": 100},
            hlwjg={
                "timeout_s": 5,
                "concurrency": 16,
                **FAST_RETRIES,
                "breaker_failures": 200,
                "breaker_cooldown_s": 0.5,
            },
        )
    )


def test_sigkill_twice_under_faults_loses_and_duplicates_nothing(tmp_path) -> None:
    mocks = Mocks(tmp_path)
    gateway = Gateway(tmp_path / "shenguan.toml", tmp_path)
    try:
        generated = mocks.post(
            "/zwfw/_mock/generate",
            {"count": UNIQUE, "seed": 11, "duplicate_rate": 0.1, "revision_rate": 0.05, "secret_rate": 0.0},
        )
        assert generated["unique_facts"] == UNIQUE and generated["generated"] >= UNIQUE * 1.1
        mocks.post("/hlwjg/_mock/faults", {"error_rate": 0.2, "drop_response_rate": 0.1, "token_ttl_s": 3, "seed": 5})
        write_config(gateway.config, mocks, tmp_path / "shenguan.db")

        gateway.start()
        for fraction in (0.25, 0.6):
            wait_for(
                lambda f=fraction: gateway.alive() and mocks.records("hlwjg")["accepted"] >= UNIQUE * f,
                120,
                f"{fraction:.0%} relayed before the kill\n{gateway.logs()}",
            )
            gateway.kill()
            gateway.start()

        def settled() -> bool:
            assert gateway.alive(), gateway.logs()
            d = gateway.status()["deliveries"]
            return d["pending"] + d["in_flight"] + d["retry_wait"] == 0 and mocks.records("hlwjg")["accepted"] >= UNIQUE

        wait_for(settled, 240, "every delivery to settle", interval=0.5)
        assert gateway.terminate() == 0, gateway.logs()

        received = mocks.records("hlwjg")
        assert received["duplicate_creations"] == 0
        assert received["accepted"] == UNIQUE

        latest: dict[str, int] = {}
        for item in mocks.zwfw_feed():
            latest[item["PROJID"]] = max(latest.get(item["PROJID"], 0), int(item["DATAVERSION"]))
        held = {r["approvalNo"]: r["dataVersion"] for r in received["records"]}
        assert held == latest, "every fact at its latest revision"

        status = gateway.status()
        d = status["deliveries"]
        assert d["pending"] == d["in_flight"] == d["retry_wait"] == d["dead"] == d["uncertain"] == 0, status
        assert d["delivered"] == status["messages"]
        assert status["duplicates_suppressed"] >= generated["generated"] - status["messages"]
        assert gateway.starts == 3
    finally:
        if gateway.alive():
            gateway.kill()
        mocks.close()
