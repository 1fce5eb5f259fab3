"""The gateway runtime: builds adapters from config, recovers, then runs the relay and the intake.

Order matters and is enforced here: the store opens, leases left by a previous process are
recovered, and only then do relay workers start — a sender racing recovery is how other engines
produced duplicates after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Literal

import structlog

from adapters import DestinationAdapter, SourceAdapter
from gateway.alerts import AlertSink, AlertWatcher
from gateway.assembly import build_adapter, open_configured_store
from gateway.config import Config
from gateway.deadline_tracker import DeadlineTracker
from gateway.intake import Intake, SourceProgress
from gateway.intake_process import IntakeProcess
from gateway.metrics import GatewayMetrics
from gateway.paper.reconcile import reconcile_paper
from gateway.relay import Destination, Relay
from gateway.routing import ConfigRouter, MappingFollower
from gateway.store import PageCounts, Store

__all__ = ["Gateway"]

log = structlog.get_logger("shenguan.runtime")

# Periodic tasks that never finish on their own: cancelled at stop instead of awaited.
_WATCHERS = frozenset({"mapping-watch", "paper-watch", "alert-watch", "deadline-watch", "audit-chain"})

# How often queued audit entries are hash-linked (PostgreSQL; SQLite links them as it writes them).
AUDIT_CHAIN_S = 1.0


class Gateway:
    """One gateway instance: store, sources, destinations, relay, and its intake (pollers, deadline tracker).

    ``intake`` says where the intake runs: ``"inline"`` as tasks on this event loop — what an embedding
    (tests, the demo) gets, sharing its store object and clock — or ``"process"``, a child process of its own
    (``gateway.intake_process``), which is how ``shenguan serve`` runs it by default.
    """

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        intake: Literal["inline", "process"] = "inline",
    ) -> None:
        self.config = config
        self.clock = clock  # every component reads time from here: tests move it across working days
        self.instance_id = config.gateway.instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store: Store = store or open_configured_store(config, clock=clock)
        self.router = ConfigRouter(config.routes)
        self._mapping = MappingFollower(self.store, self.router)
        self.sources: dict[str, SourceAdapter] = {}
        self.destinations: dict[str, DestinationAdapter] = {}
        self.relay: Relay | None = None
        self._intake_mode = intake
        self.intake: Intake | IntakeProcess | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics = GatewayMetrics(clock=clock)
        self.alerts = AlertSink(config.alerts, on_fired=lambda a: self.metrics.alerts.labels(a.kind).inc())
        self.alert_watcher: AlertWatcher | None = None

    @property
    def deadlines(self) -> DeadlineTracker | None:
        """The deadline tracker, when it runs in this process (inline intake)."""
        return self.intake.deadlines if isinstance(self.intake, Intake) else None

    @property
    def pollers(self) -> Sequence[SourceProgress]:
        """Every polled source and how far it has been read (in this process or the intake process)."""
        return self.intake.sources if self.intake is not None else []

    async def start(self) -> None:
        """Open the store, build adapters, recover, start the relay, then the intake (in that order)."""
        await self.store.open()
        try:
            for name, sc in self.config.sources.items():
                self.sources[name] = build_adapter("sources", name, sc.adapter, sc.adapter_options())
            for name, dc in self.config.destinations.items():
                self.destinations[name] = build_adapter("destinations", name, dc.adapter, dc.adapter_options())
            if self._intake_mode == "inline":
                self.intake = Intake(
                    self.config,
                    self.store,
                    self.router,
                    self.sources,
                    owner=self.instance_id,
                    clock=self.clock,
                    on_ingested=lambda source, result: self._ingested(source, result.counts()),
                    on_default_claims=self._wake_relay,
                )
        except BaseException:
            await self._close_adapters()
            await self.store.close()
            raise
        self.relay = Relay(
            self.store,
            {n: Destination(n, a, self.config.destinations[n]) for n, a in self.destinations.items()},
            owner=self.instance_id,
            observers=(self.metrics, self.alerts),
            clock=self.clock,
        )
        self._observe()
        await self.relay.recover()
        await self.refresh_mapping()
        self._tasks.append(asyncio.create_task(self.relay.run(), name="relay"))
        self._tasks.append(asyncio.create_task(self._watch_mapping(), name="mapping-watch"))
        self._tasks.append(asyncio.create_task(self._watch_paper(), name="paper-watch"))
        self._tasks.append(asyncio.create_task(self._chain_audit(), name="audit-chain"))
        if hasattr(self.store, "claim_alerts"):
            self.alert_watcher = AlertWatcher(self.store, self.alerts, interval_s=self.config.alerts.scan_interval_s)  # type: ignore[arg-type]
            self._tasks.append(asyncio.create_task(self.alert_watcher.run(), name="alert-watch"))
        await self._start_intake()
        log.info(
            "gateway.started",
            instance=self.instance_id,
            sources=sorted(self.sources),
            destinations=sorted(self.destinations),
            intake=self._intake_mode,
        )

    async def _start_intake(self) -> None:
        """Pollers and deadline tracker, after the relay: here, or in the intake process once it reports started."""
        if self.intake is None:
            self.intake = IntakeProcess(
                self.config, instance_id=self.instance_id, on_ingested=self._ingested, on_wake=self._wake_relay
            )
            try:
                self._tasks.extend(await self.intake.start())
            except BaseException:
                await self.stop(grace_s=0)
                raise
        else:
            self._tasks.extend(self.intake.start())
        if self.config.deadlines.enabled:
            self.metrics.read_deadline_risk_with(self.intake.deadline_risk)

    def _observe(self) -> None:
        """Point the scrape-time metrics at the store and the relay's breakers."""
        if reader := getattr(self.store, "delivery_metrics", None):
            self.metrics.read_store_with(reader)
        relay = self.relay
        if relay is not None:
            self.metrics.read_breakers_with(lambda: {n: d.breaker.state for n, d in relay.destinations.items()})

    def _ingested(self, source: str, counts: PageCounts) -> None:
        """The intake stored a page: count it, wake the relay, and the alert watcher if there is news for it."""
        self.metrics.ingested(source, counts)
        self._wake_relay()
        if counts.rejected or counts.unrouted:
            self.wake_alerts()

    def _wake_relay(self) -> None:
        if self.relay:
            self.relay.wake()

    def wake_alerts(self) -> None:
        """Something alert-worthy was just stored: read the chain now rather than at the next interval."""
        if self.alert_watcher is not None:
            self.alert_watcher.wake()

    async def refresh_mapping(self) -> int:
        """Load the active mapping version if it changed, then route what it now covers.

        Returns how many held (unrouted) messages were routed. Imports happen in another process
        (``shenguan mapping import``), so a running gateway looks for a new active version periodically.
        """
        routed = await self._mapping.refresh()
        if routed:
            self._wake_relay()
        return routed

    async def _watch_mapping(self) -> None:
        while True:
            await asyncio.sleep(self.config.gateway.mapping_poll_s)
            try:
                await self.refresh_mapping()
            except Exception:  # a bad read must not stop the gateway; the next round tries again
                log.exception("mapping.refresh_failed")

    async def _chain_audit(self) -> None:
        """Hash-link the audit entries other transactions queued (several instances: one chainer at a time)."""
        while True:
            await asyncio.sleep(AUDIT_CHAIN_S)
            try:
                await self.store.chain_audit()
            except Exception:  # entries stay queued, durable; the next round links them
                log.exception("audit.chain_failed")

    async def _watch_paper(self) -> None:
        while True:
            await asyncio.sleep(self.config.paper.reconcile_s)
            try:
                await reconcile_paper(self.store, self.destinations)
            except Exception:  # a failed pass is retried at the next interval
                log.exception("paper.reconcile_failed")

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: stop polling and leasing, let in-flight attempts finish within the grace time."""
        grace = self.config.gateway.shutdown_grace_s if grace_s is None else grace_s
        if self.intake is not None:
            self.intake.stop()
        if self.relay:
            self.relay.stop()
        for task in self._tasks:
            if task.get_name() in _WATCHERS:
                task.cancel()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=grace)
            if pending and self.relay:
                log.warning("gateway.stop_timeout", unfinished=len(pending))
                await self.relay.abort()
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("gateway.task_failed", task=task.get_name(), error=repr(task.exception()))
        self._tasks.clear()
        await self.alerts.aclose()
        await self._close_adapters()
        with contextlib.suppress(Exception):  # link what this instance queued; any other instance would too
            await self.store.chain_audit()
        await self.store.close()
        log.info("gateway.stopped", instance=self.instance_id)

    async def _close_adapters(self) -> None:
        for adapter in [*self.sources.values(), *self.destinations.values()]:
            with contextlib.suppress(Exception):
                await adapter.aclose()

    def failed_task(self) -> BaseException | None:
        """The exception of a runtime task that died (the gateway should then exit non-zero)."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return task.exception()
        return None

    async def idle(self) -> bool:
        """Every source caught up and no delivery still moving on its own."""
        return all(p.caught_up for p in self.pollers) and await self.store.open_deliveries() == 0

    async def wait_idle(self, *, timeout_s: float, poll_s: float = 0.2) -> bool:
        """Wait until ``idle()`` holds twice in a row (or the timeout passes); returns whether it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        streak = 0
        while loop.time() < deadline:
            if (err := self.failed_task()) is not None:
                raise RuntimeError(f"gateway task failed: {err!r}") from err
            streak = streak + 1 if await self.idle() else 0
            if streak >= 2:
                return True
            await asyncio.sleep(poll_s)
        return False
