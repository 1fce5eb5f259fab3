"""Running a source poller in a test until it has read everything its source holds."""

from __future__ import annotations

import asyncio
import time

from gateway.poller import SourcePoller


async def run_until_caught_up(poller: SourcePoller, timeout_s: float = 20) -> None:
    """Run ``poller`` until a poll finds nothing more, then stop it; fail if it dies or takes too long."""
    task = asyncio.create_task(poller.run())
    try:
        deadline = time.monotonic() + timeout_s
        while not poller.caught_up:
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "poller did not catch up"
            await asyncio.sleep(0.01)
    finally:
        poller.stop()
        await task
