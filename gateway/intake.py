"""The intake: what brings messages into the store on its own schedule — source pollers and the deadline tracker.

Pollers read a platform's feed; the tracker reads the audit chain and the clock and records default claims
(默认认领). Both decide and write to the store, and neither sends anything anywhere — the relay does that,
woken when they tell it there is new work. So the intake can run apart from the relay: inline, as tasks on
the gateway's event loop (tests, the demo, ``[gateway] intake = "inline"``), or in a child process of
``shenguan serve`` (``gateway.intake_process``), where decoding pages and following the audit chain no
longer compete with the relay's requests for one interpreter lock (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from adapters import SourceAdapter
from gateway.calendar import ScheduleError
from gateway.calendar_cli import default_calendar_dir
from gateway.config import Config, ConfigError
from gateway.deadline_tracker import DeadlineTracker
from gateway.poller import SourcePoller
from gateway.routing import ConfigRouter
from gateway.store import IngestResult, Store

__all__ = ["Intake", "SourceProgress"]


class SourceProgress(Protocol):
    """How far a source's feed has been read: what ``Gateway.idle`` and default claims wait for."""

    name: str
    caught_up: bool  # the last poll found nothing more to read
    caught_up_once: bool  # ... at least once since start


class Intake:
    """A gateway's pollers and deadline tracker on one store, router and clock.

    ``on_ingested(source, result)`` is called after each stored page, ``on_default_claims()`` after the
    tracker recorded default claims: both mean there is new work for the relay.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        router: ConfigRouter,
        sources: Mapping[str, SourceAdapter],
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        on_ingested: Callable[[str, IngestResult], None] = lambda _s, _r: None,
        on_default_claims: Callable[[], None] = lambda: None,
    ) -> None:
        """``sources`` are the adapters of the sources to poll (push-only ones are skipped here)."""
        self.config = config
        self.pollers: list[SourcePoller] = [
            SourcePoller(
                name,
                adapter,
                config.sources[name],
                store,
                router,
                on_ingested=lambda r, name=name: on_ingested(name, r),
                owner=owner,
                lease_s=config.gateway.source_lease_s,
            )
            for name, adapter in sources.items()
            if config.sources[name].mode != "push"  # push-only: records arrive at POST /ingest/{name}
        ]
        self.deadlines = self._tracker(store, router, clock, on_default_claims) if config.deadlines.enabled else None
        self._tasks: list[asyncio.Task[None]] = []

    def _tracker(
        self, store: Store, router: ConfigRouter, clock: Callable[[], float], on_default_claims: Callable[[], None]
    ) -> DeadlineTracker:
        """The closed loop's deadline tracker on this intake's store, router, mapping, clock and calendar."""
        settings = self.config.deadlines
        destinations = self.config.destinations
        try:
            return DeadlineTracker(
                store,  # type: ignore[arg-type]  # both backends implement DeadlineStore
                settings,
                router=router,
                calendar_dir=Path(settings.calendar_dir or default_calendar_dir()),
                clock=clock,
                mapping=lambda: router.mapping,
                paper_allowed=lambda d: d in destinations and destinations[d].paper_fallback,
                # Default claims wait until every source has caught up once (claims made in time may be unread).
                ready=lambda: all(p.caught_up_once for p in self.pollers),
                on_ingested=on_default_claims,
            )
        except ScheduleError as exc:
            raise ConfigError(f"deadlines: a stored holiday schedule is invalid, fix or remove it:\n{exc}") from None

    @property
    def sources(self) -> Sequence[SourceProgress]:
        return self.pollers

    def start(self) -> list[asyncio.Task[None]]:
        """Start polling and tracking; the tasks are the caller's to await (``stop`` ends them)."""
        self._tasks = [asyncio.create_task(p.run(), name=f"poller-{p.name}") for p in self.pollers]
        if self.deadlines is not None:
            self._tasks.append(
                asyncio.create_task(self.deadlines.run(self.config.deadlines.check_s), name="deadline-watch")
            )
        return list(self._tasks)

    def stop(self) -> None:
        """Pollers finish the page in hand and end; the tracker is cancelled (a tick is one transaction)."""
        for poller in self.pollers:
            poller.stop()
        for task in self._tasks:
            if task.get_name() == "deadline-watch":
                task.cancel()

    async def deadline_risk(self) -> dict[tuple[str, ...], float]:
        """Open deadlines at risk by kind, as of the tracker's last tick (for ``/metrics``)."""
        return await self.deadlines.risk() if self.deadlines is not None else {}
