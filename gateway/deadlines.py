"""Statutory deadlines of an approval's closed loop (DESIGN §1): which ones an event opens or closes, and when due.

Everything here is pure — rules, the period that applies, the due date on the working-day calendar — so each
rule can be checked against real calendar edges without a store or a clock. ``gateway.deadline_tracker`` applies
these rules to what the store records and to the passing of time.

**The rules.** Each deadline kind is one ``Rule`` entry: what opens it, what closes it, how many working days
it gives and from when. Three kinds of trigger exist:

- ``routed`` — a delivery of a message was created (one deadline per destination: the push of an approval);
  closed when that delivery is delivered, online or on paper;
- ``delivered`` — a delivery was delivered with a receipt naming a remote id (the supervision platform's
  ``taskNo``: the task exists from then on, and its claim period starts);
- ``accepted`` — a message was accepted (a request that must be answered, a decision that starts a period).

A rule whose opening or closing event types are not in the canonical model yet is *inactive*: adding the event
type (``supervision.result.reported``, ``approval.feedback.sent``, …) is all it takes to start tracking it.

**Periods.** 期间开始之日不计算在内: the day of the triggering event never counts; a deadline of *n* working days
is due at the end of the *n*-th working day after it (``WorkingDayCalendar.add_working_days``), and a deadline
reached in a year without a published schedule is ``estimated`` until the operator loads one. Decisions taken
where the rules are silent (see docs/architecture.md, "Deadlines"):

- *push "immediately"* is counted as ``push_days`` (default 1): on time when delivered by the end of the first
  working day after the decision day — the decision day itself cannot count, and a decision at 17:55 must be
  allowed to leave the next morning;
- *claim* starts when the platform generated the task (the delivery's receipt) and lasts the mapping row's
  认领时限 for the item, else the region's override (county, city, province), else ``claim_days``;
- *commitment* (告知承诺 period) and the *revocation-advice* window after it are windows: they elapse, they are
  not failures when nothing happens in them.

**At risk.** A delivery whose deadline is less than one working day away (the due day has come, or passed) and
whose last attempt failed is at risk; the tracker moves it to paper where its destination allows paper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from adapters.native import SHANGHAI
from gateway.calendar import WorkingDayCalendar
from gateway.config import DeadlineSettings
from gateway.mapping import MappingList, MappingRow
from gateway.store.deadlines import Closing, DeadlineKind, DeadlineOutcome, Opening
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed, event_types

__all__ = [
    "APPROVAL",
    "CLAIM",
    "RULES",
    "Closing",
    "DeadlineKind",
    "DeadlineOutcome",
    "Opening",
    "Period",
    "Policy",
    "Rule",
    "active_rules",
    "at_risk",
    "claim_closing",
    "closings_for_message",
    "default_claim",
    "expired",
    "expiry_moment",
    "local_date",
    "openings_for_delivered",
    "openings_for_message",
    "openings_for_routed",
]

APPROVAL = "approval.decided"
CLAIM = "supervision.task.claimed"


Trigger = Literal["routed", "delivered", "accepted"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One deadline kind: what opens it (``trigger`` of a message of ``opened_by``) and what closes it.

    ``closed_by`` lists event types whose accepted message closes it, found by ``match``: ``subject`` (the
    closing message's business key is the deadline's subject, e.g. the task number) or ``loop`` (any message of
    that type in the same ``correlation_id``). A ``routed`` rule with no ``closed_by`` is closed by the delivery
    it tracks. ``window`` rules elapse instead of becoming overdue. ``days`` names the setting that gives the
    period; ``plus`` the setting of a second period that follows it (the revocation window after the commitment).
    """

    kind: DeadlineKind
    trigger: Trigger
    opened_by: tuple[str, ...]
    days: str
    closed_by: tuple[str, ...] = ()
    match: Literal["subject", "loop"] = "loop"
    window: bool = False
    plus: str | None = None
    when: Callable[[Envelope], bool] = field(default=lambda _env: True, compare=False)
    to: Literal["any", "credit", "other"] = "any"  # routed rules: which destinations (``credit_destinations``)

    def active(self, known: Iterable[str]) -> bool:
        """Whether the canonical model has every event type this rule needs (else it waits for them)."""
        types = set(known)
        needed = set(self.opened_by) | (set() if self.window else set(self.closed_by))
        return needed <= types


def _commitment(env: Envelope) -> bool:
    return env.type == APPROVAL and bool(env.data.get("commitment")) and env.data.get("result") == "granted"


def _granted(env: Envelope) -> bool:
    return env.data.get("result") == "granted"


def _license_action(env: Envelope) -> bool:
    return env.data.get("license_action") not in (None, "none")


RULES: tuple[Rule, ...] = (
    Rule(DeadlineKind.push, "routed", (APPROVAL,), "push_days", to="other"),
    # An approval sent to the credit platform is a 双公示 record (行政许可): 7 working days, not "immediately".
    Rule(DeadlineKind.credit, "routed", (APPROVAL,), "credit_days", when=_granted, to="credit"),
    Rule(DeadlineKind.claim, "delivered", (APPROVAL,), "claim_days", closed_by=(CLAIM,), match="subject"),
    Rule(DeadlineKind.commitment, "accepted", (APPROVAL,), "commitment_period_days", window=True, when=_commitment),
    Rule(
        DeadlineKind.revocation_advice,
        "accepted",
        (APPROVAL,),
        "commitment_period_days",
        closed_by=("license.revocation.advised",),
        window=True,
        plus="revocation_advice_days",
        when=_commitment,
    ),
    Rule(
        DeadlineKind.preapproval,
        "accepted",
        ("preapproval.confirmation.requested",),
        "preapproval_days",
        closed_by=("preapproval.confirmation.answered",),
    ),
    Rule(
        DeadlineKind.result,
        "accepted",
        ("supervision.inspection.reported",),
        "result_days",
        closed_by=("supervision.result.reported",),
    ),
    Rule(
        DeadlineKind.feedback,
        "accepted",
        ("license.revocation.advised",),
        "feedback_days",
        closed_by=("approval.feedback.sent",),
    ),
    # A result that asks for the licence to change (变更, 暂扣, 撤销) must be handled and answered like an advice.
    Rule(
        DeadlineKind.feedback,
        "accepted",
        ("supervision.result.reported",),
        "feedback_days",
        closed_by=("approval.feedback.sent",),
        when=_license_action,
    ),
    Rule(DeadlineKind.guidance, "accepted", ("guidance.requested",), "guidance_days", closed_by=("guidance.answered",)),
    Rule(DeadlineKind.credit, "routed", ("credit.license.published",), "credit_days"),
    Rule(DeadlineKind.credit, "routed", ("credit.penalty.published",), "credit_days"),
    Rule(DeadlineKind.credit, "routed", ("credit.commitment.published",), "credit_days"),  # 告知承诺书
    Rule(DeadlineKind.credit, "routed", ("credit.fulfilment.published",), "credit_days"),  # 履约践诺
)


def active_rules(rules: Iterable[Rule] = RULES, known: Iterable[str] | None = None) -> tuple[Rule, ...]:
    """The rules the current canonical model can drive (``known`` defaults to the registered event types)."""
    types = set(event_types() if known is None else known)
    return tuple(r for r in rules if r.active(types))


# ----------------------------------------------------------------------------------------------------------------
# periods


def local_date(moment: datetime | float) -> date:
    """The Beijing calendar day of an instant (epoch seconds or an aware datetime)."""
    if isinstance(moment, datetime):
        return moment.astimezone(SHANGHAI).date()
    return datetime.fromtimestamp(moment, SHANGHAI).date()


@dataclass(frozen=True, slots=True)
class Period:
    """How many working days apply, and why (``basis``: ``mapping``, ``region 320500`` or ``default``)."""

    days: int
    basis: str


class Policy:
    """Which period applies where: settings, per-region overrides, and the mapping list's 认领时限.

    ``mapping`` is read at each call, so a newly activated mapping version applies to deadlines opened after it.
    """

    def __init__(self, settings: DeadlineSettings, mapping: Callable[[], MappingList | None] = lambda: None) -> None:
        self.settings = settings
        self._mapping = mapping

    def rows(self, item_code: str | None, region: str | None) -> list[MappingRow]:
        """The mapping rows of an approval item in a region (most specific level), if a mapping is active."""
        mapping = self._mapping()
        if mapping is None or not item_code or not region:
            return []
        try:
            return mapping.lookup(item_code, region)
        except ValueError:
            return []

    def period(self, setting: str, *, region: str | None = None, rows: Iterable[MappingRow] = ()) -> Period:
        """The working days of ``setting`` (a ``DeadlineSettings`` field) for a region and its mapping rows."""
        if setting == "claim_days":
            mapped = [r.claim_deadline_days for r in rows if r.claim_deadline_days is not None]
            if mapped:
                # Several supervision items for one approval item: the strictest period binds.
                return Period(min(mapped), "mapping")
        if region:
            for level in dict.fromkeys((region, region[:4] + "00", region[:2] + "0000")):
                override = self.settings.regions.get(level)
                value = getattr(override, setting, None) if override is not None else None
                if value is not None:
                    return Period(int(value), f"region {level}")
        return Period(int(getattr(self.settings, setting)), "default")


# ----------------------------------------------------------------------------------------------------------------
# openings and closings


@dataclass(frozen=True, slots=True)
class _Context:
    """What the rules know about an approval: region, item and the department the mapping names."""

    region: str | None
    item_code: str | None
    item_name: str | None
    rows: tuple[MappingRow, ...]

    @property
    def department(self) -> tuple[str | None, str | None, str | None]:
        """(name, code, supervision item code) of the binding mapping row (the strictest claim period)."""
        if not self.rows:
            return None, None, None
        row = min(self.rows, key=lambda r: (r.claim_deadline_days is None, r.claim_deadline_days or 0))
        return row.department_name, row.department_code, row.supervision_item_code


def _context(env: Envelope, policy: Policy) -> _Context:
    item = env.data.get("item") if isinstance(env.data.get("item"), Mapping) else {}
    region = env.data.get("region") or env.region
    code = item.get("code") if item else None
    rows = tuple(policy.rows(code, region))
    return _Context(region, code, item.get("name") if item else None, rows)


def _opening(
    rule: Rule,
    env: Envelope,
    ctx: _Context,
    policy: Policy,
    calendar: WorkingDayCalendar,
    *,
    subject: str,
    started_on: date,
    delivery_id: int | None = None,
    days_override: int | None = None,
) -> Opening:
    period = policy.period(rule.days, region=ctx.region, rows=ctx.rows)
    days, basis = period.days, period.basis
    if days_override is not None:
        days, basis = days_override, "record"
    if rule.plus is not None:
        extra = policy.period(rule.plus, region=ctx.region, rows=ctx.rows)
        days += extra.days
    due = calendar.add_working_days(started_on, days)
    name, code, matter = ctx.department
    return Opening(
        correlation_id=env.correlation_id,
        kind=rule.kind,
        subject=subject,
        started_on=started_on,
        working_days=days,
        due_on=due.date,
        estimated=due.estimated,
        basis=basis,
        opened_by=env.id,
        region=ctx.region,
        item_code=ctx.item_code,
        item_name=ctx.item_name,
        department_name=name,
        department_code=code,
        delivery_id=delivery_id,
        detail={"supervision_item_code": matter} if matter else {},
    )


def _commitment_days(env: Envelope) -> int | None:
    commitment = env.data.get("commitment")
    period = commitment.get("period_days") if isinstance(commitment, Mapping) else None
    return int(period) if isinstance(period, int) and not isinstance(period, bool) else None


def openings_for_message(
    env: Envelope, policy: Policy, calendar: WorkingDayCalendar, rules: Iterable[Rule]
) -> list[Opening]:
    """Deadlines an accepted message opens (one per rule; the loop is the subject)."""
    out = []
    for rule in rules:
        if rule.trigger != "accepted" or env.type not in rule.opened_by or not rule.when(env):
            continue
        ctx = _context(env, policy)
        # The record's own 承诺期限 wins over the configured default period.
        own = _commitment_days(env) if rule.days == "commitment_period_days" else None
        out.append(
            _opening(rule, env, ctx, policy, calendar, subject="", started_on=local_date(env.time), days_override=own)
        )
    return out


def openings_for_routed(
    env: Envelope,
    deliveries: Iterable[tuple[int, str]],
    policy: Policy,
    calendar: WorkingDayCalendar,
    rules: Iterable[Rule],
) -> list[Opening]:
    """Deadlines the deliveries ``(id, destination)`` of a message open: one per destination, from the fact's time."""
    out = []
    for rule in rules:
        if rule.trigger != "routed" or env.type not in rule.opened_by or not rule.when(env):
            continue
        ctx = _context(env, policy)
        credit = set(policy.settings.credit_destinations)
        for delivery_id, destination in deliveries:
            if (rule.to == "credit" and destination not in credit) or (rule.to == "other" and destination in credit):
                continue
            out.append(
                _opening(
                    rule,
                    env,
                    ctx,
                    policy,
                    calendar,
                    subject=destination,
                    started_on=local_date(env.time),
                    delivery_id=delivery_id,
                )
            )
    return out


def openings_for_delivered(
    env: Envelope,
    *,
    destination: str,
    remote_id: str | None,
    delivered_at: float,
    policy: Policy,
    calendar: WorkingDayCalendar,
    rules: Iterable[Rule],
) -> list[Opening]:
    """Deadlines a delivered delivery opens: the claim of the task whose number its receipt carried."""
    claim_destinations = policy.settings.claim_destinations
    if not remote_id or (claim_destinations is not None and destination not in claim_destinations):
        return []
    out = []
    for rule in rules:
        if rule.trigger != "delivered" or env.type not in rule.opened_by or not rule.when(env):
            continue
        ctx = _context(env, policy)
        out.append(_opening(rule, env, ctx, policy, calendar, subject=remote_id, started_on=local_date(delivered_at)))
    return out


def closings_for_message(env: Envelope, rules: Iterable[Rule]) -> list[Closing]:
    """What an accepted message closes: by subject (its business key) or in its loop."""
    out = []
    for rule in rules:
        if env.type not in rule.closed_by:
            continue
        if rule.kind is DeadlineKind.claim:
            out.append(claim_closing(env))
            continue
        closed_at = env.time.timestamp()
        subject = env.business_key if rule.match == "subject" else None
        correlation = None if rule.match == "subject" else env.correlation_id
        out.append(
            Closing(rule.kind, env.id, closed_at, local_date(env.time), correlation_id=correlation, subject=subject)
        )
    return out


def claim_closing(env: Envelope) -> Closing:
    """A claim closes its task's claim deadline: 默认认领 when it was a default claim, else on time or late."""
    data = env.data
    default = data.get("mode") == ClaimMode.default.value
    return Closing(
        DeadlineKind.claim,
        env.id,
        env.time.timestamp(),
        local_date(env.time),
        subject=env.business_key,
        outcome=DeadlineOutcome.default if default else None,
        department_name=data.get("department_name"),
        department_code=data.get("department_code"),
    )


# ----------------------------------------------------------------------------------------------------------------
# the passing of time


def expired(today: date, due_on: date) -> bool:
    """Whether the due day is over (a deadline is met until the end of its due day)."""
    return today > due_on


def at_risk(today: date, due_on: date, calendar: WorkingDayCalendar) -> bool:
    """Less than one working day left: the due day has come (or passed), counted on the working-day calendar."""
    return calendar.working_days_between(today, due_on).days < 1


def expiry_moment(due_on: date) -> datetime:
    """The instant a deadline ran out: the start of the day after its due day, Beijing time."""
    return datetime.combine(due_on + timedelta(days=1), time(0, 0), SHANGHAI)


def default_claim(deadline: Mapping[str, Any]) -> Envelope:
    """The ``supervision.task.claimed`` (默认认领, ``auto``) shenguan records for a claim deadline that ran out.

    Everything in it is derived from the deadline row, so the same deadline always yields the same envelope
    (same id, same content hash): recording it twice — a crash, a restart, a second instance — is one fact.
    """
    due_on = date.fromisoformat(str(deadline["due_on"]))
    detail = deadline.get("detail") or {}
    payload = SupervisionTaskClaimed(
        task_no=str(deadline["subject"]),
        approval_case_no=str(deadline["correlation_id"]),
        supervision_matter_code=detail.get("supervision_item_code"),
        department_name=deadline.get("department_name"),
        department_code=deadline.get("department_code"),
        region=deadline.get("region"),
        claimed_at=expiry_moment(due_on),
        mode=ClaimMode.default,
        auto=True,
        claim_deadline=due_on,
    )
    return Envelope.wrap(
        payload,
        source="shenguan",
        region=deadline.get("region"),
        correlation_id=str(deadline["correlation_id"]),
        causation_id=str(deadline["opened_by"]),
    )
