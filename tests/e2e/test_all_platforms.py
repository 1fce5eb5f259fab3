"""Every platform at once, with faults on every mock and the gateway SIGKILLed twice (issue 3, end to end).

One ``shenguan mocks serve`` process fakes all five platforms; one ``shenguan serve`` process runs the demo's
five-family configuration (``gateway.demo.demo_config``, the shape of ``examples/shenguan.toml``):

- approvals from the 政务服务一体化平台 (``zwfw``: a feed with exact duplicates and 重报 revisions, three granted
  approvals whose 统一社会信用代码 passes the check character but not the credit platform's category table, and
  two malformed items) and from the 工程建设 前置库 (``specialty``: the same approvals again, some of its own,
  and rows it must mark failed) go to 互联网+监管 (``hlwjg``), the 公共信用信息平台 (``credit``: the granted
  ones, in batches with a verdict per record) and the legacy SOAP 前置机 (``soap``: not idempotent);
- the rest of the closed loop: zwfw's 批前确认, 智慧踏勘 and guidance requests go to hlwjg, which answers them;
  supervision acts on the tasks (claims, inspections, results — some penalised —, breaches, revocation advice,
  guidance) and that flows to zwfw's linkage inbox, penalties to credit, revocation advice also onto paper; zwfw's
  feedback goes back to hlwjg.

Every mock misbehaves: server errors, responses dropped after the platform committed, truncated replies, tokens
that expire every second; the SOAP service and the exchange database go down for a while and come back. The
gateway is SIGKILLed twice and restarted; then the faults are cleared and everything must settle.

What must hold, counted at the receivers and in the store: each destination holds exactly the facts the feeds
carry (read again independently at the end), at their latest revision, created once; the credit platform judged
each record once — the records naming an invalid 统一社会信用代码 are the only dead deliveries, with its reason, in
batches whose other records were accepted; every exchange row is marked; every native item was stored exactly
once (as a message, a suppressed repeat or a rejection); nothing is left open or uncertain; the audit chain holds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import tomli_w
from procs import SHENGUAN, Gateway, Mocks, wait_for
from test_credit_batches import INVALID_CODES, granted, invalid_variants
from test_malformed_feed import variant
from test_specialty_cross_source import BAD_ROWS

from adapters import AcknowledgingSource, DecodeError, SourceAdapter
from adapters.registry import load
from gateway.config import Config
from gateway.demo import PAPER_DESTINATION, demo_config, expected_facts

# The zwfw feed is generated in three parts with one credit-invalid approval after each, so that those land in
# different batches; the 前置库 is given the same three parts (its own counter yields the same 办件编号).
ZWFW_PARTS = [{"count": 100, "seed": seed, "duplicate_rate": 0.1, "revision_rate": 0.1} for seed in (31, 32, 33)]
SPECIALTY_OWN = {"count": 30, "seed": 34, "duplicate_rate": 0.1, "revision_rate": 0.1}
REQUESTS = {"preapproval": 30, "site_inspection": 30, "guidance": 15}  # zwfw's linkage requests about its 办件
LOOP = {"kind": "loop", "count": 120, "duplicate_rate": 0.1, "revision_rate": 0.1}  # supervision acts, twice
ZWFW_MALFORMED = [
    variant("320700261121000098001", TRANSACT_TIME="20/11/2026"),  # bad date
    variant("320700261121000098002", APPLY_CARDNUMBER="91320700MA1X2Y3K06"),  # bad check character
]
MALFORMED_CASES = {i["PROJID"] for i in ZWFW_MALFORMED}

# Tokens live one second: every process lifetime sees several expire. (The 前置库's native API is its database,
# so what bites there is ``down``.)
FAULTS: dict[str, dict[str, Any]] = {
    "zwfw": {"error_rate": 0.15, "drop_response_rate": 0.1, "malformed_rate": 0.15, "seed": 1},
    "hlwjg": {"error_rate": 0.15, "drop_response_rate": 0.1, "malformed_rate": 0.1, "token_ttl_s": 1, "seed": 2},
    "credit": {"error_rate": 0.15, "drop_response_rate": 0.15, "malformed_rate": 0.15, "token_ttl_s": 1, "seed": 3},
    "soap": {"error_rate": 0.1, "drop_response_rate": 0.1, "malformed_rate": 0.1, "token_ttl_s": 1, "seed": 4},
}
HEALTHY = {"error_rate": 0.0, "drop_response_rate": 0.0, "malformed_rate": 0.0, "token_ttl_s": 3600, "down": False}

# What this run changes in the demo's configuration: retry budgets that outlast SOAP being down, small pages and
# batches (more requests, so every fault fires), quick polling, and a locked exchange database failing fast.
RETRY = {
    "max_attempts": 60,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 1.0,
    "backoff_jitter_s": 0.05,
    "breaker_failures": 20,
    "breaker_cooldown_s": 0.5,
    "timeout_s": 5,
}
OVERRIDES: dict[str, dict[str, Any]] = {
    "sources.zwfw": {"page_size": 40, "poll_interval_s": 0.1},
    "sources.gcjs": {"page_size": 25, "engine_options": {"connect_args": {"timeout": 0.5}}},
    "sources.zwfw-linkage": {"page_size": 40},
    "sources.hlwjg-events": {"page_size": 50, "poll_interval_s": 0.3},
    "destinations.hlwjg": RETRY | {"concurrency": 8},
    "destinations.zwfw": RETRY | {"concurrency": 8},
    "destinations.credit": RETRY | {"concurrency": 2, "batch_size": 8},
    "destinations.soap": RETRY | {"concurrency": 6},
}


def loop_config(mocks: Mocks, tmp_path: Path) -> Config:
    """The demo's five-family configuration on these mocks, with ``OVERRIDES`` and every file under ``tmp_path``."""
    base = demo_config(
        mocks.url, tmp_path / "shenguan.db", specialty_db=mocks.specialty_db, calendar_dir=tmp_path / "calendar"
    )
    data = base.model_dump(mode="json", exclude_none=True)
    data["gateway"]["listen"] = "127.0.0.1:0"
    data["paper"]["dir"] = str(tmp_path / "paper")
    for path, values in OVERRIDES.items():
        kind, name = path.split(".", 1)
        data[kind][name] |= values
    for source in data["sources"].values():
        source["error_backoff_max_s"] = 1.0
    return Config.model_validate(data)


class Approvals:
    """What the approval sources were given, computed independently of the gateway and of ``expected_facts``
    (which cannot read the 前置库 again: its rows are consumed as they are marked)."""

    def __init__(self, feed: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        self.latest: dict[str, int] = {}  # every fact → its latest revision
        self.own: dict[str, int] = {}  # the facts only the 前置库 has → latest revision
        self.credit: dict[str, int] = {}  # 决定文书号 of each granted, valid fact → its latest granted revision
        self.own_granted: set[str] = set()
        self.invalid = {i["PROJID"] for i in feed if i["APPLY_CARDNUMBER"] in INVALID_CODES}
        self.feed_items, self.rows = len(feed), len(rows)
        bad = {r["SPSXSLBM"] for r in BAD_ROWS}
        for item in feed:
            if item["PROJID"] not in MALFORMED_CASES:
                self._see(item["PROJID"], int(item["DATAVERSION"]), item["XK_WSH"] if granted(item) else None)
        in_feed = set(self.latest)
        for row in rows:
            if row["SPSXSLBM"] in bad:
                continue
            case, revision = row["SPSXSLBM"], int(row["SJBBH"])
            self._see(case, revision, row["PFWH"] if row["BLZT"] == "11" else None)
            if case not in in_feed:
                self.own[case] = max(self.own.get(case, 0), revision)
                if row["BLZT"] == "11":
                    self.own_granted.add(case)
        self.valid_rows = len(rows) - len(BAD_ROWS)

    def _see(self, case: str, revision: int, credit_key: str | None) -> None:
        self.latest[case] = max(self.latest.get(case, 0), revision)
        if credit_key is not None and case not in self.invalid:
            self.credit[credit_key] = max(self.credit.get(credit_key, 0), revision)


def progress(mocks: Mocks, approvals: Approvals) -> float:
    """The share of the approvals (and their 双公示 records) the three approval receivers hold (0.0 … 1.0)."""
    held = mocks.records("hlwjg")["facts"]["approvals"] + mocks.records("soap")["accepted"]
    held += min(mocks.records("credit")["accepted"], len(approvals.credit))
    return held / (2 * len(approvals.latest) + len(approvals.credit))


async def feed_outcomes(config: Config) -> dict[str, int]:
    """Per re-readable source, how many things the gateway must have stored from its whole feed: one per decoded
    envelope (a message or a suppressed repeat) and one per item that does not decode (a rejection)."""
    stored: dict[str, int] = {}
    for name, section in config.sources.items():
        source: SourceAdapter = load(section.adapter).from_config(name, section.adapter_options())  # type: ignore[assignment]
        try:
            if isinstance(source, AcknowledgingSource):
                continue
            stored[name], cursor = 0, None
            while True:
                page = await source.poll(cursor, 500)
                for record in page.records:
                    try:
                        stored[name] += len(source.decode(record))
                    except DecodeError:
                        stored[name] += 1
                if not page.has_more or page.next_cursor in (None, cursor):
                    break
                cursor = page.next_cursor
        finally:
            await source.aclose()
    return stored


def held_versions(platform: str, report: dict[str, Any]) -> Counter[tuple[str, int]]:
    """(record number, version) of every fact a receiver holds — it names facts by its own kinds, not event types,
    and a request and its answer share a number, so a multiset of (number, version) is what can be compared."""
    if platform == "hlwjg":
        held = Counter((r["approvalNo"], r["dataVersion"]) for r in report["records"])
        held.update((m["key"], m["dataVersion"]) for m in report["messages"])
        held.update((c["taskNo"], c["claim"].get("dataVersion", 1)) for c in report["claims"])
        return held
    if platform == "soap":
        return Counter((r["caseNo"], r["dataVersion"]) for r in report["records"])
    return Counter((r["key"], r["dataVersion"]) for r in report["records"])  # zwfw's linkage inbox


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
        for kind, count in REQUESTS.items():
            mocks.post("/zwfw/_mock/generate", {"kind": kind, "count": count, "seed": 36, "duplicate_rate": 0.1})
        approvals = Approvals(mocks.zwfw_feed(), mocks.records("specialty")["records"])
        facts = sum(p["count"] for p in (*ZWFW_PARTS, SPECIALTY_OWN)) + len(INVALID_CODES)
        assert len(approvals.latest) == facts and len(approvals.invalid) == len(INVALID_CODES)
        for platform, faults in FAULTS.items():
            mocks.faults(platform, **faults)
        mocks.faults("specialty", down=True)  # the exchange database is unreachable when the gateway starts
        config = loop_config(mocks, tmp_path)
        gateway.config.write_text(tomli_w.dumps(config.model_dump(mode="json", exclude_none=True)))

        at_kill: list[float] = []

        def until(fraction: float, what: str) -> None:
            wait_for(
                lambda: gateway.alive() and progress(mocks, approvals) >= fraction,
                180,  # a hang guard, not a performance bound
                f"{what} ({fraction:.0%} of the approvals held)\n{gateway.logs()}",
                interval=0.2,
            )

        def kill_and_restart() -> None:
            gateway.kill()
            at_kill.append(progress(mocks, approvals))
            gateway.start()

        gateway.start()
        until(0.15, "relaying under faults while the 前置库 is down")
        mocks.faults("soap", down=True)
        down_since = time.monotonic()
        until(0.35, "relaying while SOAP and the 前置库 are down")
        kill_and_restart()
        mocks.post("/hlwjg/_mock/generate", LOOP | {"seed": 37})  # supervision acts on the tasks it holds so far
        until(0.5, "relaying after the first restart")
        time.sleep(max(0.0, 3.0 - (time.monotonic() - down_since)))  # down for a while: at least 3 s
        mocks.faults("soap", down=False)
        mocks.faults("specialty", down=False)
        mocks.post("/hlwjg/_mock/generate", LOOP | {"seed": 38})  # and on more tasks
        until(0.7, "relaying after SOAP and the 前置库 came back")
        kill_and_restart()
        until(0.85, "relaying after the second restart")
        for platform in (*FAULTS, "specialty"):
            mocks.faults(platform, **HEALTHY)

        approval_items = approvals.feed_items + approvals.rows
        last: list[dict[str, Any]] = []

        def settled() -> bool:
            """Idle, every approval read, and still so a moment later: a platform answers a message when it is
            delivered, in its own feed, which a poller reads a moment after."""
            status = gateway.status()
            d = status["deliveries"]
            idle = (
                d["pending"] + d["in_flight"] + d["retry_wait"] == 0
                and status["messages"] + status["duplicates_suppressed"] + status["rejected"] >= approval_items
                and mocks.records("specialty")["pending"] == 0
            )
            was, last[:] = last[:], [status]
            return idle and was == [status]

        assert gateway.alive(), gateway.logs()
        wait_for(settled, 180, f"every item read and every delivery terminal\n{gateway.logs()}", interval=1.0)
        assert gateway.terminate() == 0, gateway.logs()
        status = gateway.status()
        received = {p: mocks.records(p) for p in ("hlwjg", "zwfw", "soap", "credit", "specialty")}
        traffic = {p: mocks.traffic(p) for p in ("zwfw", "hlwjg", "soap", "credit")}
        expected = asyncio.run(expected_facts(config))  # every re-readable feed read again, routed by the config
        stored_from = asyncio.run(feed_outcomes(config))
        audit = subprocess.run(
            [*SHENGUAN, "audit", "verify", "--config", str(gateway.config), "--json"], capture_output=True, timeout=60
        )
    finally:
        if gateway.alive():
            gateway.kill()
        mocks.close()

    # The run was what it claims to be.
    assert gateway.starts == 3 and len(at_kill) == 2 and all(f < 1 for f in at_kill), at_kill
    logs = "".join(log.read_text(errors="replace") for log in sorted(tmp_path.glob("serve-*.log")))
    assert '"relay.recovered_leases"' in logs, "a kill landed while attempts were in flight"
    assert '"source": "gcjs"' in logs and "database is locked" in logs, "the 前置库 was down while the gateway ran"
    assert_faults_fired(traffic, starts=gateway.starts)

    # Each receiver holds exactly the facts routed to it, at their latest revision, created once.
    own = {("approval.decided", case): revision for case, revision in approvals.own.items()}
    for platform in ("hlwjg", "zwfw", "soap"):
        report = received[platform]
        wanted = expected.get(platform, {}) | (own if platform in ("hlwjg", "soap") else {})
        assert report["duplicate_creations"] == 0 and report["rejected"] == 0, (platform, report["rejected"])
        assert held_versions(platform, report) == Counter((key, rev) for (_t, key), rev in wanted.items()), platform
    assert {r["approvalNo"]: r["dataVersion"] for r in received["hlwjg"]["records"]} == approvals.latest
    assert {r["caseNo"]: r["dataVersion"] for r in received["soap"]["records"]} == approvals.latest
    assert received["zwfw"]["accepted"] > 0 and any(t[0] == "approval.feedback.sent" for t in expected["hlwjg"])

    # Credit: every 双公示 record judged once; those naming an invalid code refused, inside mixed batches.
    credit = received["credit"]
    rejections = credit["rejections"]
    assert credit["duplicate_creations"] == 0
    assert credit["accepted"] + len(rejections) == len(expected["credit"]) + len(approvals.own_granted)
    approval_records = {r["data"]["XK_WSH"]: r["version"] for r in credit["records"] if "XK_WSH" in r["data"]}
    assert approval_records == approvals.credit, "every granted, valid approval once, at its latest revision"
    assert any("CF_WSH" in r["data"] for r in credit["records"]), "penalties reached credit too"
    assert all(r["submissions"] == len(r["recordIds"]) for r in credit["records"]), "each version judged once"
    assert len(rejections) >= len(INVALID_CODES)
    assert all(r["submissions"] == 1 and "_XDR_SHXYM" in r["reason"] for r in rejections), rejections
    accepted_batches = {b for r in credit["records"] for b in r["batchIds"]}
    assert {r["batchId"] for r in rejections} & accepted_batches, "a batch held accepted and rejected records"

    # Every exchange row marked: 3, or 2/-1 with the reason.
    specialty = received["specialty"]
    assert specialty["pending"] == 0 and specialty["accepted"] == approvals.valid_rows
    failed = [r for r in specialty["records"] if r["SJSCZT"] != 3]
    assert len(failed) == len(BAD_ROWS) and all(r["SJSCZT"] in (2, -1) and r["SJWXYY"] for r in failed), failed

    # The store: nothing open or uncertain, the dead are exactly credit's refusals, every item stored once.
    d = status["deliveries"]
    assert d["pending"] == d["in_flight"] == d["retry_wait"] == d["uncertain"] == 0, status
    assert d["paper_pending"] == len(expected[f"paper:{PAPER_DESTINATION}"]) > 0, status
    assert d["dead"] == len(rejections), status
    assert status["rejected"] == len(BAD_ROWS) + len(ZWFW_MALFORMED), status
    with sqlite3.connect(db) as store:
        dead = store.execute(
            "SELECT d.destination, d.last_error, m.envelope FROM deliveries d "
            "JOIN messages m ON m.id = d.message_id WHERE d.state = 'dead'"
        ).fetchall()
        stored = Counter[str]()
        for table in ("messages", "suppressions", "rejected"):
            stored.update(dict(store.execute(f"SELECT source, COUNT(*) FROM {table} GROUP BY source").fetchall()))
    assert all(dest == "credit" and "credit rejected the record" in error for dest, error, _ in dead), dead
    assert all(any(code in envelope for code in INVALID_CODES) for _, _, envelope in dead), "only invalid codes"
    assert {k: stored[k] for k in stored_from} == stored_from, "every feed item stored exactly once"
    assert stored["gcjs"] == approvals.rows, "every exchange row stored exactly once"
    assert audit.returncode == 0 and json.loads(audit.stdout)["ok"], audit.stdout  # 全程留痕 holds across the kills


def assert_faults_fired(traffic: dict[str, list[dict[str, Any]]], *, starts: int) -> None:
    """The faults really happened on every platform that speaks HTTP, and tokens really expired: each client logs
    in once per process (its token cache fetches one at a time), so more successful logins than that mean tokens
    were refreshed within a lifetime."""

    def faults(platform: str, where: Callable[[dict[str, Any]], bool] = lambda _e: True) -> set[str]:
        return {e["fault"] for e in traffic[platform] if e["fault"] and where(e)}

    assert faults("zwfw", lambda e: "/banjian/" in e["path"]) >= {"error", "drop", "malformed"}, faults("zwfw")
    assert faults("zwfw", lambda e: "/linkage/" in e["path"]) & {"error", "drop", "malformed"}
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
