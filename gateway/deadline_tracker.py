"""The deadline tracker: applies the rules of ``gateway.deadlines`` to what the store records and to passing time.

Each ``tick`` does four things, in this order:

1. **Calendar.** If the schedules in the calendar directory changed (``shenguan calendar load``), reload them and
   recompute the due date of every open deadline — an ``estimated`` one becomes exact. The first tick after start
   always recomputes, so a schedule loaded while the gateway was down is not missed.
2. **Follow the chain.** Read the audit chain after the tracker's position — every state change, in commit order
   — and open and close deadlines for what happened: an approval stored and routed (push deadlines, 告知承诺
   windows), a delivery completed (push met; a task generated, so its claim period starts), a claim stored (claim
   met, or 默认认领). The deadlines and the new position are written in one transaction, guarded by the old
   position, so a crash neither skips nor repeats a change and two instances cannot both apply one.
3. **Time passes.** With the clock's Beijing date: windows that ran out elapse; a claim deadline that ran out
   with no claim gets a default claim (``supervision.task.claimed``, ``auto``), ingested like any message —
   deterministic id, so it is one fact however often it is recorded — and routed by the configured routes; a
   failing delivery whose deadline has less than one working day left moves to the paper queue when its
   destination allows paper (``paper_fallback``).
4. Follow the chain again, so the default claims just recorded close their deadlines in the same tick.

Default claims wait until every source has caught up once since start (``ready``): after downtime, the
platform's feed may hold claims made in time that the gateway has simply not read yet.

The clock is injected: tests move time across working days and weekends instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from gateway.calendar import ScheduleError, WorkingDayCalendar
from gateway.config import DeadlineSettings
from gateway.deadlines import (
    DeadlineKind,
    DeadlineOutcome,
    Policy,
    Rule,
    active_rules,
    at_risk,
    closings_for_message,
    default_claim,
    expired,
    expiry_moment,
    local_date,
    openings_for_delivered,
    openings_for_message,
    openings_for_routed,
)
from gateway.mapping import MappingList
from gateway.store.base import Router
from gateway.store.deadlines import Closing, DeadlineStore, Opening
from schemas import Envelope

__all__ = ["DeadlineTracker", "TickSummary", "calendar_fingerprint"]

log = structlog.get_logger("shenguan.deadlines")

DEFAULT_CLAIM_SOURCE = "shenguan"
_PAGE = 1000


@dataclass(slots=True)
class TickSummary:
    """What one tick did and saw (also the tracker's gauges: ``open``, ``overdue``, ``at_risk``)."""

    opened: int = 0
    closed: int = 0
    redated: int = 0
    default_claims: int = 0
    escalated: int = 0
    elapsed: int = 0
    open: int = 0
    overdue: int = 0
    at_risk: int = 0
    default_claims_deferred: int = 0
    at_risk_by_kind: dict[str, int] = field(default_factory=dict)


def calendar_fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the stored schedules: changes when ``calendar load`` writes one."""
    if not directory.is_dir():
        return ()
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class DeadlineTracker:
    """Tracks the closed loop's deadlines in ``store``; run ``tick`` periodically (``run``) or from a test."""

    def __init__(
        self,
        store: DeadlineStore,
        settings: DeadlineSettings,
        *,
        router: Router,
        calendar_dir: Path,
        clock: Callable[[], float] = time.time,
        mapping: Callable[[], MappingList | None] = lambda: None,
        paper_allowed: Callable[[str], bool] = lambda _destination: False,
        ready: Callable[[], bool] = lambda: True,
        rules: Iterable[Rule] | None = None,
        on_ingested: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self.settings = settings
        self._router = router
        self.calendar_dir = Path(calendar_dir)
        self.calendar = WorkingDayCalendar.from_dir(self.calendar_dir)
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None  # None: recompute at the first tick
        self._clock = clock
        self.policy = Policy(settings, mapping)
        self._paper_allowed = paper_allowed
        self._ready = ready
        self.rules = tuple(active_rules() if rules is None else rules)
        self._by_kind = {r.kind: r for r in self.rules}
        self._types = sorted({t for r in self.rules for t in (*r.opened_by, *r.closed_by)})
        self._on_ingested = on_ingested
        self._lock = asyncio.Lock()
        self.last = TickSummary()

    async def risk(self) -> dict[tuple[str, ...], float]:
        """For ``/metrics``: open deadlines at risk by kind, as of the last tick (no store query per scrape)."""
        return {(kind,): float(n) for kind, n in self.last.at_risk_by_kind.items()}

    def today(self) -> date:
        """The clock's date in Beijing: deadlines are counted in Chinese working days."""
        return local_date(self._clock())

    async def run(self, interval_s: float) -> None:
        """Tick every ``interval_s`` until cancelled; a failed tick is logged and retried at the next one."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("deadlines.tick_failed")
            await asyncio.sleep(interval_s)

    async def tick(self) -> TickSummary:
        """One round: calendar, chain, time, chain (see the module docstring). Safe to call concurrently."""
        async with self._lock:
            summary = TickSummary()
            summary.redated = await self._check_calendar()
            await self._follow(summary)
            await self._time_passes(summary)
            if summary.default_claims:
                await self._follow(summary)
            self.last = summary
            return summary

    # -- 1. calendar -------------------------------------------------------------------------------------------

    async def _check_calendar(self) -> int:
        fingerprint = calendar_fingerprint(self.calendar_dir)
        if fingerprint == self._fingerprint:
            return 0
        if self._fingerprint is not None:
            try:
                self.calendar = WorkingDayCalendar.from_dir(self.calendar_dir)
            except ScheduleError as exc:
                # Keep counting with the schedules we had; a broken file must not turn deadlines into estimates.
                log.error("deadlines.calendar_unreadable", directory=str(self.calendar_dir), error=str(exc))
                self._fingerprint = fingerprint
                return 0
        self._fingerprint = fingerprint
        redated = await self.recompute()
        log.info("deadlines.calendar", loaded_years=list(self.calendar.loaded_years()), redated=redated)
        return redated

    async def recompute(self) -> int:
        """Recompute the due date of every open deadline with the current calendar; returns how many changed."""
        changes: list[tuple[int, str, bool]] = []
        after = 0
        while True:
            rows = await self._store.open_deadlines(after_id=after, limit=_PAGE)
            for row in rows:
                due = self.calendar.add_working_days(date.fromisoformat(row["started_on"]), int(row["working_days"]))
                if due.date.isoformat() != row["due_on"] or due.estimated != row["estimated"]:
                    changes.append((int(row["id"]), due.date.isoformat(), due.estimated))
            if len(rows) < _PAGE:
                break
            after = int(rows[-1]["id"])
        return await self._store.redate_deadlines(changes) if changes else 0

    # -- 2. following the chain --------------------------------------------------------------------------------

    async def _follow(self, summary: TickSummary) -> None:
        await self._store.chain_audit()  # a multi-instance store numbers its queued entries here
        position = await self._store.deadline_position()
        while True:
            items, last = await self._store.deadline_feed(after_seq=position, types=self._types, limit=_PAGE)
            if last == position:
                return
            opens, closes = self._changes(items)
            closes.extend(await self._already_closed(opens))
            result = await self._store.record_deadlines(opens, closes, after_seq=position, to_seq=last)
            if result is None:  # another tracker applied these changes first
                position = await self._store.deadline_position()
                continue
            summary.opened += result[0]
            summary.closed += result[1]
            position = last

    def _changes(self, items: Sequence[dict[str, Any]]) -> tuple[list[Opening], list[Closing]]:
        opens: list[Opening] = []
        closes: list[Closing] = []
        for item in items:
            env = Envelope.from_stored_lazy(item["envelope"])
            if item["kind"] in ("message.accepted", "message.routed"):
                if item["kind"] == "message.accepted":
                    opens += openings_for_message(env, self.policy, self.calendar, self.rules)
                    closes += closings_for_message(env, self.rules)
                routed = [(int(d[0]), str(d[1])) for d in item["deliveries"]]
                opens += openings_for_routed(env, routed, self.policy, self.calendar, self.rules)
                continue
            delivery = item["delivery"]
            delivered_at = float(delivery["delivered_at"])
            for rule in self.rules:
                if rule.trigger == "routed" and env.type in rule.opened_by:
                    closes.append(
                        Closing(
                            rule.kind,
                            f"delivery:{delivery['id']}",
                            delivered_at,
                            local_date(delivered_at),
                            delivery_id=int(delivery["id"]),
                        )
                    )
            if item["kind"] == "delivery.delivered" and delivery["channel"] != "paper":
                opens += openings_for_delivered(
                    env,
                    destination=str(delivery["destination"]),
                    remote_id=delivery["remote_id"],
                    delivered_at=delivered_at,
                    policy=self.policy,
                    calendar=self.calendar,
                    rules=self.rules,
                )
        return opens, closes

    async def _already_closed(self, opens: Sequence[Opening]) -> list[Closing]:
        """Closings for deadlines whose closing message was stored before they opened (a claim read early)."""
        closes: list[Closing] = []
        for opening in opens:
            rule = self._by_kind.get(opening.kind)
            if rule is None or not rule.closed_by:
                continue
            if rule.match == "subject":
                found = await self._store.closing_messages(rule.closed_by, business_key=opening.subject)
            else:
                found = await self._store.closing_messages(rule.closed_by, correlation_id=opening.correlation_id)
            if found:
                closes += closings_for_message(Envelope.from_stored_lazy(found[0]), [rule])
        return closes

    # -- 3. the passing of time --------------------------------------------------------------------------------

    async def _time_passes(self, summary: TickSummary) -> None:
        today = self.today()
        ready = self._ready()
        claims: list[Envelope] = []
        elapsed: list[Closing] = []
        after = 0
        while True:
            rows = await self._store.open_deadlines(after_id=after, limit=_PAGE)
            for row in rows:
                summary.open += 1
                due = date.fromisoformat(row["due_on"])
                rule = self._by_kind.get(DeadlineKind(row["kind"]))
                if rule is not None and rule.window:
                    if expired(today, due):
                        elapsed.append(self._elapse(row, due))
                    continue
                if expired(today, due):
                    summary.overdue += 1
                if row["kind"] == DeadlineKind.claim and expired(today, due):
                    if ready:
                        claims.append(default_claim(row))
                    else:
                        summary.default_claims_deferred += 1
                if row["delivery_id"] is not None and row["delivery_state"] in ("pending", "retry_wait"):
                    if at_risk(today, due, self.calendar):
                        summary.at_risk += 1
                        summary.at_risk_by_kind[row["kind"]] = summary.at_risk_by_kind.get(row["kind"], 0) + 1
                        if row["delivery_state"] == "retry_wait" and self._paper_allowed(str(row["destination"])):
                            summary.escalated += await self._escalate(row, due)
            # Written page by page: a tick after downtime may find a whole backlog expired at once, and holding
            # every closing or claim of it in memory until the end would grow with the backlog.
            if elapsed:
                result = await self._store.record_deadlines([], elapsed)
                summary.elapsed += result[1] if result else 0
                elapsed = []
            if claims:
                summary.default_claims += await self._record_default_claims(claims)
                claims = []
            if len(rows) < _PAGE:
                break
            after = int(rows[-1]["id"])

    @staticmethod
    def _elapse(row: dict[str, Any], due: date) -> Closing:
        return Closing(
            DeadlineKind(row["kind"]),
            "calendar",
            expiry_moment(due).timestamp(),
            due,
            correlation_id=str(row["correlation_id"]),
            outcome=DeadlineOutcome.elapsed,
        )

    async def _escalate(self, row: dict[str, Any], due: date) -> int:
        reason = (
            f"{row['kind']} deadline due {due.isoformat()} at risk (less than one working day left) and the last "
            f"attempt failed: moved to paper (纸质送达); last error: {row['last_error'] or 'none'}"
        )
        moved = await self._store.escalate_to_paper(int(row["id"]), int(row["delivery_id"]), reason[:2000])
        if moved:
            log.warning(
                "deadline.escalated_to_paper",
                delivery=row["delivery_id"],
                destination=row["destination"],
                loop=row["correlation_id"],
                kind=row["kind"],
                due_on=due.isoformat(),
                estimated=row["estimated"],
            )
        return int(moved)

    async def _record_default_claims(self, claims: Sequence[Envelope]) -> int:
        """Ingest the default claims (默认认领) as one page each batch; duplicates of earlier ones are suppressed."""
        recorded = 0
        for start in range(0, len(claims), 200):
            batch = list(claims[start : start + 200])
            result = await self._store.ingest_page(DEFAULT_CLAIM_SOURCE, batch, [], None, self._router)
            recorded += result.accepted
            for env in batch:
                data = env.data
                log.info(
                    "deadline.default_claimed",
                    task_no=data["task_no"],
                    loop=env.correlation_id,
                    claim_deadline=data["claim_deadline"],
                    department=data.get("department_name"),
                )
        if recorded:
            self._on_ingested()
        return recorded
