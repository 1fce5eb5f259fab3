"""The deadline rules over real calendar edges: National Day 2026 with its make-up Saturday, Spring Festival 2026,
and a claim period running from 2026 into 2027 (no published schedule yet: estimated)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import structlog

from factories import envelope
from gateway.calendar import WorkingDayCalendar, YearSchedule
from gateway.config import DeadlineSettings
from gateway.deadlines import (
    RULES,
    DeadlineKind,
    DeadlineOutcome,
    Policy,
    active_rules,
    at_risk,
    claim_closing,
    default_claim,
    expired,
    local_date,
    openings_for_delivered,
    openings_for_message,
    openings_for_routed,
)
from gateway.mapping import Channel, MappingList, MappingRow
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed

CST = timezone(timedelta(hours=8))
ITEM = "11320700MB123456794000117001"


@pytest.fixture(autouse=True)
def _logging_to_this_tests_output() -> None:
    """CLI tests configure structlog onto CliRunner's stream, closed after them; log here instead."""
    structlog.reset_defaults()


@pytest.fixture
def calendar() -> WorkingDayCalendar:
    return WorkingDayCalendar()


def settings(**changes: object) -> DeadlineSettings:
    return DeadlineSettings.model_validate(changes)


def at(day: date, hour: int = 10) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST).timestamp()


def row(region: str, claim_days: int | None, *, dept: str = "市场监管局") -> MappingRow:
    return MappingRow(
        ITEM, "食品经营许可", None, "32070000100001", "后监管", dept, "X1", region, Channel.platform, claim_days
    )


def mapping(*rows: MappingRow) -> MappingList:
    return MappingList(rows=rows, problems=(), source="t", digest="d")


def decided(on: datetime, case_no: str = "320700261121000012345", **changes: object) -> Envelope:
    return envelope(case_no, decided_at=on, received_at=on - timedelta(days=1), **changes)


def claim_for(task_no: str, when: datetime, mode: ClaimMode = ClaimMode.manual) -> Envelope:
    payload = SupervisionTaskClaimed(task_no=task_no, approval_case_no="C1", claimed_at=when, mode=mode)
    return Envelope.wrap(payload, source="hlwjg-events", correlation_id="C1")


# -- which period applies ----------------------------------------------------------------------------------------


def test_claim_period_precedence_mapping_then_county_city_province_then_default() -> None:
    cfg = settings(claim_days=2, regions={"320000": {"claim_days": 4}, "320700": {"claim_days": 3}})
    assert Policy(cfg).period("claim_days", region="320706").days == 3, "the city override covers its counties"
    assert Policy(cfg).period("claim_days", region="320706").basis == "region 320700"
    assert Policy(cfg).period("claim_days", region="320100").days == 4, "the province covers other cities"
    assert Policy(cfg).period("claim_days", region="110101").days == 2
    assert Policy(cfg).period("claim_days", region="110101").basis == "default"
    mapped = Policy(cfg).period("claim_days", region="320706", rows=[row("320700", 5), row("320700", None)])
    assert (mapped.days, mapped.basis) == (5, "mapping"), "the mapping row's 认领时限 wins over config"
    unmapped = Policy(cfg).period("claim_days", region="320706", rows=[row("320700", None)])
    assert unmapped.days == 3, "a row without 认领时限 leaves the city's default"
    strictest = Policy(cfg).period("claim_days", region="320700", rows=[row("320700", 5), row("320700", 2)])
    assert strictest.days == 2


def test_rules_wait_for_their_event_types() -> None:
    kinds = {r.kind for r in active_rules()}
    assert {DeadlineKind.push, DeadlineKind.claim, DeadlineKind.commitment, DeadlineKind.revocation_advice} <= kinds
    assert kinds == {r.kind for r in RULES}, "every event type of DESIGN §2.2 exists now: every rule is active"
    earlier = {"approval.decided", "supervision.task.claimed"}
    assert DeadlineKind.result not in {r.kind for r in active_rules(RULES, earlier)}, "a rule waits for its types"
    later = earlier | {"supervision.inspection.reported", "supervision.result.reported"}
    assert DeadlineKind.result in {r.kind for r in active_rules(RULES, later)}, "adding the event types is enough"


# -- claims over holidays ----------------------------------------------------------------------------------------


def claim_due(calendar: WorkingDayCalendar, generated: date, cfg: DeadlineSettings, region: str = "320700"):
    env = decided(datetime(generated.year, generated.month, generated.day, 9, tzinfo=CST), region=region)
    [opening] = openings_for_delivered(
        env,
        destination="hlwjg",
        remote_id="JGRW1",
        delivered_at=at(generated),
        policy=Policy(cfg),
        calendar=calendar,
        rules=RULES,
    )
    assert (opening.kind, opening.subject, opening.started_on) == (DeadlineKind.claim, "JGRW1", generated)
    return opening


def test_claim_across_national_day_2026_lands_on_the_make_up_saturday(calendar: WorkingDayCalendar) -> None:
    # Task generated Wed 30 Sep; 1–7 Oct are holidays; Thu 8, Fri 9 and the make-up Sat 10 Oct are worked.
    two = claim_due(calendar, date(2026, 9, 30), settings(claim_days=2))
    assert (two.due_on, two.estimated) == (date(2026, 10, 9), False)
    three = claim_due(calendar, date(2026, 9, 30), settings(regions={"320700": {"claim_days": 3}}))
    assert three.due_on == date(2026, 10, 10) and three.due_on.weekday() == 5, "调休: a Saturday is the due day"
    assert three.basis == "region 320700"


def test_claim_across_spring_festival_2026(calendar: WorkingDayCalendar) -> None:
    # Generated Fri 13 Feb: Sat 14 Feb is a make-up working day, 15–23 Feb are off, Tue 24 Feb works.
    opening = claim_due(calendar, date(2026, 2, 13), settings(claim_days=2))
    assert opening.due_on == date(2026, 2, 24)


def test_claim_from_2026_into_2027_is_estimated(calendar: WorkingDayCalendar) -> None:
    # Thu 31 Dec 2026 + 2: 2027 has no published schedule, so Fri 1 Jan counts as a working day (estimated).
    opening = claim_due(calendar, date(2026, 12, 31), settings(claim_days=2))
    assert (opening.due_on, opening.estimated) == (date(2027, 1, 4), True)
    # The official 2027 schedule says 1–3 Jan are off: recomputed from what the deadline keeps, it is exact.
    calendar.add_schedule(YearSchedule(2027, frozenset(date(2027, 1, d) for d in (1, 2, 3)), frozenset()))
    again = calendar.add_working_days(opening.started_on, opening.working_days)
    assert (again.date, again.estimated) == (date(2027, 1, 5), False)


def test_claims_only_for_destinations_that_generate_tasks(calendar: WorkingDayCalendar) -> None:
    env = decided(datetime(2026, 11, 19, 9, tzinfo=CST))
    common = {"delivered_at": at(date(2026, 11, 19)), "calendar": calendar, "rules": RULES}
    assert openings_for_delivered(env, destination="hlwjg", remote_id=None, policy=Policy(settings()), **common) == []
    only = Policy(settings(claim_destinations=["hlwjg"]))
    assert openings_for_delivered(env, destination="credit", remote_id="R1", policy=only, **common) == []
    assert len(openings_for_delivered(env, destination="hlwjg", remote_id="R1", policy=only, **common)) == 1


# -- push and 告知承诺 --------------------------------------------------------------------------------------------


def test_push_is_due_the_first_working_day_after_the_decision_per_destination(calendar: WorkingDayCalendar) -> None:
    env = decided(datetime(2026, 9, 30, 17, 55, tzinfo=CST))
    opens = openings_for_routed(env, [(1, "hlwjg"), (2, "credit")], Policy(settings()), calendar, RULES)
    assert [(o.kind, o.subject, o.delivery_id) for o in opens] == [
        (DeadlineKind.push, "hlwjg", 1),
        (DeadlineKind.push, "credit", 2),
    ]
    assert {o.due_on for o in opens} == {date(2026, 10, 8)}, "the decision day does not count; 1–7 Oct are off"
    same_day = openings_for_routed(env, [(1, "hlwjg")], Policy(settings(push_days=0)), calendar, RULES)
    assert same_day[0].due_on == date(2026, 9, 30)


def test_commitment_window_and_revocation_advice_window(calendar: WorkingDayCalendar) -> None:
    on = datetime(2026, 11, 20, 16, 40, tzinfo=CST)  # a Friday
    opens = {o.kind: o for o in openings_for_message(decided(on), Policy(settings()), calendar, RULES)}
    assert set(opens) == {DeadlineKind.commitment, DeadlineKind.revocation_advice}
    commitment, advice = opens[DeadlineKind.commitment], opens[DeadlineKind.revocation_advice]
    assert (commitment.working_days, commitment.basis) == (20, "record"), "the record's own 承诺期限"
    assert commitment.due_on == calendar.add_working_days(date(2026, 11, 20), 20).date
    assert advice.working_days == 35 and advice.due_on == calendar.add_working_days(commitment.due_on, 15).date
    regional = Policy(settings(regions={"320700": {"commitment_period_days": 30}}))
    no_period = decided(on, commitment={"mode": "post_verification"})
    [window, _] = openings_for_message(no_period, regional, calendar, RULES)
    assert (window.working_days, window.basis) == (30, "region 320700"), "the region's default commitment period"
    assert openings_for_message(decided(on, commitment=None), Policy(settings()), calendar, RULES) == []
    refused = decided(on, result="rejected", certificate=None)
    assert openings_for_message(refused, Policy(settings()), calendar, RULES) == [], "no licence, no commitment"


def test_department_comes_from_the_binding_mapping_row(calendar: WorkingDayCalendar) -> None:
    policy = Policy(settings(), lambda: mapping(row("320700", 3, dept="连云港市市场监督管理局")))
    env = decided(datetime(2026, 11, 19, 9, tzinfo=CST))
    [opening] = openings_for_delivered(
        env, destination="hlwjg", remote_id="T1", delivered_at=at(date(2026, 11, 19)),
        policy=policy, calendar=calendar, rules=RULES,
    )  # fmt: skip
    assert (opening.department_name, opening.working_days, opening.basis) == ("连云港市市场监督管理局", 3, "mapping")
    assert opening.detail == {"supervision_item_code": "32070000100001"}
    assert opening.due_on == date(2026, 11, 24), "Thu + 3 working days: Fri, Mon, Tue"


# -- closing, expiry, risk, default claims ---------------------------------------------------------------------


def test_a_claim_closes_by_task_number_default_claims_are_default() -> None:
    manual = claim_closing(claim_for("T1", datetime(2026, 11, 23, 18, tzinfo=CST)))
    assert (manual.subject, manual.outcome, manual.closed_on) == ("T1", None, date(2026, 11, 23))
    platform_default = claim_closing(claim_for("T2", datetime(2026, 11, 24, tzinfo=CST), ClaimMode.default))
    assert platform_default.outcome is DeadlineOutcome.default


def test_expiry_and_risk_count_working_days(calendar: WorkingDayCalendar) -> None:
    monday = date(2026, 11, 23)
    assert not expired(monday, monday) and expired(monday + timedelta(days=1), monday)
    assert not at_risk(date(2026, 11, 20), monday, calendar), "Friday before a Monday due day: one working day left"
    assert not at_risk(date(2026, 11, 21), monday, calendar), "the weekend does not eat into it"
    assert at_risk(monday, monday, calendar) and at_risk(date(2026, 11, 25), monday, calendar)
    assert not at_risk(date(2026, 9, 30), date(2026, 10, 8), calendar), "the holiday week is not working time"


def test_default_claim_is_deterministic_and_dated_when_the_deadline_ran_out() -> None:
    deadline = {
        "subject": "JGRW32070000000001",
        "correlation_id": "320700261121000012345",
        "due_on": "2026-11-23",
        "region": "320700",
        "department_name": "连云港市市场监督管理局",
        "department_code": "11320700MB12345679",
        "opened_by": "m-1",
        "detail": {"supervision_item_code": "32070000100001"},
    }
    env = default_claim(deadline)
    payload = env.payload()
    assert isinstance(payload, SupervisionTaskClaimed)
    assert (payload.mode, payload.auto, payload.claim_deadline) == (ClaimMode.default, True, date(2026, 11, 23))
    assert payload.claimed_at == datetime(2026, 11, 24, tzinfo=CST) and local_date(payload.claimed_at).weekday() == 1
    assert (env.source, env.correlation_id, env.causation_id) == ("shenguan", "320700261121000012345", "m-1")
    assert default_claim(dict(deadline)).id == env.id, "recorded twice, it is one fact"


def test_an_approval_sent_to_the_credit_platform_is_due_in_seven_working_days(calendar: WorkingDayCalendar) -> None:
    env = decided(datetime(2026, 9, 30, 10, tzinfo=CST))
    policy = Policy(settings(credit_destinations=["credit"]))
    opens = openings_for_routed(env, [(1, "hlwjg"), (2, "credit")], policy, calendar, RULES)
    assert [(o.kind, o.subject, o.working_days) for o in opens] == [
        (DeadlineKind.push, "hlwjg", 1),
        (DeadlineKind.credit, "credit", 7),
    ]
    assert opens[1].due_on == date(2026, 10, 15), "双公示: Oct 8, 9, 10 (调休), 12, 13, 14, 15"
    refused = decided(datetime(2026, 9, 30, 10, tzinfo=CST), result="rejected", certificate=None)
    assert [o.kind for o in openings_for_routed(refused, [(2, "credit")], policy, calendar, RULES)] == []


def test_credit_records_of_their_own_type_are_due_in_seven_working_days() -> None:
    kinds = {(r.kind, r.opened_by) for r in active_rules(RULES, {"credit.license.published", "approval.decided"})}
    assert (DeadlineKind.credit, ("credit.license.published",)) in kinds
