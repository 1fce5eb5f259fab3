"""``shenguan demo``: the relay end to end in one process, against in-process mocks, with faults on.

It generates approvals (with duplicates and re-reports) on the 政务服务一体化平台 mock, makes the
互联网+监管 mock fail and drop responses, runs a gateway on a temporary database until everything is
relayed, and compares what the receiver holds with what was generated: zero lost, zero duplicated.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from adapters import DecodeError, SourceAdapter
from gateway.config import Config
from gateway.runtime import Gateway

__all__ = ["demo_config", "render_summary", "run_demo"]

DEMO_FAULTS = {"error_rate": 0.1, "drop_response_rate": 0.05, "token_ttl_s": 5}


def demo_config(base_url: str, db: Path) -> Config:
    """The same shape as ``examples/shenguan.toml``, pointed at the in-process mocks."""
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
                    "concurrency": 16,
                    "max_attempts": 30,
                    "backoff_initial_s": 0.05,
                    "backoff_max_s": 1.0,
                    "backoff_jitter_s": 0.05,
                    "breaker_failures": 50,
                    "breaker_cooldown_s": 0.5,
                    "timeout_s": 5,
                }
            },
            "routes": [{"type": "approval.decided", "destinations": ["hlwjg"]}],
        }
    )


async def run_demo(*, count: int = 300, seed: int = 7, timeout_s: float = 300) -> dict[str, Any]:
    """Run the demo and return its summary (``ok`` is true when nothing was lost or duplicated)."""
    from mock_platforms.server import run_in_background

    mocks = await run_in_background()
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=mocks.base_url, timeout=30) as client:
            generated = (
                await client.post(
                    "/zwfw/_mock/generate",
                    json={"count": count, "seed": seed, "duplicate_rate": 0.1, "revision_rate": 0.05},
                )
            ).json()
            await client.post("/hlwjg/_mock/faults", json={**DEMO_FAULTS, "seed": seed})
            with tempfile.TemporaryDirectory(prefix="shenguan-demo-") as tmp:
                gateway = Gateway(demo_config(mocks.base_url, Path(tmp) / "demo.db"))
                await gateway.start()
                try:
                    idle = await gateway.wait_idle(timeout_s=timeout_s)
                    status = await gateway.store.status()
                    latest = await latest_revisions(gateway.sources["zwfw"])
                finally:
                    await gateway.stop()
            received = (await client.get("/hlwjg/_mock/records")).json()
    finally:
        await mocks.stop()
    unique = int(generated["unique_facts"])
    accepted = int(received["accepted"])
    duplicates = int(received["duplicate_creations"])
    held = {r["approvalNo"]: r["dataVersion"] for r in received["records"]}
    stale = sorted(k for k, rev in latest.items() if held.get(k) != rev)
    return {
        "ok": idle and accepted == unique and duplicates == 0 and not stale,
        "idle": idle,
        "elapsed_s": round(time.monotonic() - started, 2),
        "zwfw": {"generated": generated["generated"], "unique_facts": unique},
        "hlwjg": {"accepted": accepted, "duplicate_creations": duplicates, "faults": DEMO_FAULTS},
        "gateway": status,
        "lost": max(unique - accepted, 0),
        "revisions_not_applied": len(stale),
    }


async def latest_revisions(source: SourceAdapter, page_size: int = 500) -> dict[str, int]:
    """Read the whole feed again, independently of the gateway's store: business key → latest revision."""
    latest: dict[str, int] = {}
    cursor: str | None = None
    while True:
        page = await source.poll(cursor, page_size)
        for record in page.records:
            try:
                envelopes = source.decode(record)
            except DecodeError:
                continue
            for env in envelopes:
                latest[env.business_key] = max(latest.get(env.business_key, 0), env.revision)
        if not page.has_more or page.next_cursor in (None, cursor):
            return latest
        cursor = page.next_cursor


def render_summary(summary: dict[str, Any]) -> str:
    gw = summary["gateway"]
    d = gw["deliveries"]
    faults = summary["hlwjg"]["faults"]
    lines = [
        "shenguan demo: 政务服务一体化平台 (zwfw) → shenguan → 互联网+监管 (hlwjg)",
        f"  zwfw feed items generated   {summary['zwfw']['generated']} "
        f"({summary['zwfw']['unique_facts']} unique approvals, the rest duplicates and re-reports)",
        f"  hlwjg faults injected       {faults['error_rate']:.0%} errors, "
        f"{faults['drop_response_rate']:.0%} dropped responses, tokens expire every {faults['token_ttl_s']} s",
        f"  gateway messages relayed    {gw['messages']} (new facts and revisions)",
        f"  duplicates suppressed       {gw['duplicates_suppressed']}",
        f"  rejected input              {gw['rejected']}",
        f"  deliveries                  {d['delivered']} delivered, {d['dead']} dead, {d['uncertain']} uncertain, "
        f"{d['pending'] + d['retry_wait'] + d['in_flight']} still open",
        f"  hlwjg holds                 {summary['hlwjg']['accepted']} approvals, "
        f"{summary['hlwjg']['duplicate_creations']} duplicate creations",
        f"  lost                        {summary['lost']}",
        f"  revisions not applied       {summary['revisions_not_applied']}",
        f"  elapsed                     {summary['elapsed_s']} s",
        "  result                      " + ("OK: every approval relayed exactly once" if summary["ok"] else "FAILED"),
    ]
    return "\n".join(lines)
