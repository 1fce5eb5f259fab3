"""Operator alerts: once per subject and state change, never once per retry, never again after a restart.

Where alerts come from. Every state change an operator must hear about — a delivery becoming ``dead``,
``uncertain`` or ``paper_pending``, a message held ``unrouted``, a rejected input, a paper item flagged —
is already written exactly once, in the same transaction as the change, to the audit chain. The
``AlertWatcher`` reads the chain forward from a position kept in the store, so:

- a retry is not a state change the chain records as alert-worthy (``retry_wait`` is not on the list),
  so 50 failed attempts of one delivery give one alert, when it finally goes ``dead``;
- each alert is *claimed* in the store (by its audit sequence number) before it is fired, so a restart,
  or a second instance reading the same chain, never fires it again. The price is at-most-once across a
  crash between the claim and the webhook call — chosen over a duplicate, since the state itself stays
  visible in ``shenguan status``, ``/metrics`` and the admin console;
- nothing on the relay's hot path writes anything for alerting.

A circuit breaker opening is not a stored state (it lives in the relay's memory), so the relay reports it
directly (``on_breaker_open``), once per closed → open transition; a failed probe that re-opens an
already-open breaker is not a new alert.

Each alert is a structlog WARNING line (``alert``) and, when ``[alerts] webhook`` is set, a JSON POST
retried with tenacity. Alert text carries ids, states and error kinds — never personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx
import structlog
import tenacity

from gateway.audit import AuditEntry
from gateway.config import AlertSettings
from gateway.store.base import LeasedDelivery, Outcome

__all__ = ["Alert", "AlertSink", "AlertStore", "AlertWatcher", "alert_for"]

log = structlog.get_logger("shenguan.alerts")

_DELIVERY_STATES = {
    "delivery.dead": "delivery {subject} to {destination} is dead (kept for an operator; error kind {error_kind})",
    "delivery.uncertain": "delivery {subject} to {destination} is uncertain: sent, outcome unknown",
    "delivery.paper_pending": "delivery {subject} to {destination} fell back to paper (纸质送达)",
}

#: Entries that may call for an alert (``alert_for``): every one of these kinds, and ...
ALERT_KINDS: tuple[str, ...] = (*_DELIVERY_STATES, "message.rejected", "paper.electronic_success")
#: ... those of these kinds whose canonical detail holds the mark: an accepted message that no route took.
ALERT_MARKS: dict[str, str] = {"message.accepted": '"routes":[]'}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``key`` identifies it for good (receivers can deduplicate on it)."""

    key: str
    kind: str
    subject: str
    at: float
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


def alert_for(entry: AuditEntry) -> Alert | None:
    """The alert an audit entry calls for, or ``None`` (most entries are routine)."""
    try:
        detail = json.loads(entry.detail)
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    detail.pop("payload", None)  # full audit mode: the content stays in the chain, not in alerts
    key = f"audit:{entry.seq}"
    if entry.kind in _DELIVERY_STATES:
        text = _DELIVERY_STATES[entry.kind].format(
            subject=entry.subject,
            destination=detail.get("destination", "?"),
            error_kind=detail.get("error_kind") or "none",
        )
        return Alert(key, entry.kind, entry.subject, entry.at, text, detail)
    if entry.kind == "message.accepted" and detail.get("routes") == []:
        text = f"message {entry.subject} ({detail.get('type')}) is held unrouted: no route or mapping covers it"
        return Alert(key, "message.unrouted", entry.subject, entry.at, text, detail)
    if entry.kind == "message.rejected":
        text = f"input from {detail.get('source')} was rejected and kept ({entry.subject}): {detail.get('reason')}"
        return Alert(key, "message.rejected", entry.subject, entry.at, text, detail)
    if entry.kind == "paper.electronic_success":
        text = f"paper item {entry.subject} is held by its platform after all: check before serving it on paper"
        return Alert(key, "paper.flagged", entry.subject, entry.at, text, detail)
    return None


class AlertSink:
    """Fires alerts: a WARNING log line, and a webhook POST when configured (retried, then given up)."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        on_fired: Callable[[Alert], None] = lambda _a: None,
        retry_wait: tenacity.wait.wait_base | None = None,
    ) -> None:
        self._settings = settings
        self._on_fired = on_fired
        self._client = (
            httpx.AsyncClient(timeout=settings.webhook_timeout_s, transport=transport) if settings.webhook else None
        )
        self._wait = retry_wait or tenacity.wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2)
        self._tasks: set[asyncio.Task[None]] = set()
        self.fired = 0
        self.lost = 0

    async def fire(self, alert: Alert) -> bool:
        """Log the alert and post it; returns whether the webhook (if any) took it."""
        self.fired += 1
        log.warning("alert", key=alert.key, alert=alert.kind, subject=alert.subject, summary=alert.summary)
        self._on_fired(alert)
        if self._client is None or self._settings.webhook is None:
            return True
        try:
            async for attempt in tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(self._settings.webhook_attempts),
                wait=self._wait,
                retry=tenacity.retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
                reraise=True,
            ):
                with attempt:
                    response = await self._client.post(self._settings.webhook, json=asdict(alert))
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _RetryableStatus(response.status_code)
                    response.raise_for_status()
        except (httpx.HTTPError, _RetryableStatus) as exc:
            self.lost += 1
            log.error("alert.webhook_failed", key=alert.key, alert=alert.kind, error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    def fire_soon(self, alert: Alert) -> None:
        """Fire from synchronous code (the relay's observer): a task, kept referenced until it is done."""
        task = asyncio.get_running_loop().create_task(self.fire(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # The relay calls these (``RelayObserver``); outcomes reach alerts through the audit chain instead.
    def on_outcome(self, destination: str, delivery: LeasedDelivery, outcome: Outcome) -> None:
        return None

    def on_breaker_open(self, destination: str) -> None:
        loop = asyncio.get_running_loop()
        self.fire_soon(
            Alert(
                f"breaker:{destination}:{loop.time():.3f}",
                "breaker.open",
                destination,
                time.time(),
                f"circuit breaker of {destination} opened: it keeps failing, leasing paused for its cooldown",
            )
        )

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"webhook answered HTTP {status}")


class AlertStore(Protocol):
    """What the watcher needs from the store: the chain, and where alerting has got to in it."""

    async def alert_candidates(
        self, *, after_seq: int, span: int, kinds: Sequence[str], detail_marks: Mapping[str, str]
    ) -> tuple[list[AuditEntry], int]: ...

    async def alerts_scanned(self) -> int: ...

    async def claim_alerts(self, entries: Sequence[tuple[int, str, str]], scanned_to: int) -> list[int]: ...


class AlertWatcher:
    """Reads the audit chain forward and fires the alerts it calls for, each once."""

    def __init__(self, store: AlertStore, sink: AlertSink, *, interval_s: float = 1.0, page: int = 1000) -> None:
        self._store = store
        self._sink = sink
        self._interval_s = interval_s
        self._page = page
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def scan(self) -> int:
        """Read everything new in the chain; returns how many alerts this call fired.

        The store hands over only the entries that may call for one (``ALERT_KINDS``, ``ALERT_MARKS``): the
        chain grows by three or four entries per message, nearly all routine.
        """
        fired = 0
        after = await self._store.alerts_scanned()
        while True:
            entries, reached = await self._store.alert_candidates(
                after_seq=after, span=self._page, kinds=ALERT_KINDS, detail_marks=ALERT_MARKS
            )
            if reached <= after:
                return fired
            alerts = {e.seq: a for e in entries if (a := alert_for(e)) is not None}
            claimed = await self._store.claim_alerts(
                [(seq, a.kind, a.subject) for seq, a in alerts.items()], scanned_to=reached
            )
            for seq in claimed:
                await self._sink.fire(alerts[seq])
                fired += 1
            after = reached

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:  # a failed read is retried at the next interval
                log.exception("alerts.scan_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
