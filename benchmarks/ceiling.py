"""The raw ceiling: the same approvals posted straight to the hlwjg mock, no gateway, no persistence.

This is what the receiver and the HTTP client manage on this machine with nothing in between: the zwfw
feed is read and decoded *before* the clock starts, then every record goes out through the hlwjg adapter
itself (same codec, same ``httpx.AsyncClient`` settings, same ``requestId`` derivation, same number of
requests in flight as the relay's destination ``concurrency``). Whatever the relay adds — polling,
decoding, the store, leasing, group commit — shows up as the gap between this figure and the relay's.

Run as its own process (``python -m benchmarks.ceiling``) so that its peak memory is its own; the last
line of its output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from adapters.hlwjg import HlwjgAdapter
from adapters.zwfw import ZwfwAdapter
from benchmarks.procs import MockServer, cpu_s
from benchmarks.stats import percentile_ms
from gateway.logging import configure_logging
from gateway.poller import decode_records
from gateway.store.base import idempotency_key
from schemas import Envelope

__all__ = ["read_feed", "run_ceiling", "run_ceiling_leg"]

ROOT = Path(__file__).resolve().parent.parent


async def read_feed(mocks_url: str, *, page_size: int = 500) -> list[Envelope]:
    """Every approval in the zwfw mock's feed, decoded to canonical envelopes (feed order)."""
    source = ZwfwAdapter("zwfw", base_url=f"{mocks_url}/zwfw", paasid="shenguan", token="zwfw-mock-token")
    envelopes: list[Envelope] = []
    cursor: str | None = None
    try:
        while True:
            page = await source.poll(cursor, page_size)
            decoded, rejected = decode_records("zwfw", source, list(page.records))
            if rejected:
                raise RuntimeError(f"the generated feed has {len(rejected)} undecodable items: {rejected[0].reason}")
            envelopes.extend(decoded)
            cursor = page.next_cursor
            if not page.has_more:
                return envelopes
    finally:
        await source.aclose()


async def run_ceiling(mocks_url: str, destination: dict[str, Any], *, concurrency: int) -> dict[str, Any]:
    """Deliver every envelope of the feed with ``concurrency`` requests in flight; figures as a dict."""
    envelopes = await read_feed(mocks_url)
    options = destination | {"base_url": f"{mocks_url}/hlwjg"}
    adapter = HlwjgAdapter.from_config("hlwjg", options)
    work = [(env, idempotency_key("hlwjg", env)) for env in envelopes]
    latencies: list[float] = []
    failures: list[str] = []
    position = 0  # next item of ``work``; shared by the workers (one event loop, no lock needed)
    warmed = 0

    async def worker() -> None:
        nonlocal position
        while position < len(work):
            env, key = work[position]
            position += 1
            started = time.perf_counter()
            try:
                await adapter.deliver(env, key)
            except Exception as exc:  # counted and reported: a ceiling with failures is no ceiling
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)

    try:
        if work:  # the first one off the clock: token fetch and connection set-up, paid once by the relay too
            await adapter.deliver(*work[0])
            position = warmed = 1
        started, cpu_before = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    finally:
        await adapter.aclose()
    delivered = len(latencies)
    return {
        "messages": delivered + warmed,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "elapsed_s": round(elapsed, 3),
        "msgs_per_s": round(delivered / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_ms_per_msg": round(cpu * 1000 / delivered, 3) if delivered else None,
    }


def run_ceiling_leg(
    workdir: Path, count: int, destination: dict[str, Any], *, concurrency: int, seed: int, timeout_s: float
) -> dict[str, Any]:
    """Fresh mocks with ``count`` approvals in the feed, the ceiling in its own process, the receiver checked."""
    workdir.mkdir(parents=True, exist_ok=True)
    mocks = MockServer(workdir)
    try:
        mocks.generate(count, seed=seed)
        mocks_cpu = cpu_s(mocks.proc.pid)
        with open(workdir / "ceiling.log", "wb") as log:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.ceiling",
                    "--mocks",
                    mocks.url,
                    "--destination",
                    json.dumps(destination),
                    "--concurrency",
                    str(concurrency),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                timeout=timeout_s,
                check=True,
            )
        result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
        mocks_cpu = cpu_s(mocks.proc.pid) - mocks_cpu
        received = mocks.received()
    finally:
        mocks.close()
    result["mocks_cpu_ms_per_msg"] = round(mocks_cpu * 1000 / count, 3)  # feed read included
    if result["failures"] or received["accepted"] != count or received["duplicate_creations"]:
        raise RuntimeError(
            f"ceiling: {result['failures']} failed requests (first: {result['first_failure']}); the receiver holds "
            f"{received['accepted']} of {count} with {received['duplicate_creations']} duplicate creations"
        )
    return {"leg": "ceiling", "instances": 0, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocks", required=True, help="base URL of `shenguan mocks serve`")
    parser.add_argument("--destination", required=True, help="the hlwjg destination options, as JSON")
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args()
    configure_logging("json", "info")  # as `shenguan serve` logs: JSON lines on stderr, info and up
    result = asyncio.run(run_ceiling(args.mocks, json.loads(args.destination), concurrency=args.concurrency))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
