"""The gateway runtime: builds adapters from config, recovers, then runs pollers and the relay.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from adapters import DestinationAdapter, Direction, SourceAdapter
from adapters.registry import load
from gateway.alerts import AlertSink, AlertWatcher
from gateway.calendar import ScheduleError
from gateway.calendar_cli import default_calendar_dir
from gateway.config import Config, ConfigError
from gateway.deadline_tracker import DeadlineTracker
from gateway.metrics import GatewayMetrics
from gateway.paper.reconcile import reconcile_paper
from gateway.poller import SourcePoller
from gateway.relay import Destination, Relay
from gateway.routing import ConfigRouter, mapping_from_rows
from gateway.store import IngestResult, Store, open_store

__all__ = ["Gateway"]

log = structlog.get_logger("shenguan.runtime")

# Periodic tasks that never finish on their own: cancelled at stop instead of awaited.
_WATCHERS = frozenset({"mapping-watch", "paper-watch", "alert-watch", "deadline-watch", "audit-chain"})

# How often queued audit entries are hash-linked (PostgreSQL; SQLite links them as it writes them).
AUDIT_CHAIN_S = 1.0


def _build(kind: str, name: str, adapter_name: str, options: dict[str, Any]) -> Any:
    cls = load(adapter_name)
    direction = cls.capabilities.direction
    wanted = Direction.source if kind == "sources" else Direction.destination
    if direction not in (wanted, Direction.both):
        raise ConfigError(
            f"{kind}.{name}: adapter {adapter_name!r} is a {direction.value} adapter, not a {wanted.value}"
        )
    try:
        return cls.from_config(name, options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{kind}.{name} ({adapter_name}): {exc}") from None


class Gateway:
    """One gateway instance: store, sources, destinations, relay."""

    def __init__(self, config: Config, *, store: Store | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock  # every component reads time from here: tests move it across working days
        self.instance_id = config.gateway.instance_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store: Store = store or open_store(
            config.gateway.db,
            sqlite_synchronous=config.gateway.sqlite_synchronous,
            audit_algorithm=config.audit.algorithm,
            audit_mode=config.audit.mode,
            clock=clock,
            pool_size=config.gateway.pg_pool_size,
        )
        self.router = ConfigRouter(config.routes)
        self.sources: dict[str, SourceAdapter] = {}
        self.destinations: dict[str, DestinationAdapter] = {}
        self.pollers: list[SourcePoller] = []
        self.relay: Relay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._mapping_version: int | None = None
        self.metrics = GatewayMetrics(clock=clock)
        self.alerts = AlertSink(config.alerts, on_fired=lambda a: self.metrics.alerts.labels(a.kind).inc())
        self.alert_watcher: AlertWatcher | None = None
        self.deadlines: DeadlineTracker | None = None

    async def start(self) -> None:
        """Open the store, recover, build adapters, start relay and pollers (in that order)."""
        await self.store.open()
        try:
            if self.config.deadlines.enabled:
                self.deadlines = self._deadline_tracker()
            for name, sc in self.config.sources.items():
                self.sources[name] = _build("sources", name, sc.adapter, sc.adapter_options())
            for name, dc in self.config.destinations.items():
                self.destinations[name] = _build("destinations", name, dc.adapter, dc.adapter_options())
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
        for name, adapter in self.sources.items():
            if self.config.sources[name].mode == "push":
                continue  # push-only: records arrive at POST /ingest/{name}
            poller = SourcePoller(
                name,
                adapter,
                self.config.sources[name],
                self.store,
                self.router,
                on_ingested=lambda r, name=name: self._ingested(name, r),
                owner=self.instance_id,
                lease_s=self.config.gateway.source_lease_s,
            )
            self.pollers.append(poller)
            self._tasks.append(asyncio.create_task(poller.run(), name=f"poller-{name}"))
        if self.deadlines is not None:
            # After the pollers exist: default claims wait until each of them has caught up once.
            self.metrics.read_deadline_risk_with(self.deadlines.risk)
            self._tasks.append(
                asyncio.create_task(self.deadlines.run(self.config.deadlines.check_s), name="deadline-watch")
            )
        log.info(
            "gateway.started",
            instance=self.instance_id,
            sources=sorted(self.sources),
            destinations=sorted(self.destinations),
        )

    def _observe(self) -> None:
        """Point the scrape-time metrics at the store and the relay's breakers."""
        if reader := getattr(self.store, "delivery_metrics", None):
            self.metrics.read_store_with(reader)
        relay = self.relay
        if relay is not None:
            self.metrics.read_breakers_with(lambda: {n: d.breaker.state for n, d in relay.destinations.items()})

    def _ingested(self, source: str, result: IngestResult) -> None:
        """A poller stored a page: count it, wake the relay, and the alert watcher if there is news for it."""
        self.metrics.ingested(source, result)
        if self.relay:
            self.relay.wake()
        if result.rejected or result.unrouted:
            self.wake_alerts()

    def wake_alerts(self) -> None:
        """Something alert-worthy was just stored: read the chain now rather than at the next interval."""
        if self.alert_watcher is not None:
            self.alert_watcher.wake()

    def _deadline_tracker(self) -> DeadlineTracker:
        """The closed loop's deadline tracker on this gateway's store, router, mapping, clock and calendar."""
        settings = self.config.deadlines
        directory = settings.calendar_dir or default_calendar_dir()
        destinations = self.config.destinations
        try:
            return DeadlineTracker(
                self.store,  # type: ignore[arg-type]  # both backends implement DeadlineStore
                settings,
                router=self.router,
                calendar_dir=Path(directory),
                clock=self.clock,
                mapping=lambda: self.router.mapping,
                paper_allowed=lambda d: d in destinations and destinations[d].paper_fallback,
                ready=lambda: all(p.caught_up_once for p in self.pollers),
                on_ingested=lambda: self.relay.wake() if self.relay else None,
            )
        except ScheduleError as exc:
            raise ConfigError(f"deadlines: a stored holiday schedule is invalid, fix or remove it:\n{exc}") from None

    async def refresh_mapping(self) -> int:
        """Load the active mapping version if it changed, then route what it now covers.

        Returns how many held (unrouted) messages were routed. Imports happen in another process
        (``shenguan mapping import``), so a running gateway looks for a new active version periodically.
        """
        version = await self.store.active_mapping_version()
        if version == self._mapping_version:
            return 0
        rows = await self.store.active_mapping() if version is not None else []
        self.router.mapping = mapping_from_rows(rows, source=f"store v{version}") if version is not None else None
        self._mapping_version = version
        routed = await self.store.reroute_unrouted(self.router)
        log.info("mapping.activated", version=version, rows=len(rows), rerouted=routed)
        if routed and self.relay:
            self.relay.wake()
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
        for poller in self.pollers:
            poller.stop()
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
