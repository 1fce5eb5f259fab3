"""``shenguan demo``: the whole closed loop across all five platform families, in one process, with faults on.

What it runs, against in-process mocks (``mock_platforms``) and a gateway on a temporary database:

1. The approval side writes: 办件 on the 政务服务一体化平台 (``zwfw``, with duplicates and re-reports), the first
   half of the same approvals again in the 工程建设 前置库 (``specialty``), and 批前确认, site inspection (智慧踏勘)
   and guidance requests about some of them on zwfw's linkage feed.
2. Every receiver fails some requests, drops some responses after committing and expires its tokens every few
   seconds. The gateway relays approvals to 互联网+监管 (``hlwjg``), the credit platform (``credit``, 双公示 of the
   granted ones) and a legacy SOAP 前置机 (``soap``), and the requests to hlwjg, which answers them at once.
3. Supervision then acts on every task it holds (claims, inspections, results — some penalised —, 告知承诺 breaches,
   revocation advice, guidance questions): hlwjg's event feed flows back to zwfw's linkage inbox, penalties to
   credit, revocation advice also onto paper for the legal office (a route whose channel is ``paper``); zwfw
   answers advice and licence-changing results with feedback, which flows to hlwjg. The demo waits until nothing
   moves any more.
4. Independently of the gateway's store, it reads every feed again, routes what it decodes with the configured
   routes, and compares with what each platform holds: every destination must hold exactly the unique facts, at
   their latest revision where the platform shows it, with ``duplicate_creations`` 0 everywhere.

``demo_config`` builds the five-family configuration on its own, so other harnesses (a multi-process test with
``shenguan mocks serve`` and SIGKILLs) can run exactly this loop.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from adapters import AcknowledgingSource, DecodeError, SourceAdapter
from adapters.registry import load
from gateway.config import Config
from gateway.routing import ConfigRouter
from gateway.runtime import Gateway

__all__ = [
    "DEMO_FAULTS",
    "PAPER_DESTINATION",
    "demo_config",
    "expected_facts",
    "latest_revisions",
    "relay_config",
    "render_summary",
    "run_demo",
    "settle",
]

DEMO_FAULTS = {"error_rate": 0.1, "drop_response_rate": 0.05, "token_ttl_s": 5}
FAULTED = ("zwfw", "hlwjg", "credit", "soap")
PAPER_DESTINATION = "fazhi"  # 法制审核科: the legal office, reached on paper only

# Where each type of the loop goes (DESIGN §1): the approval side's messages to the supervision platform, the
# supervision side's to the approval platform; guidance both ways, by who asked.
_TO_HLWJG = ("approval.feedback.sent", "preapproval.confirmation.requested", "site_inspection.requested")
_TO_ZWFW = (
    "supervision.task.claimed",
    "supervision.inspection.reported",
    "supervision.result.reported",
    "commitment.breach.reported",
    "license.revocation.advised",
    "preapproval.confirmation.answered",
    "site_inspection.reported",
)


def _relay(**overrides: Any) -> dict[str, Any]:
    """Retry settings that ride out the demo's faults quickly."""
    return {
        "concurrency": 16,
        "max_attempts": 40,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 1.0,
        "backoff_jitter_s": 0.05,
        "breaker_failures": 50,
        "breaker_cooldown_s": 0.5,
        "timeout_s": 5,
        **overrides,
    }


def relay_config(base_url: str, db: Path | str) -> Config:
    """The smallest useful relay: approvals from the zwfw mock's feed to the hlwjg mock, with quick retries.

    What many tests want (one source, one destination, the demo's retry settings) without the whole loop.
    """
    return Config.model_validate(
        {
            "gateway": {"db": str(db), "sqlite_synchronous": "NORMAL", "shutdown_grace_s": 5},
            "sources": {
                "zwfw": {
                    "adapter": "zwfw",
                    "base_url": f"{base_url}/zwfw",
                    "paasid": "shenguan",
                    "token": "zwfw-mock-token",
                    "poll_interval_s": 0.2,
                    "page_size": 200,
                }
            },
            "destinations": {
                "hlwjg": {
                    "adapter": "hlwjg",
                    "base_url": f"{base_url}/hlwjg",
                    "client_id": "shenguan",
                    "client_secret": "hlwjg-mock-secret",
                    **_relay(max_attempts=30),
                }
            },
            "routes": [{"type": "approval.decided", "destinations": ["hlwjg"]}],
        }
    )


def demo_config(
    base_url: str,
    db: Path | str,
    *,
    specialty_db: Path | str | None = None,
    calendar_dir: Path | str | None = None,
    poll_interval_s: float = 0.2,
) -> Config:
    """The five-family configuration of ``examples/shenguan.toml``, pointed at mocks on ``base_url``.

    ``specialty_db`` is the 前置库 file the specialty mock writes (``shenguan mocks serve --specialty-db``;
    default: ``mock-specialty.db`` beside ``db``); ``calendar_dir`` the deadline tracker's holiday schedules
    (default: ``calendar`` beside ``db``, so a demo never reads or writes the working directory).
    """
    from mock_platforms.generator import issuer_code

    here = Path(db).parent
    exchange = Path(specialty_db) if specialty_db is not None else here / "mock-specialty.db"
    zwfw_auth = {"base_url": f"{base_url}/zwfw", "paasid": "shenguan", "token": "zwfw-mock-token"}
    hlwjg_auth = {"base_url": f"{base_url}/hlwjg", "client_id": "shenguan", "client_secret": "hlwjg-mock-secret"}
    feed = {"poll_interval_s": poll_interval_s, "page_size": 200, "error_backoff_max_s": 2}
    routes: list[dict[str, Any]] = [
        {"type": "approval.decided", "destinations": ["hlwjg", "soap"]},
        {"type": "approval.decided", "destinations": ["credit"], "where": {"result": ["granted"]}},
        {"type": "supervision.task.claimed", "destinations": ["hlwjg"], "sources": ["shenguan"]},
        *({"type": t, "destinations": ["zwfw"]} for t in _TO_ZWFW),
        *({"type": t, "destinations": ["hlwjg"]} for t in _TO_HLWJG),
        *(
            {"type": t, "destinations": [to], "sources": [source]}
            for t in ("guidance.requested", "guidance.answered")
            for source, to in (("hlwjg-events", "zwfw"), ("zwfw-linkage", "hlwjg"))
        ),
        {"type": "credit.penalty.published", "destinations": ["credit"]},
        {"type": "license.revocation.advised", "destinations": [PAPER_DESTINATION], "channel": "paper"},
    ]
    return Config.model_validate(
        {
            "gateway": {"db": str(db), "sqlite_synchronous": "NORMAL", "shutdown_grace_s": 5},
            "sources": {
                "zwfw": {"adapter": "zwfw", **zwfw_auth, **feed},
                "gcjs": {"adapter": "specialty", "url": f"sqlite:///{exchange}", **feed},
                "zwfw-linkage": {"adapter": "zwfw-linkage", **zwfw_auth, **feed},
                "hlwjg-events": {"adapter": "hlwjg-events", **hlwjg_auth, **feed},
            },
            "destinations": {
                "hlwjg": {"adapter": "hlwjg", **hlwjg_auth, **_relay()},
                "zwfw": {"adapter": "zwfw", **zwfw_auth, **_relay()},
                "credit": {
                    "adapter": "credit",
                    "base_url": f"{base_url}/credit",
                    "app_key": "shenguan",
                    "app_secret": "credit-mock-secret",
                    "authority_name": "连云港市行政审批局",
                    "authority_code": issuer_code("320700"),
                    "batch_size": 100,
                    "batch_max_age_s": 0.2,
                    **_relay(concurrency=2),
                },
                "soap": {
                    "adapter": "soap",
                    "base_url": f"{base_url}/soap",
                    "user": "shenguan",
                    "password": "soap-mock-password",
                    "service_id": "SGLD_APPROVAL_DECIDED",
                    "receiver": "QZJ-320700",
                    "sender": "shenguan",
                    **_relay(concurrency=4),
                },
            },
            "routes": routes,
            "deadlines": {
                "check_s": 2,
                "calendar_dir": str(calendar_dir if calendar_dir is not None else here / "calendar"),
                "credit_destinations": ["credit"],
                "claim_destinations": ["hlwjg"],
            },
        }
    )


async def settle(gateway: Gateway, *, timeout_s: float, quiet_s: float = 1.0) -> bool:
    """Wait until the loop stops moving: idle, and still idle with nothing new after ``quiet_s``.

    ``Gateway.wait_idle`` alone is not enough here: a platform answers a request *when it is delivered*, in its
    own feed, which a poller reads a moment later. So the demo waits for idle, lets the pollers look again, and
    accepts only when the store's counts did not change in between.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    before: Any = None
    while loop.time() < deadline:
        if not await gateway.wait_idle(timeout_s=max(deadline - loop.time(), 0.1)):
            return False
        now = await gateway.store.status()
        if now == before:
            return True
        before = now
        await asyncio.sleep(quiet_s)
    return False


def _sources(config: Config) -> dict[str, SourceAdapter]:
    built: dict[str, SourceAdapter] = {}
    for name, section in config.sources.items():
        if section.mode != "push":
            built[name] = load(section.adapter).from_config(name, section.adapter_options())  # type: ignore[assignment]
    return built


async def latest_revisions(source: SourceAdapter, page_size: int = 500) -> dict[tuple[str, str], int]:
    """Read a whole feed again, independently of the gateway's store: (type, business key) → latest revision."""
    latest: dict[tuple[str, str], int] = {}
    cursor: str | None = None
    while True:
        page = await source.poll(cursor, page_size)
        for record in page.records:
            try:
                envelopes = source.decode(record)
            except DecodeError:
                continue
            for env in envelopes:
                key = (env.type, env.business_key)
                latest[key] = max(latest.get(key, 0), env.revision)
        if not page.has_more or page.next_cursor in (None, cursor):
            return latest
        cursor = page.next_cursor


async def expected_facts(config: Config) -> dict[str, dict[tuple[str, str], int]]:
    """Per destination (``paper:NAME`` for paper routes), the unique facts the routes send there and their latest
    revision, from every feed read again from its start.

    Sources that are consumed as they are read (a 前置库 whose rows are marked) cannot be read again; the demo's
    前置库 holds a subset of zwfw's approvals, so the feeds that can be re-read cover every fact.
    """
    router = ConfigRouter(config.routes)
    expected: dict[str, dict[tuple[str, str], int]] = {}
    sources = _sources(config)
    try:
        for source in sources.values():
            if isinstance(source, AcknowledgingSource):
                continue
            cursor: str | None = None
            while True:
                page = await source.poll(cursor, 500)
                for record in page.records:
                    try:
                        envelopes = source.decode(record)
                    except DecodeError:
                        continue
                    for env in envelopes:
                        for route in router(env):
                            where = route.destination if route.channel == "platform" else f"paper:{route.destination}"
                            bucket = expected.setdefault(where, {})
                            key = (env.type, env.business_key)
                            bucket[key] = max(bucket.get(key, 0), env.revision)
                if not page.has_more or page.next_cursor in (None, cursor):
                    break
                cursor = page.next_cursor
    finally:
        for source in sources.values():
            await source.aclose()
    return expected


def _stale(expected: Mapping[tuple[str, str], int], held: Counter[tuple[str, int]] | None) -> int | None:
    """Facts whose latest revision the platform does not hold (``None``: it does not show versions).

    Compared as (business key, version) multisets: a platform names facts by its own kinds, not by event type,
    and two types may share a number (a request and its answer), which a multiset keeps apart.
    """
    if held is None:
        return None
    wanted = Counter((key, revision) for (_type, key), revision in expected.items())
    return sum((wanted - held).values())


def _held_versions(platform: str, report: Mapping[str, Any]) -> Counter[tuple[str, int]] | None:
    """(record number, version) of every fact a platform holds, where its records show both."""
    if platform == "hlwjg":
        held = Counter((r["approvalNo"], r["dataVersion"]) for r in report["records"] if not r["duplicate"])
        held.update((m["key"], m["dataVersion"]) for m in report.get("messages", []) if not m["duplicate"])
        held.update((c["taskNo"], c["claim"].get("dataVersion", 1)) for c in report["claims"] if not c["duplicate"])
        return held
    if platform == "zwfw":
        return Counter((r["key"], r["dataVersion"]) for r in report["records"] if not r["duplicate"])
    if platform == "soap":
        return Counter((r["caseNo"], r["dataVersion"]) for r in report["records"] if not r["duplicate"])
    return None


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (a Chinese character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 0)


async def run_demo(*, count: int = 300, seed: int = 7, timeout_s: float = 120) -> dict[str, Any]:
    """Run the demo and return its summary (``ok``: every destination holds exactly the unique facts, no duplicates)."""
    from mock_platforms.app import create_app
    from mock_platforms.server import run_in_background

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shenguan-demo-") as tmp:
        here = Path(tmp)
        app = create_app(specialty_db=here / "mock-specialty.db")
        mocks = await run_in_background(app=app)
        try:
            async with httpx.AsyncClient(base_url=mocks.base_url, timeout=30) as client:
                generated = await _generate_approval_side(client, count, seed)
                for platform in FAULTED:
                    await client.post(f"/{platform}/_mock/faults", json={**DEMO_FAULTS, "seed": seed})
                config = demo_config(mocks.base_url, here / "demo.db", specialty_db=here / "mock-specialty.db")
                gateway = Gateway(config)
                await gateway.start()
                try:
                    settled = await settle(gateway, timeout_s=timeout_s / 2)
                    loop = {"kind": "loop", "count": count * 2, "seed": seed, "duplicate_rate": 0.1}
                    acted = (await client.post("/hlwjg/_mock/generate", json=loop | {"revision_rate": 0.1})).json()
                    settled = await settle(gateway, timeout_s=timeout_s / 2) and settled
                    status = await gateway.store.status()
                    overview = await gateway.store.destination_overview()  # type: ignore[attr-defined]
                finally:
                    await gateway.stop()
                for platform in FAULTED:
                    await client.post(f"/{platform}/_mock/faults", json={"error_rate": 0, "drop_response_rate": 0})
                expected = await expected_facts(config)
                reports = {
                    p: (await client.get(f"/{p}/_mock/records")).json()
                    for p in ("hlwjg", "zwfw", "credit", "soap", "specialty")
                }
        finally:
            await mocks.stop()
    platforms = _platform_rows(expected, reports, overview, generated)
    ok = settled and all(row["ok"] for row in platforms.values())
    return {
        "ok": ok,
        "settled": settled,
        "elapsed_s": round(time.monotonic() - started, 2),
        "generated": generated | {"supervision_events": acted["generated"]},
        "faults": DEMO_FAULTS,
        "platforms": platforms,
        "gateway": status,
    }


async def _generate_approval_side(client: httpx.AsyncClient, count: int, seed: int) -> dict[str, Any]:
    zwfw = (
        await client.post(
            "/zwfw/_mock/generate",
            json={"count": count, "seed": seed, "duplicate_rate": 0.1, "revision_rate": 0.05},
        )
    ).json()
    specialty = (await client.post("/specialty/_mock/generate", json={"count": count // 2, "seed": seed})).json()
    requests = {}
    for kind, share in (("preapproval", 10), ("site_inspection", 10), ("guidance", 20)):
        body = {"kind": kind, "count": max(count // share, 1), "seed": seed, "duplicate_rate": 0.1}
        requests[kind] = (await client.post("/zwfw/_mock/generate", json=body)).json()["unique_facts"]
    return {
        "approvals": zwfw["unique_facts"],
        "zwfw_feed_items": zwfw["generated"],
        "specialty_rows": specialty["generated"],
        "requests": requests,
    }


def _platform_rows(
    expected: Mapping[str, Mapping[tuple[str, str], int]],
    reports: Mapping[str, Mapping[str, Any]],
    overview: Mapping[str, Mapping[str, Any]],
    generated: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    roles = {
        "hlwjg": "approvals, requests, feedback",
        "zwfw": "supervision → approval bureau",
        "credit": "双公示: 行政许可, 行政处罚",
        "soap": "approvals via the 前置机",
    }
    for platform, role in roles.items():
        report = reports[platform]
        wanted = expected.get(platform, {})
        stale = _stale(wanted, _held_versions(platform, report))
        row = {
            "role": role,
            "expected": len(wanted),
            "held": int(report["accepted"]),
            "duplicate_creations": int(report["duplicate_creations"]),
            "rejected": int(report["rejected"]),
            "stale": stale,
        }
        row["ok"] = row["held"] == row["expected"] and row["duplicate_creations"] == 0 and not stale
        rows[platform] = row
    specialty = reports["specialty"]
    rows["specialty"] = {
        "role": "source: 前置库 rows marked read",
        "expected": int(generated["specialty_rows"]),
        "held": int(specialty["accepted"]),
        "duplicate_creations": int(specialty["duplicate_creations"]),
        "rejected": int(specialty["rejected"]),
        "stale": None,
    }
    rows["specialty"]["ok"] = rows["specialty"]["held"] == rows["specialty"]["expected"]
    paper = overview.get(PAPER_DESTINATION, {})
    counts = paper.get("counts", paper) if isinstance(paper, Mapping) else {}
    rows["paper"] = {
        "role": "撤销意见 on paper (法制审核科)",
        "expected": len(expected.get(f"paper:{PAPER_DESTINATION}", {})),
        "held": int(counts.get("paper_pending", 0)) + int(counts.get("paper_delivered", 0)),
        "duplicate_creations": 0,
        "rejected": 0,
        "stale": None,
    }
    rows["paper"]["ok"] = rows["paper"]["held"] == rows["paper"]["expected"]
    return rows


def render_summary(summary: dict[str, Any]) -> str:
    """The summary as a per-platform table, the gateway's counts and the verdict."""
    gen, gw, faults = summary["generated"], summary["gateway"], summary["faults"]
    d = gw["deliveries"]
    requests = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in gen["requests"].items())
    lines = [
        "shenguan demo: the closed loop across zwfw, the 前置库, hlwjg, credit and a SOAP 前置机",
        f"  approval side   {gen['approvals']} approvals ({gen['zwfw_feed_items']} zwfw feed items with duplicates "
        f"and re-reports; {gen['specialty_rows']} again in the 前置库), requests: {requests}",
        f"  supervision     {gen['supervision_events']} events on hlwjg's feed (claims, inspections, results, "
        "penalties, breaches, advice, guidance)",
        f"  faults          {faults['error_rate']:.0%} errors, {faults['drop_response_rate']:.0%} dropped responses, "
        f"tokens expire every {faults['token_ttl_s']} s (zwfw, hlwjg, credit, soap)",
        "",
        f"  {'platform':<10} {'role':<34} {'expected':>8} {'held':>6} {'dup_creations':>13} {'rejected':>8}  stale",
    ]
    for name, row in summary["platforms"].items():
        stale = "-" if row["stale"] is None else str(row["stale"])
        mark = "" if row["ok"] else "   <-- MISMATCH"
        lines.append(
            f"  {name:<10} {_pad(row['role'], 34)} {row['expected']:>8} {row['held']:>6} "
            f"{row['duplicate_creations']:>13} {row['rejected']:>8}  {stale}{mark}"
        )
    lines += [
        "",
        f"  gateway         {gw['messages']} messages relayed, {gw['duplicates_suppressed']} duplicates suppressed, "
        f"{gw['rejected']} rejected, {gw['unrouted']} unrouted",
        f"  deliveries      {d['delivered']} delivered, {d['paper_pending']} on paper, {d['dead']} dead, "
        f"{d['uncertain']} uncertain, {d['pending'] + d['retry_wait'] + d['in_flight']} still open",
        f"  elapsed         {summary['elapsed_s']} s" + ("" if summary["settled"] else " (did not settle in time)"),
        "  result          "
        + (
            "OK: every destination holds exactly the unique facts, no duplicate creations"
            if summary["ok"]
            else "FAILED"
        ),
    ]
    return "\n".join(lines)
