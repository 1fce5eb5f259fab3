"""Every platform at once, with faults on every mock and the gateway SIGKILLed twice (issue 3, end to end).

One ``shenguan mocks serve`` process fakes all five platforms; one ``shenguan serve`` process relays

- approvals from the 政务服务一体化平台 (``zwfw``: a feed with exact duplicates and 重报 revisions, three granted
  approvals whose 统一社会信用代码 passes the check character but not the credit platform's category table, and
  two malformed items) and from the 工程建设 前置库 (``specialty``: the same approvals again, some of its own,
  and rows it must mark failed),
- to 互联网+监管 (``hlwjg``, every approval), the 公共信用信息平台 (``credit``, granted ones, in batches with a
  verdict per record) and the legacy SOAP 前置机 (``soap``, every approval; not idempotent),

while also reading 互联网+监管's event feed (task claims, some repeated). Every mock misbehaves: server errors,
responses dropped after the platform committed, truncated replies, tokens that expire every second; the SOAP
service and the exchange database go down for a while and come back. The gateway is SIGKILLed twice and
restarted; then the faults are cleared and everything must settle.

What must hold, counted at the receivers and in the store: each destination holds exactly the facts the sources
generated, at their latest revision, created once; the credit platform judged each record once — the invalid
ones are dead with its reason, in batches whose other records were accepted; every exchange row is marked;
every native item was stored exactly once (as a message, a suppressed repeat or a rejection); nothing is left
open or uncertain.

The routes are a list (``ROUTES``) so the closed-loop event types can join this run as they arrive.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from procs import SHENGUAN, Gateway, Mocks, wait_for
from test_credit_batches import INVALID_CODES, granted, invalid_variants
from test_malformed_feed import variant
from test_specialty_cross_source import BAD_ROWS

from mock_platforms.generator import issuer_code

# The zwfw feed is generated in three parts with one credit-invalid approval after each, so that those land in
# different batches; the 前置库 is given the same three parts (its own counter yields the same 办件编号).
ZWFW_PARTS = [{"count": 100, "seed": seed, "duplicate_rate": 0.1, "revision_rate": 0.1} for seed in (31, 32, 33)]
SPECIALTY_OWN = {"count": 30, "seed": 34, "duplicate_rate": 0.1, "revision_rate": 0.1}
CLAIMS = {"count": 40, "seed": 35, "duplicate_rate": 0.25}
ZWFW_MALFORMED = [
    variant("320700261121000098001", TRANSACT_TIME="20/11/2026"),  # bad date
    variant("320700261121000098002", APPLY_CARDNUMBER="91320700MA1X2Y3K06"),  # bad check character
]

# Faults while the gateway runs; ``soap`` and ``specialty`` are also taken down for a while mid-run.
# Tokens live one second: every process lifetime sees several expire. (The 前置库's native API is its database,
# so what bites there is ``down``.)
FAULTS: dict[str, dict[str, Any]] = {
    "zwfw": {"error_rate": 0.15, "drop_response_rate": 0.1, "malformed_rate": 0.15, "seed": 1},
    "hlwjg": {"error_rate": 0.15, "drop_response_rate": 0.1, "malformed_rate": 0.1, "token_ttl_s": 1, "seed": 2},
    "credit": {"error_rate": 0.15, "drop_response_rate": 0.15, "malformed_rate": 0.15, "token_ttl_s": 1, "seed": 3},
    "soap": {"error_rate": 0.1, "drop_response_rate": 0.1, "malformed_rate": 0.1, "token_ttl_s": 1, "seed": 4},
}
MALFORMED_CASES = {i["PROJID"] for i in ZWFW_MALFORMED}
HEALTHY = {"error_rate": 0.0, "drop_response_rate": 0.0, "malformed_rate": 0.0, "token_ttl_s": 3600, "down": False}

RETRY = """
concurrency = {concurrency}
max_attempts = 60
backoff_initial_s = 0.05
backoff_max_s = 1.0
backoff_jitter_s = 0.05
breaker_failures = 20
breaker_cooldown_s = 0.5
timeout_s = 5
"""

# One ``[[routes]]`` table each.
ROUTES: list[str] = [
    'type = "approval.decided"\ndestinations = ["hlwjg", "soap"]',
    'type = "approval.decided"\ndestinations = ["credit"]\nwhere = { result = ["granted"] }',
    # Default claims the gateway records go to the platform; the platform's own claims are held (unrouted)
    # until the closed-loop routes take them.
    'type = "supervision.task.claimed"\ndestinations = ["hlwjg"]\nsources = ["shenguan"]',
]


def write_config(path: Path, mocks: Mocks, db: Path) -> None:
    sections = [
        f"""
        [gateway]
        db = "{db}"
        listen = "127.0.0.1:0"
        sqlite_synchronous = "NORMAL"
        shutdown_grace_s = 5

        [sources.zwfw]
        adapter = "zwfw"
        base_url = "{mocks.url}/zwfw"
        paasid = "shenguan"
        token = "zwfw-mock-token"
        poll_interval_s = 0.1
        page_size = 40
        error_backoff_max_s = 1

        [sources.gcjs]
        adapter = "specialty"
        url = "{mocks.specialty_url}"
        engine_options = {{ connect_args = {{ timeout = 0.5 }} }}  # a locked database fails the poll in 0.5 s
        poll_interval_s = 0.2
        page_size = 25
        error_backoff_max_s = 1

        [sources.hlwjg-events]
        adapter = "hlwjg-events"
        base_url = "{mocks.url}/hlwjg"
        client_id = "shenguan"
        client_secret = "hlwjg-mock-secret"
        poll_interval_s = 0.3
        page_size = 50
        error_backoff_max_s = 1

        [destinations.hlwjg]
        adapter = "hlwjg"
        base_url = "{mocks.url}/hlwjg"
        client_id = "shenguan"
        client_secret = "hlwjg-mock-secret"
        """,
        RETRY.format(concurrency=8),
        f"""
        [destinations.credit]
        adapter = "credit"
        base_url = "{mocks.url}/credit"
        app_key = "shenguan"
        app_secret = "credit-mock-secret"
        authority_name = "连云港市行政审批局"
        authority_code = "{issuer_code("320700")}"
        batch_size = 8
        batch_max_age_s = 0.2
        """,
        RETRY.format(concurrency=2),
        f"""
        [destinations.soap]
        adapter = "soap"
        base_url = "{mocks.url}/soap"
        user = "shenguan"
        password = "soap-mock-password"
        service_id = "SGLD_APPROVAL_DECIDED"
        receiver = "QZJ-320700"
        """,
        RETRY.format(concurrency=6),
        *(f"\n[[routes]]\n{route}\n" for route in ROUTES),
    ]
    path.write_text("".join(textwrap.dedent(section) for section in sections))


class Expected:
    """What the receivers must end up holding, computed from what the sources were given (not from the gateway)."""

    def __init__(self, feed: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        self.latest: dict[str, int] = {}  # every fact → its latest revision (hlwjg, soap)
        self.credit: dict[str, int] = {}  # 决定文书号 of each granted, valid fact → its latest granted revision
        self.invalid = {i["PROJID"] for i in feed if i["APPLY_CARDNUMBER"] in INVALID_CODES}
        self.native_items = len(feed) + len(rows)
        bad = {r["SPSXSLBM"] for r in BAD_ROWS}
        for item in feed:
            if item["PROJID"] in MALFORMED_CASES:  # rejected at the gateway
                continue
            self._see(item["PROJID"], int(item["DATAVERSION"]), item["XK_WSH"] if granted(item) else None)
        for row in rows:
            if row["SPSXSLBM"] not in bad:
                self._see(row["SPSXSLBM"], int(row["SJBBH"]), row["PFWH"] if row["BLZT"] == "11" else None)
        self.valid_rows = len(rows) - len(BAD_ROWS)

    def _see(self, case: str, revision: int, credit_key: str | None) -> None:
        self.latest[case] = max(self.latest.get(case, 0), revision)
        if credit_key is not None and case not in self.invalid:
            self.credit[credit_key] = max(self.credit.get(credit_key, 0), revision)


def progress(mocks: Mocks, expected: Expected) -> float:
    """The share of expected facts the three receivers hold, all together (0.0 … 1.0)."""
    held = sum(mocks.records(p)["accepted"] for p in ("hlwjg", "soap", "credit"))
    return held / (2 * len(expected.latest) + len(expected.credit))


def test_all_platforms_under_faults_and_two_sigkills(tmp_path: Path) -> None:
    mocks = Mocks(tmp_path)
    gateway = Gateway(tmp_path / "shenguan.toml", tmp_path)
    db = tmp_path / "shenguan.db"
    try:
        invalid: list[dict[str, Any]] = []
        for part in ZWFW_PARTS:
            zwfw = mocks.post("/zwfw/_mock/generate", part)
            assert mocks.post("/specialty/_mock/generate", part) == zwfw  # the same approvals in the 前置库
            if not invalid:
                template = next(i for i in mocks.zwfw_feed() if granted(i) and i["APPLY_TYPE"] == "2")
                invalid = invalid_variants(template)
            mocks.post("/zwfw/_mock/inject", {"records": [invalid.pop()]})
        mocks.post("/zwfw/_mock/inject", {"records": ZWFW_MALFORMED})
        mocks.post("/specialty/_mock/generate", SPECIALTY_OWN)  # and some only the 前置库 has
        mocks.post("/specialty/_mock/inject", {"records": BAD_ROWS})
        expected = Expected(mocks.zwfw_feed(), mocks.records("specialty")["records"])
        facts = sum(p["count"] for p in (*ZWFW_PARTS, SPECIALTY_OWN)) + len(INVALID_CODES)
        assert len(expected.latest) == facts and len(expected.invalid) == len(INVALID_CODES)
        for platform, faults in FAULTS.items():
            mocks.faults(platform, **faults)
        mocks.faults("specialty", down=True)  # the exchange database is unreachable when the gateway starts
        write_config(gateway.config, mocks, db)

        at_kill: list[float] = []

        def until(fraction: float, what: str) -> None:
            wait_for(
                lambda: gateway.alive() and progress(mocks, expected) >= fraction,
                180,  # a hang guard, not a performance bound
                f"{what} ({fraction:.0%} of the expected facts held)\n{gateway.logs()}",
                interval=0.2,
            )

        def kill_and_restart() -> None:
            gateway.kill()
            at_kill.append(progress(mocks, expected))
            gateway.start()

        gateway.start()
        until(0.15, "relaying under faults while the 前置库 is down")
        mocks.faults("soap", down=True)
        down_since = time.monotonic()
        until(0.35, "relaying while SOAP and the 前置库 are down")
        kill_and_restart()
        claims = mocks.post("/hlwjg/_mock/generate", CLAIMS)  # claims of tasks created so far, some repeated
        until(0.5, "relaying after the first restart")
        time.sleep(max(0.0, 3.0 - (time.monotonic() - down_since)))  # down for a while: at least 3 s
        mocks.faults("soap", down=False)
        mocks.faults("specialty", down=False)
        until(0.7, "relaying after SOAP and the 前置库 came back")
        kill_and_restart()
        until(0.85, "relaying after the second restart")
        for platform in (*FAULTS, "specialty"):
            mocks.faults(platform, **HEALTHY)

        native_items = expected.native_items + claims["generated"]

        def settled() -> bool:
            status = gateway.status()
            d = status["deliveries"]
            read = status["messages"] + status["duplicates_suppressed"] + status["rejected"]
            return (
                d["pending"] + d["in_flight"] + d["retry_wait"] == 0
                and read >= native_items
                and mocks.records("specialty")["pending"] == 0
            )

        assert gateway.alive(), gateway.logs()
        wait_for(settled, 180, f"every item read and every delivery terminal\n{gateway.logs()}", interval=0.5)
        assert gateway.terminate() == 0, gateway.logs()
        status = gateway.status()
        received = {p: mocks.records(p) for p in ("hlwjg", "soap", "credit", "specialty")}
        traffic = {p: mocks.traffic(p) for p in ("zwfw", "hlwjg", "soap", "credit")}
        audit = subprocess.run(
            [*SHENGUAN, "audit", "verify", "--config", str(gateway.config), "--json"], capture_output=True, timeout=60
        )
    finally:
        if gateway.alive():
            gateway.kill()
        mocks.close()

    assert gateway.starts == 3 and len(at_kill) == 2 and all(f < 1 for f in at_kill), at_kill
    assert_faults_fired(traffic, starts=gateway.starts)
    logs = "".join(log.read_text(errors="replace") for log in sorted(tmp_path.glob("serve-*.log")))
    assert '"relay.recovered_leases"' in logs, "a kill landed while attempts were in flight"
    assert '"source": "gcjs"' in logs and "database is locked" in logs, "the 前置库 was down while the gateway ran"
    assert audit.returncode == 0 and json.loads(audit.stdout)["ok"], audit.stdout  # 全程留痕 holds across the kills

    hlwjg, soap, credit = received["hlwjg"], received["soap"], received["credit"]
    assert hlwjg["duplicate_creations"] == soap["duplicate_creations"] == credit["duplicate_creations"] == 0
    assert {r["approvalNo"]: r["dataVersion"] for r in hlwjg["records"]} == expected.latest
    assert {r["caseNo"]: r["dataVersion"] for r in soap["records"]} == expected.latest
    assert soap["rejected"] == 0 and hlwjg["rejected"] == 0

    assert {r["data"]["XK_WSH"]: r["version"] for r in credit["records"]} == expected.credit
    assert all(r["submissions"] == len(r["recordIds"]) for r in credit["records"]), "each version judged once"
    rejections = credit["rejections"]
    assert len(rejections) == len(INVALID_CODES)
    assert all(r["submissions"] == 1 and "XK_XDR_SHXYM" in r["reason"] for r in rejections), rejections
    accepted_batches = {b for r in credit["records"] for b in r["batchIds"]}
    assert {r["batchId"] for r in rejections} & accepted_batches, "a batch held accepted and rejected records"

    specialty = received["specialty"]
    assert specialty["pending"] == 0 and specialty["accepted"] == expected.valid_rows
    failed = [r for r in specialty["records"] if r["SJSCZT"] != 3]
    assert len(failed) == len(BAD_ROWS) and all(r["SJSCZT"] in (2, -1) and r["SJWXYY"] for r in failed), failed

    d = status["deliveries"]
    assert d["pending"] == d["in_flight"] == d["retry_wait"] == d["uncertain"] == 0, status
    assert d["paper_pending"] == d["paper_delivered"] == 0, status
    assert status["rejected"] == len(BAD_ROWS) + len(ZWFW_MALFORMED), status
    assert status["messages"] + status["duplicates_suppressed"] + status["rejected"] == native_items, status
    with sqlite3.connect(db) as store:
        dead = store.execute(
            "SELECT d.destination, m.business_key, d.last_error FROM deliveries d "
            "JOIN messages m ON m.id = d.message_id WHERE d.state = 'dead'"
        ).fetchall()
        claim_keys = [
            key for (key,) in store.execute("SELECT business_key FROM messages WHERE type = 'supervision.task.claimed'")
        ]
    assert sorted((dest, key) for dest, key, _ in dead) == sorted(("credit", key) for key in expected.invalid)
    assert all("credit rejected the record: XK_XDR_SHXYM" in error for _, _, error in dead), dead
    assert len(claim_keys) == len(set(claim_keys)) == CLAIMS["count"], "each claim stored once"
    assert status["unrouted"] == CLAIMS["count"], "the platform's own claims wait for a closed-loop route"


def assert_faults_fired(traffic: dict[str, list[dict[str, Any]]], *, starts: int) -> None:
    """The faults really happened on every platform that speaks HTTP, and tokens really expired: each client logs
    in once per process (its token cache fetches one at a time), so more successful logins than that mean tokens
    were refreshed within a lifetime."""

    def faults(platform: str, where: Callable[[dict[str, Any]], bool] = lambda _e: True) -> set[str]:
        return {e["fault"] for e in traffic[platform] if e["fault"] and where(e)}

    assert faults("zwfw") >= {"error", "drop", "malformed"}, faults("zwfw")
    assert faults("hlwjg", lambda e: e["path"].endswith("/approval-records")) >= {"error", "drop", "malformed"}
    assert faults("hlwjg", lambda e: "/events" in e["path"]) & {"error", "drop", "malformed"}
    assert faults("credit", lambda e: e["path"].endswith("/batches")) >= {"error", "drop", "malformed"}
    assert faults("soap") >= {"error", "drop", "malformed", "down"}, faults("soap")
    # hlwjg is logged in to twice per process: by its destination adapter and by its event-feed source.
    for platform, login, clients in (("hlwjg", "/oauth2/token", 2), ("credit", "/auth/token", 1), ("soap", "/auth", 1)):
        logins = count(
            e
            for e in traffic[platform]
            if e["method"] == "POST" and e["path"].endswith(login) and not (e["fault"] or e.get("incomplete"))
        )
        assert logins > clients * starts, f"{platform}: tokens expired along the way ({logins} logins)"


def count(items: Iterable[Any]) -> int:
    return sum(1 for _ in items)
