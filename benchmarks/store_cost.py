"""What the store's hot path costs per message, in CPU: ingesting pages, then leasing and completing them.

    python benchmarks/store_cost.py                  # SQLite and PostgreSQL (when reachable), 5,000 approvals
    python benchmarks/store_cost.py --count 20000 --store postgresql

The relay legs of ``run.py`` measure throughput, which on a shared two-core machine moves with whatever else
runs. A change to how the store writes a page is judged better by the CPU it costs, which barely does: this
drives one store directly (no HTTP, no relay), with realistic approvals from the zwfw mock's generator in
pages of 100, and reads the CPU clock of this process (the client: Python, the driver) and, for PostgreSQL,
of the one server backend the store's single pooled connection talks to (``/proc/<pid>/stat``; ``null`` when
the server is not on this machine). A warm-up of ``count / 5`` approvals comes first, so statements are
prepared and caches warm. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.zwfw.codec import to_envelope
from benchmarks.pg import fresh_database, unavailable
from benchmarks.procs import cpu_s
from gateway.store import DeliveryState, Outcome, Route
from mock_platforms.generator import generate_banjian
from schemas import Envelope

__all__ = ["measure"]

PAGE = 100


def _route(_env: Envelope) -> list[Route]:
    return [Route("hlwjg")]


def _backend_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return cpu_s(pid)
    except OSError:  # the server runs elsewhere (or in another PID namespace)
        return None


async def measure(store: Any, count: int, *, backend_pid: int | None = None, seed: int = 7) -> dict[str, Any]:
    """Ingest ``count`` approvals (after a warm-up) in pages, then lease and complete them; CPU ms per message.

    ``backend_pid``: the server process whose CPU counts as the store's server side (PostgreSQL).
    """
    warmup = max(PAGE, count // 5)
    items = generate_banjian(warmup + count, seed)
    envelopes = [to_envelope(item, source="zwfw") for item in items]
    for start in range(0, warmup, PAGE):
        await store.ingest_page("zwfw", envelopes[start : start + PAGE], [], str(start), _route)
    await _drain(store)

    def clocks() -> tuple[float, float | None]:
        return time.process_time(), _backend_cpu_s(backend_pid)

    before = clocks()
    for start in range(warmup, warmup + count, PAGE):
        await store.ingest_page("zwfw", envelopes[start : start + PAGE], [], str(start), _route)
    ingested = clocks()
    relayed = await _drain(store)
    after = clocks()
    if relayed != count:
        raise RuntimeError(f"leased and completed {relayed} deliveries, expected {count}")
    return {
        "messages": count,
        "ingest_client_ms": _per_message(before[0], ingested[0], count),
        "ingest_server_ms": _per_message(before[1], ingested[1], count),
        "lease_complete_client_ms": _per_message(ingested[0], after[0], count),
        "lease_complete_server_ms": _per_message(ingested[1], after[1], count),
    }


async def _drain(store: Any) -> int:
    done = 0
    while rows := await store.lease_due(owner="bench", destination="hlwjg", limit=PAGE, lease_s=60):
        await store.complete("bench", [Outcome(row.id, DeliveryState.delivered) for row in rows])
        done += len(rows)
    return done


def _per_message(start: float | None, end: float | None, count: int) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000 / count, 4)


async def _sqlite(count: int) -> dict[str, Any]:
    from gateway.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory(prefix="shenguan-store-cost-") as tmp:
        store = SQLiteStore(Path(tmp) / "shenguan.db")  # synchronous=FULL, the default
        await store.open()
        try:
            return await measure(store, count)
        finally:
            await store.close()


async def _postgresql(url: str, count: int) -> dict[str, Any]:
    from gateway.store.postgres import PostgresStore

    store = PostgresStore(url, pool_min=1, pool_max=1)  # one connection: one backend to read the CPU of
    await store.open()
    try:
        rows = await store._fetch("SELECT pg_backend_pid()")  # the pool's one connection
        return await measure(store, count, backend_pid=int(rows[0][0]))
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per message of the store's hot path (docs/benchmarks.md).")
    parser.add_argument("--count", type=int, default=5_000, help="approvals measured (after a warm-up of a fifth)")
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.store in ("sqlite", "both"):
        results["sqlite"] = asyncio.run(_sqlite(args.count))
    if args.store in ("postgresql", "both"):
        if reason := unavailable():
            results["postgresql"] = None
            results["skipped"] = {"postgresql": reason}
        else:
            with fresh_database(f"shenguan_store_cost_{os.getpid()}") as url:
                results["postgresql"] = asyncio.run(_postgresql(url, args.count))
    for name in ("sqlite", "postgresql"):
        if figures := results.get(name):
            cells = ", ".join(f"{key} {value}" for key, value in figures.items() if key != "messages")
            print(f"{name}: {cells}  (CPU ms per message)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
