"""Deliberately wrong adapters fail the conformance kit, with a message that says what to fix.

A kit that passes everything proves nothing; each adapter here carries one classic mistake. The kit's
test methods are plain sync methods, so most cases call them directly; one runs the kit through pytest
(``pytester``) to prove the plugin is loaded from its entry point and marks the checks.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import structlog
import test_conformance_builtin as builtin

from adapters.base import DeliveryReceipt, RawRecord
from adapters.errors import RetryableError
from adapters.hlwjg import HlwjgAdapter
from adapters.zwfw import ZwfwAdapter
from schemas import Envelope

pytest_plugins = ["pytester"]


# -- (a) a 4xx business error classified as retryable -------------------------------------------------------
class RetriesRefusals(HlwjgAdapter):
    """Treats "the receiver refused the content" as "try again": the relay would resend it forever."""

    @staticmethod
    def _delivery_outcome(response: httpx.Response) -> DeliveryReceipt:
        if response.status_code in (400, 422):
            raise RetryableError(f"hlwjg HTTP {response.status_code}", code=str(response.status_code))
        return HlwjgAdapter._delivery_outcome(response)


class RetriesRefusalsKit(builtin.TestHlwjgConformance):
    adapter_factory = staticmethod(
        lambda transport: RetriesRefusals("hlwjg", base_url="http://mock/hlwjg", client_id="shenguan",
                                          client_secret="hlwjg-mock-secret", transport=transport)
    )


def test_business_error_classified_as_retryable_fails() -> None:
    with pytest.raises(AssertionError) as failure:
        RetriesRefusalsKit().test_error_classification()
    text = str(failure.value)
    assert "400 INVALID_RECORD" in text and "422" in text
    assert "raised RetryableError" in text and "declared PermanentError" in text
    assert "the relay resends it later" in text and "Fix the adapter's mapping" in text
    assert "200 with business error code" not in text  # only the wrong cases are named


# -- (b) the idempotency key dropped ----------------------------------------------------------------------
class FreshKeyEachAttempt(HlwjgAdapter):
    """Sends a new requestId on every attempt, so the receiver cannot recognise a resend."""

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        return await super().deliver(envelope, uuid.uuid4().hex)


class FreshKeyKit(builtin.TestHlwjgConformance):
    adapter_factory = staticmethod(
        lambda transport: FreshKeyEachAttempt("hlwjg", base_url="http://mock/hlwjg", client_id="shenguan",
                                              client_secret="hlwjg-mock-secret", transport=transport)
    )


def test_dropped_idempotency_key_fails_same_fact_twice() -> None:
    with pytest.raises(AssertionError) as failure:
        FreshKeyKit().test_same_fact_twice_is_one_effect()
    text = str(failure.value)
    assert "duplicate_creations=1" in text
    assert "Send the idempotency key given to deliver() unchanged on every attempt" in text


def test_dropped_idempotency_key_fails_lost_reply() -> None:
    with pytest.raises(AssertionError) as failure:
        FreshKeyKit().test_lost_reply_is_outcome_unknown_and_no_duplicate()
    text = str(failure.value)
    # The status query looks the delivery up by the key the relay holds, which the adapter never sent.
    assert "query_status answered None although the receiver holds the delivery" in text
    assert "idempotency key you sent" in text


# -- (c) decode raising KeyError on missing fields ----------------------------------------------------------
class TrustsItsInput(ZwfwAdapter):
    """Reads required fields with ``item[...]``: a record without one crashes the poll instead of being rejected."""

    def decode(self, record: RawRecord) -> list[Envelope]:
        item: Any = record.payload
        if isinstance(item, dict):
            _ = item["PROJID"], item["TRANSACT_TIME"]
        return super().decode(record)


class TrustsItsInputKit(builtin.TestZwfwConformance):
    adapter_factory = staticmethod(
        lambda transport: TrustsItsInput("zwfw", base_url="http://mock/zwfw", paasid="shenguan",
                                         token="zwfw-mock-token", transport=transport)
    )


def test_key_error_on_missing_field_fails_the_corpus() -> None:
    with pytest.raises(AssertionError) as failure:
        TrustsItsInputKit().test_awkward_inputs_decode_or_reject()
    text = str(failure.value)
    assert "PROJID missing: KeyError" in text and "TRANSACT_TIME missing: KeyError" in text
    assert "escaped decode; raise DecodeError naming the field instead" in text
    assert "empty object: KeyError" in text
    assert "RECEIVETIME missing" not in text  # optional fields still decode or reject properly


# -- (d) personal data logged, (e) transport errors not classified ------------------------------------------
class LogsTheRecord(HlwjgAdapter):
    """Logs the body it sends — with the applicant's 身份证号 and mobile number in clear."""

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        structlog.get_logger("leaky").info("hlwjg.sending", record=self.encode(envelope))
        return await super().deliver(envelope, idempotency_key)


class LogsTheRecordKit(builtin.TestHlwjgConformance):
    adapter_factory = staticmethod(
        lambda transport: LogsTheRecord("hlwjg", base_url="http://mock/hlwjg", client_id="shenguan",
                                        client_secret="hlwjg-mock-secret", transport=transport)
    )


def test_logged_personal_data_fails() -> None:
    with pytest.raises(AssertionError) as failure:
        LogsTheRecordKit().test_logs_carry_no_personal_data()
    text = str(failure.value)
    assert "structlog event 'hlwjg.sending' (keys record)" in text
    assert "adapters.masking.mask_text" in text
    assert "320706199003071237" not in text and "13912345678" not in text  # the report itself stays clean


class LetsTransportErrorsEscape(HlwjgAdapter):
    """Forgets to classify transport failures: a bare httpx error reaches the relay."""

    async def _send(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        token = await self._tokens.get()
        return await self._client.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})


class LetsTransportErrorsEscapeKit(builtin.TestHlwjgConformance):
    adapter_factory = staticmethod(
        lambda transport: LetsTransportErrorsEscape("hlwjg", base_url="http://mock/hlwjg", client_id="shenguan",
                                                    client_secret="hlwjg-mock-secret", transport=transport)
    )


def test_bare_transport_error_fails_lost_reply() -> None:
    with pytest.raises(AssertionError) as failure:
        LetsTransportErrorsEscapeKit().test_lost_reply_is_outcome_unknown_and_no_duplicate()
    text = str(failure.value)
    assert "deliver let a bare exception escape (RemoteProtocolError" in text
    assert "classify_transport_error" in text


def test_misconfigured_kit_says_which_attribute_is_missing() -> None:
    class NoFactory(builtin.TestHlwjgConformance):
        adapter_factory = None  # type: ignore[assignment]

    with pytest.raises(AssertionError, match="does not set `adapter_factory`"):
        NoFactory().test_samples_are_canonical()


# -- through pytest: the plugin marks the kit and the failure text reaches the report --------------------
def test_plugin_marks_kit_and_reports_what_to_fix(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_third_party='''
        import httpx
        from adapters.conformance import DestinationConformance, ErrorCase, Receiver, reply
        from adapters.errors import PermanentError, RetryableError
        from adapters.hlwjg import HlwjgAdapter
        from adapters.hlwjg.codec import decode_record
        from mock_platforms import create_app
        from schemas import Envelope

        SAMPLE = Envelope.model_validate_json(__SAMPLE__)

        class Sloppy(HlwjgAdapter):
            @staticmethod
            def _delivery_outcome(response):
                if response.status_code == 400:
                    raise RetryableError("hlwjg 400")
                return HlwjgAdapter._delivery_outcome(response)

        def receiver():
            app = create_app()
            return Receiver(httpx.ASGITransport(app=app), lambda: app.platforms["hlwjg"].records_report())

        class TestSloppy(DestinationConformance):
            adapter_factory = staticmethod(lambda t: Sloppy("x", base_url="http://m/hlwjg", client_id="shenguan",
                                                            client_secret="hlwjg-mock-secret", transport=t))
            receiver_factory = staticmethod(receiver)
            samples = [SAMPLE]
            decode_native = staticmethod(decode_record)
            target_request = lambda r: r.url.path.endswith("/approval-records")  # a bare lambda works too
            error_cases = [ErrorCase("400 refused", reply(400, json={"code": "INVALID_RECORD"}), PermanentError)]
        '''.replace("__SAMPLE__", repr(builtin.TestHlwjgConformance.samples[0].model_dump_json()))
    )
    result = pytester.runpytest_inprocess("-m", "conformance", "-q")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED*TestSloppy::test_error_classification*",
    ])
    assert "400 refused: raised RetryableError" in result.stdout.str()
    deselected = pytester.runpytest_inprocess("-m", "not conformance", "-q")
    deselected.assert_outcomes(deselected=6)
