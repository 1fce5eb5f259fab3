"""``supervision.task.claimed``: manual and default claims, and what an auto claim may be."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas import ClaimMode, Envelope, SupervisionTaskClaimed

CST = timezone(timedelta(hours=8))


def claim(**changes: object) -> SupervisionTaskClaimed:
    data: dict[str, object] = {
        "task_no": "JGRW32070000000001",
        "approval_case_no": "320700261121000012345",
        "claimed_at": datetime(2026, 11, 24, 0, 0, tzinfo=CST),
        "mode": "default",
        "auto": True,
        "supervision_matter_code": "32070000100001",
    }
    data.update(changes)
    return SupervisionTaskClaimed.model_validate(data)


def test_the_task_number_is_the_fact_and_the_claim_time_its_business_time() -> None:
    payload = claim()
    env = Envelope.wrap(payload, source="shenguan", correlation_id="320700261121000012345")
    assert (env.type, env.business_key, env.time) == ("supervision.task.claimed", payload.task_no, payload.claimed_at)
    assert env.payload() == payload
    assert Envelope.wrap(claim(), source="shenguan").id == env.id, "same claim, same id: re-emitting is one fact"


def test_an_auto_claim_must_be_a_default_claim() -> None:
    with pytest.raises(ValidationError, match="auto claim"):
        claim(mode="manual", auto=True)
    assert claim(mode="manual", auto=False).mode is ClaimMode.manual


def test_naive_times_and_bad_matter_codes_are_refused() -> None:
    with pytest.raises(ValidationError):
        claim(claimed_at=datetime(2026, 11, 24, 0, 0))
    with pytest.raises(ValidationError):
        claim(supervision_matter_code="1234")
