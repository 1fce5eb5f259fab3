"""The closed loop's deadlines driven by its messages: results, feedback, 批前确认, guidance, 双公示 records."""

from __future__ import annotations

from datetime import date

from loopkit import CASE_NO, sample

from gateway.calendar import WorkingDayCalendar
from gateway.config import DeadlineSettings
from gateway.deadlines import (
    DeadlineKind,
    Policy,
    active_rules,
    closings_for_message,
    openings_for_message,
    openings_for_routed,
)
from schemas import Envelope, correlation_id_of


def wrapped(event_type: str, **changes: object) -> Envelope:
    payload = sample(event_type, **changes)
    return Envelope.wrap(payload, source="hlwjg-events", correlation_id=correlation_id_of(payload))


def opened(env: Envelope) -> dict[DeadlineKind, date]:
    found = openings_for_message(env, Policy(DeadlineSettings()), WorkingDayCalendar(), active_rules())
    return {o.kind: o.due_on for o in found}


def test_an_inspection_opens_the_result_and_a_licence_changing_result_the_feedback() -> None:
    # 2026-11-25 is a Wednesday: 5 working days later is Wednesday 2026-12-02.
    assert opened(wrapped("supervision.inspection.reported")) == {DeadlineKind.result: date(2026, 12, 2)}
    result = wrapped("supervision.result.reported")  # reported Friday 2026-11-27, suspends the licence
    assert opened(result) == {DeadlineKind.feedback: date(2026, 12, 4)}
    plain = wrapped("supervision.result.reported", license_action="none", license_action_reason=None)
    assert opened(plain) == {}, "a result that leaves the licence alone needs no feedback"
    closes = {c.kind for c in closings_for_message(result, active_rules())}
    assert closes == {DeadlineKind.result}, "the result closes its inspection's deadline"


def test_requests_open_and_answers_close_in_the_same_loop() -> None:
    assert opened(wrapped("preapproval.confirmation.requested")) == {DeadlineKind.preapproval: date(2026, 11, 20)}
    assert opened(wrapped("guidance.requested")) == {DeadlineKind.guidance: date(2026, 11, 30)}
    assert opened(wrapped("license.revocation.advised")) == {DeadlineKind.feedback: date(2026, 12, 3)}
    for answer, kind in (
        ("preapproval.confirmation.answered", DeadlineKind.preapproval),
        ("guidance.answered", DeadlineKind.guidance),
        ("approval.feedback.sent", DeadlineKind.feedback),
    ):
        closings = [c for c in closings_for_message(wrapped(answer), active_rules()) if c.kind is kind]
        assert closings and all(c.correlation_id == CASE_NO for c in closings), "closed in the approval's loop"


def test_credit_records_of_commitments_are_due_in_seven_working_days() -> None:
    env = Envelope.wrap(sample("credit.commitment.published"), source="x", correlation_id=CASE_NO)
    found = openings_for_routed(env, [(1, "credit")], Policy(DeadlineSettings()), WorkingDayCalendar(), active_rules())
    assert [(o.kind, o.working_days) for o in found] == [(DeadlineKind.credit, 7)]
