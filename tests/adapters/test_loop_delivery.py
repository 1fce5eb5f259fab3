"""Delivering the loop's messages: zwfw's linkage inbox and hlwjg's loop-message intake, against the mocks.

What must hold at the receiver: one record per fact whatever happens to the replies (a resend with the same key is
a replay, a status query finds what a lost reply hid), and each refusal classified by what it means.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from loopkit import sample

from adapters import DeliveryReceipt, OutcomeUnknownError, PermanentError, RetryableError
from adapters.hlwjg import HlwjgAdapter
from adapters.zwfw import ZwfwAdapter
from mock_platforms import create_app
from schemas import Classification, Envelope, correlation_id_of


def wrapped(event_type: str, revision: int = 1, **changes: Any) -> Envelope:
    payload = sample(event_type, **changes)
    return Envelope.wrap(payload, source="hlwjg-events", revision=revision, correlation_id=correlation_id_of(payload))


@pytest.fixture
def app() -> Any:
    return create_app()


@pytest.fixture
async def zwfw(app: Any) -> AsyncIterator[ZwfwAdapter]:
    adapter = ZwfwAdapter(
        "zwfw", base_url="http://mocks/zwfw", paasid="shenguan", token="zwfw-mock-token",
        transport=httpx.ASGITransport(app=app),
    )  # fmt: skip
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def hlwjg(app: Any) -> AsyncIterator[HlwjgAdapter]:
    adapter = HlwjgAdapter(
        "hlwjg", base_url="http://mocks/hlwjg", client_id="shenguan", client_secret="hlwjg-mock-secret",
        transport=httpx.ASGITransport(app=app),
    )  # fmt: skip
    yield adapter
    await adapter.aclose()


async def test_zwfw_inbox_holds_each_fact_once_through_lost_replies(zwfw: ZwfwAdapter, app: Any) -> None:
    platform = app.platforms["zwfw"]
    advice = wrapped("license.revocation.advised")
    assert await zwfw.query_status(advice, "k-advice") is None, "not held yet"
    platform.faults.settings.drop_response_rate = 1.0
    with pytest.raises(OutcomeUnknownError):
        await zwfw.deliver(advice, "k-advice")
    platform.faults.settings.drop_response_rate = 0.0
    found = await zwfw.query_status(advice, "k-advice")
    assert isinstance(found, DeliveryReceipt) and found.replayed, "the lost reply's record is found by asking"
    again = await zwfw.deliver(advice, "k-advice")
    assert again.replayed and again.remote_id == found.remote_id
    report = platform.records_report()
    assert (report["accepted"], report["duplicate_creations"]) == (1, 0)
    assert report["records"][0]["item"]["PROJID"] == advice.data["approval_case_no"]
    # The bureau handled the advice at once: its feedback is in the linkage feed, in the same loop.
    [feedback] = platform.linkage_feed
    assert feedback["MSGTYPE"] == "FEEDBACK" and feedback["IN_REPLY_TO"] == advice.business_key
    # A re-report (重报) updates the record; a naive resend under a new key is the duplicate a relay must avoid.
    corrected = wrapped("license.revocation.advised", revision=2, reason="更正：承诺内容与实际不符")
    await zwfw.deliver(corrected, "k-advice-2")
    assert platform.records_report()["records"][0]["dataVersion"] == 2
    await zwfw.deliver(advice, "a-new-key")
    assert platform.records_report()["duplicate_creations"] == 1, "the mock notices what a relay must never do"


async def test_zwfw_inbox_refusals_are_classified(zwfw: ZwfwAdapter, app: Any) -> None:
    platform = app.platforms["zwfw"]
    feedback = wrapped("approval.feedback.sent")
    with pytest.raises(PermanentError, match="4001"):
        await zwfw.deliver(feedback, "k1")  # the bureau's own message type: refused for its content
    with pytest.raises(PermanentError, match="does not accept"):
        await zwfw.deliver(Envelope.wrap(sample("credit.commitment.published"), source="x"), "k2")
    secret = wrapped("supervision.inspection.reported").model_copy(update={"classification": Classification.secret})
    with pytest.raises(PermanentError, match="secret"):
        await zwfw.deliver(secret, "k3")
    platform.faults.settings.error_rate = 1.0
    with pytest.raises(OutcomeUnknownError, match="500"):
        await zwfw.deliver(wrapped("supervision.inspection.reported"), "k4")
    platform.faults.settings.error_rate = 0.0
    platform.credentials["shenguan"] = "rotated"
    with pytest.raises(RetryableError, match="4010"):
        await zwfw.deliver(wrapped("supervision.inspection.reported"), "k5")
    with pytest.raises(RetryableError):
        await zwfw.query_status(wrapped("supervision.inspection.reported"), "k5")
    assert platform.records_report()["accepted"] == 0


async def test_hlwjg_takes_the_approval_sides_messages_and_answers_requests(hlwjg: HlwjgAdapter, app: Any) -> None:
    platform = app.platforms["hlwjg"]
    request = wrapped("preapproval.confirmation.requested")
    receipt = await hlwjg.deliver(request, "k-request")
    assert receipt.remote_id and not receipt.replayed
    assert (await hlwjg.deliver(request, "k-request")).replayed
    assert (await hlwjg.query_status(request, "k-request")).remote_id == receipt.remote_id
    [answer] = [e for e in platform.events if e["eventType"] == "PREAPPROVAL_ANSWERED"]
    assert answer["requestNo"] == request.business_key and answer["approvalNo"] == request.data["approval_case_no"]
    await hlwjg.deliver(wrapped("approval.feedback.sent"), "k-feedback")
    report = platform.records_report()
    assert (report["facts"]["messages"], report["duplicate_creations"]) == (2, 0)
    with pytest.raises(PermanentError, match="INVALID_MESSAGE"):
        await hlwjg.deliver(wrapped("supervision.inspection.reported"), "k-own")  # its own kind of message
    assert platform.records_report()["rejected"] == 1
