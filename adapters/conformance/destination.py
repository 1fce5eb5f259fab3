"""``DestinationConformance``: the checks every destination adapter passes before the relay may use it.

An adapter author subclasses it in a test module and sets a few class attributes; pytest collects the
inherited ``test_*`` methods (the Singer ``get_target_test_class`` / Airbyte standard-tests style)::

    from adapters.conformance import DestinationConformance, ErrorCase, Receiver, reply

    class TestMyConformance(DestinationConformance):
        adapter_factory = staticmethod(lambda transport: MyAdapter("my", base_url="http://mock", transport=transport))
        receiver_factory = staticmethod(make_mock_receiver)          # () -> Receiver(transport, inspect)
        samples = [envelope_1, envelope_2]                           # canonical envelopes, with personal data
        decode_native = staticmethod(my_codec.decode_record)         # optional inverse of adapter.encode
        target_request = staticmethod(lambda r: r.url.path.endswith("/records"))
        error_cases = [ErrorCase("400", reply(400, json={...}), PermanentError), ...]

Every check builds fresh adapters and receivers and runs on its own event loop, so the methods are plain
sync tests (no pytest-asyncio needed) and can also be called directly. Failure messages say what to fix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from adapters.base import DeliveryReceipt
from adapters.conformance.common import (
    CONSEQUENCE,
    ErrorCase,
    KitBase,
    Receiver,
    RequestMatcher,
    capture_all_logs,
    close,
    counts,
    describe_exception,
    diff_paths,
    every_request,
    personal_values,
    run,
    transport_error,
)
from adapters.conformance.transports import CannedReplyTransport, DropAfterApplyTransport
from adapters.errors import AdapterError, OutcomeUnknownError, RetryableError
from schemas import Envelope, describe_validation_error

__all__ = ["STANDARD_DESTINATION_ERRORS", "DestinationConformance", "idempotency_key"]

STANDARD_DESTINATION_ERRORS: tuple[ErrorCase, ...] = (
    ErrorCase("connection refused", transport_error(httpx.ConnectError), RetryableError,
              why="nothing was sent, so resending is safe"),
    ErrorCase("read timeout", transport_error(httpx.ReadTimeout), OutcomeUnknownError,
              why="the request left; the receiver may have applied it"),
)
"""Replies whose meaning is the same for every HTTP destination; checked unless ``standard_error_cases`` is off."""


def idempotency_key(destination: str, envelope: Envelope) -> str:
    """A key shaped like the gateway's: the same for every attempt of one version of one fact."""
    text = f"{destination}|{envelope.type}|{envelope.business_key}|{envelope.revision}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


class DestinationConformance(KitBase):
    """Conformance checks of a destination adapter. Set these class attributes in your subclass:

    - ``adapter_factory(transport) -> adapter``: build the adapter on the given ``httpx`` transport.
    - ``receiver_factory() -> Receiver``: a fresh fake receiver — its transport and an ``inspect()`` that
      reports ``accepted`` and ``duplicate_creations`` (the mocks' ``/_mock/records`` report).
    - ``samples``: canonical envelopes the adapter accepts; include a 身份证号 and a mobile number so the
      log check has something to look for.
    - ``decode_native(native) -> payload | Envelope`` (optional): the inverse of ``adapter.encode``.
    - ``target_request(request) -> bool``: which request carries the record (default: every request);
      faults are injected there only, so a token fetch is not mistaken for the delivery.
    - ``error_cases``: the platform's replies and the class each must be mapped to (``ErrorCase``).
    - ``standard_error_cases``: also check ``STANDARD_DESTINATION_ERRORS`` (default ``True``).
    """

    kit_name = "destination conformance"
    adapter_factory: ClassVar[Callable[[httpx.AsyncBaseTransport], Any]]
    receiver_factory: ClassVar[Callable[[], Receiver]]
    samples: ClassVar[Sequence[Envelope]] = ()
    decode_native: ClassVar[Callable[[Any], Any] | None] = None
    target_request: ClassVar[RequestMatcher] = staticmethod(every_request)
    error_cases: ClassVar[Sequence[ErrorCase]] = ()
    standard_error_cases: ClassVar[bool] = True

    # -- plumbing ---------------------------------------------------------------------------------------
    def _samples(self) -> list[Envelope]:
        samples = list(self._hook("samples"))
        assert samples, f"{type(self).__name__}.samples is empty: give at least one canonical envelope."
        return samples

    def _adapter(self, transport: httpx.AsyncBaseTransport) -> Any:
        return self._hook("adapter_factory")(transport)

    def _receiver(self) -> Receiver:
        return self._hook("receiver_factory")()

    def _key(self, adapter: Any, envelope: Envelope) -> str:
        return idempotency_key(getattr(adapter, "name", "destination"), envelope)

    def _capabilities(self, adapter: Any) -> Any:
        return type(adapter).capabilities

    async def _redeliver(self, adapter: Any, envelope: Envelope, key: str) -> DeliveryReceipt:
        """A later attempt exactly as the relay makes it: status query first unless the receiver is idempotent."""
        caps = self._capabilities(adapter)
        if caps.status_query and not caps.idempotent_receiver:
            held = await adapter.query_status(envelope, key)
            if held is not None:
                return held
        return await adapter.deliver(envelope, key)

    def _all_error_cases(self) -> list[ErrorCase]:
        cases = list(self._hook("error_cases", required=False) or ())
        if self._hook("standard_error_cases", required=False):
            cases = list(STANDARD_DESTINATION_ERRORS) + cases
        return cases

    # -- 1. round trip ------------------------------------------------------------------------------------
    def test_round_trip(self) -> None:
        """canonical → native → canonical gives back the sample: nothing dropped or bent on the way out."""
        decode_native = self._hook("decode_native", required=False)
        if decode_native is None:
            pytest.skip("no inverse codec declared: set decode_native to check canonical → native → canonical")
        adapter = self._adapter(CannedReplyTransport(None, every_request, _unused))
        problems: list[str] = []
        try:
            for i, env in enumerate(self._samples()):
                label = f"sample {i} ({env.type} {env.business_key} r{env.revision})"
                native = adapter.encode(env)
                if adapter.encode(env) != native:
                    problems.append(f"{label}: encode is not deterministic — two calls gave different bodies")
                try:
                    json.dumps(native, ensure_ascii=False)
                except (TypeError, ValueError) as exc:
                    problems.append(f"{label}: encode returned a body that is not JSON-serialisable ({exc})")
                    continue
                try:
                    back = decode_native(native)
                except Exception as exc:
                    problems.append(f"{label}: decode_native could not read encode's output: {describe_exception(exc)}")
                    continue
                if isinstance(back, Envelope):
                    changed = diff_paths(env.data, back.data)
                    if back.type != env.type or back.revision != env.revision:
                        changed.append("type/revision")
                elif isinstance(back, BaseModel):
                    changed = diff_paths(env.data, back.model_dump(mode="json"))
                else:
                    changed = diff_paths(env.data, back)
                if changed:
                    problems.append(f"{label}: changed at {', '.join(changed)}")
        finally:
            run(close(adapter))
        assert not problems, (
            "Round trip canonical → native → canonical does not give back the sample.\n  "
            + "\n  ".join(problems)
            + "\nFix encode (a field is dropped or altered on the way out) or decode_native (it must be "
            "encode's exact inverse). A gap in the platform's contract belongs in a sample-free known issue."
        )

    # -- 2. canonical validation --------------------------------------------------------------------------
    def test_samples_are_canonical(self) -> None:
        """Every sample re-validates as an Envelope, its payload validates, and the adapter accepts its type."""
        adapter = self._adapter(CannedReplyTransport(None, every_request, _unused))
        declared = tuple(self._capabilities(adapter).event_types)
        run(close(adapter))
        problems: list[str] = []
        for i, env in enumerate(self._samples()):
            if not isinstance(env, Envelope):
                problems.append(f"sample {i} is a {type(env).__name__}, not an Envelope (use Envelope.wrap)")
                continue
            try:
                again = Envelope.model_validate(env.model_dump(mode="json"))
                env.payload()
            except ValidationError as exc:
                problems.append(f"sample {i}: {describe_validation_error(exc)}")
                continue
            if again != env:
                problems.append(f"sample {i}: does not survive a JSON round trip of the envelope")
            if declared and env.type not in declared:
                problems.append(f"sample {i}: type {env.type} is not in capabilities.event_types {declared}")
        assert not problems, (
            "Samples are not valid canonical messages:\n  " + "\n  ".join(problems)
            + "\nBuild samples with Envelope.wrap(payload, ...) and list every type the adapter takes in "
            "capabilities.event_types."
        )

    # -- 3. same fact twice -------------------------------------------------------------------------------
    def test_same_fact_twice_is_one_effect(self) -> None:
        """Delivering one fact twice with the same key leaves one record at the receiver."""
        run(self._same_fact_twice())

    async def _same_fact_twice(self) -> None:
        for i, env in enumerate(self._samples()):
            receiver = self._receiver()
            adapter = self._adapter(receiver.transport)
            try:
                caps = self._capabilities(adapter)
                if not (caps.idempotent_receiver or caps.status_query):
                    pytest.skip("declares neither idempotent_receiver nor status_query: the relay never resends")
                key = self._key(adapter, env)
                first = await _attempt(adapter.deliver(env, key), f"sample {i}: first delivery")
                second = await _attempt(self._redeliver(adapter, env, key), f"sample {i}: second delivery, same key")
                for n, receipt in ((1, first), (2, second)):
                    assert isinstance(receipt, DeliveryReceipt), (
                        f"sample {i}: delivery {n} returned {type(receipt).__name__}; deliver must return a "
                        "DeliveryReceipt or raise one of adapters.errors."
                    )
                report = await counts(receiver)
            finally:
                await close(adapter)
            _assert_one_effect(report, f"sample {i} delivered twice with the same idempotency key")

    # -- 4. crash between send and acknowledgement --------------------------------------------------------
    def test_lost_reply_is_outcome_unknown_and_no_duplicate(self) -> None:
        """The receiver applies the request but the reply is lost: OutcomeUnknownError, then no duplicate."""
        run(self._lost_reply())

    async def _lost_reply(self) -> None:
        target = self._hook("target_request", required=False) or every_request
        for i, env in enumerate(self._samples()):
            receiver = self._receiver()
            dropping = DropAfterApplyTransport(receiver.transport, target)
            adapter = self._adapter(dropping)
            try:
                key = self._key(adapter, env)
                caps = self._capabilities(adapter)
                try:
                    got: Any = await adapter.deliver(env, key)
                except Exception as exc:
                    got = exc
                assert dropping.dropped, (
                    f"sample {i}: the kit dropped no reply — target_request matched none of the adapter's "
                    "requests. Set target_request to select the request that carries the record."
                )
                _assert_outcome_unknown(got, i)
                applied = await counts(receiver)
                assert applied.get("accepted") == 1, (
                    f"sample {i}: the receiver did not hold the record after the first (dropped) attempt "
                    f"(accepted={applied.get('accepted')}); the sample must be one the receiver accepts."
                )
                if not (caps.idempotent_receiver or caps.status_query):
                    return  # the relay marks it uncertain and never resends: nothing more to check
                if caps.status_query:
                    held = await _attempt(
                        adapter.query_status(env, key), f"sample {i}: status query after a lost reply"
                    )
                    assert isinstance(held, DeliveryReceipt), (
                        f"sample {i}: query_status answered {held!r} although the receiver holds the delivery. "
                        "Look the delivery up by the idempotency key you sent; answer a receipt when it is held, "
                        "None only when it is not."
                    )
                receipt = await _attempt(
                    self._redeliver(adapter, env, key), f"sample {i}: redelivery after a lost reply"
                )
                assert isinstance(receipt, DeliveryReceipt), f"sample {i}: redelivery returned {receipt!r}"
                report = await counts(receiver)
            finally:
                await close(adapter)
            _assert_one_effect(report, f"sample {i} redelivered after its reply was lost")

    # -- 5. error classification --------------------------------------------------------------------------
    def test_error_classification(self) -> None:
        """Each declared platform reply is mapped to its declared class of the taxonomy."""
        cases = self._all_error_cases()
        if not cases:
            pytest.skip("no error_cases declared: declare how the adapter classifies the platform's replies")
        problems = run(self._classify_all(cases))
        assert not problems, (
            "Platform replies are misclassified:\n  " + "\n  ".join(problems)
            + "\nFix the adapter's mapping of these replies to adapters.errors (or, if the declaration is "
            "wrong, the ErrorCase). The class decides what the relay does next."
        )

    async def _classify_all(self, cases: Sequence[ErrorCase]) -> list[str]:
        target = self._hook("target_request", required=False) or every_request
        env = self._samples()[0]
        problems: list[str] = []
        for case in cases:
            receiver = self._receiver()
            canned = CannedReplyTransport(receiver.transport, case.matches or target, case.response)
            adapter = self._adapter(canned)
            try:
                try:
                    got: Any = await adapter.deliver(env, self._key(adapter, env))
                except Exception as exc:
                    got = exc
            finally:
                await close(adapter)
            problem = judge(case, got, answered=canned.answered)
            if problem:
                problems.append(problem)
        return problems

    # -- 7. personal data in logs -------------------------------------------------------------------------
    def test_logs_carry_no_personal_data(self) -> None:
        """No 身份证号 or mobile number of the samples reaches a log call or an error reason unmasked."""
        samples = self._samples()
        adapter = self._adapter(CannedReplyTransport(None, every_request, _unused))
        natives = [_safe(lambda e=env: adapter.encode(e)) for env in samples]
        run(close(adapter))
        secrets = sorted(personal_values([env.data for env in samples], natives))
        if not secrets:
            pytest.skip("samples carry no 身份证号 or mobile number: add one so this check means something")
        reasons: list[str] = []
        with capture_all_logs() as logs:
            run(self._exercise(reasons))
        leaks = logs.leaks(secrets)
        leaks += [f"error reason of a {r}" for r in reasons if any(s in r for s in secrets)]
        assert not leaks, (
            "Personal data (身份证号 / mobile number) reached the logs or an error reason unmasked:\n  "
            + "\n  ".join(leaks)
            + "\nLog ids, keys and reasons, never payload values; pass any platform text that may echo "
            "values through adapters.masking.mask_text before logging it or putting it in an error."
        )

    async def _exercise(self, reasons: list[str]) -> None:
        """Run the scenarios of checks 3-5 with every outcome swallowed: only the logs matter here."""
        target = self._hook("target_request", required=False) or every_request
        for env in self._samples():
            for make in (
                lambda r: r.transport,
                lambda r: DropAfterApplyTransport(r.transport, target),
                *[(lambda r, c=c: CannedReplyTransport(r.transport, c.matches or target, c.response))
                  for c in self._all_error_cases()],
            ):
                receiver = self._receiver()
                adapter = self._adapter(make(receiver))
                key = self._key(adapter, env)
                try:
                    for attempt in (adapter.deliver(env, key), self._redeliver(adapter, env, key)):
                        try:
                            await attempt
                        except AdapterError as exc:
                            reasons.append(f"{type(exc).__name__}: {exc.reason}")
                        except Exception as exc:
                            reasons.append(f"{type(exc).__name__}: {exc}")
                finally:
                    await close(adapter)


# -- helpers ------------------------------------------------------------------------------------------------
def _unused(request: httpx.Request) -> httpx.Response:
    raise AssertionError("this check sends nothing; the adapter made a request from encode()")


def _safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:
        return None


async def _attempt(awaitable: Any, what: str) -> Any:
    try:
        return await awaitable
    except AdapterError as exc:
        raise AssertionError(
            f"{what} raised {describe_exception(exc)}. A healthy receiver that already holds this delivery "
            "must be answered with a receipt: send the same idempotency key and treat the receiver's replay "
            "answer as success."
        ) from exc
    except Exception as exc:
        raise AssertionError(
            f"{what} let a bare {describe_exception(exc)} escape. Catch transport and parsing errors and "
            "raise RetryableError, PermanentError or OutcomeUnknownError."
        ) from exc


def _assert_outcome_unknown(got: Any, i: int) -> None:
    if isinstance(got, OutcomeUnknownError):
        return
    if isinstance(got, DeliveryReceipt):
        raise AssertionError(
            f"sample {i}: deliver returned a receipt although the reply was lost. Never report success "
            "without the receiver's answer; raise OutcomeUnknownError."
        )
    if isinstance(got, AdapterError):
        raise AssertionError(
            f"sample {i}: after the receiver applied the request and the connection dropped, deliver raised "
            f"{describe_exception(got)}, so {CONSEQUENCE.get(type(got), 'the relay misjudges it')}. "
            "The request may have been applied: raise OutcomeUnknownError "
            "(adapters.errors.classify_transport_error does this for httpx errors)."
        )
    raise AssertionError(
        f"sample {i}: after a dropped connection deliver let a bare exception escape "
        f"({describe_exception(got)}). Catch httpx.HTTPError (and OSError) and raise "
        "adapters.errors.classify_transport_error(exc)."
    )


def _assert_one_effect(report: Any, what: str) -> None:
    accepted, duplicates = report.get("accepted"), report.get("duplicate_creations")
    assert duplicates == 0 and accepted == 1, (
        f"{what}: the receiver holds accepted={accepted}, duplicate_creations={duplicates}; expected 1 and 0. "
        "Send the idempotency key given to deliver() unchanged on every attempt (e.g. as requestId) — never "
        "a fresh one per attempt — and answer a replay as success; or do not declare idempotent_receiver."
    )


def judge(case: ErrorCase, got: Any, *, answered: int) -> str | None:
    """The failure text for one error case, or ``None`` when the adapter classified it as declared."""
    if not answered:
        return (f"{case.name}: the canned reply was never served (the matcher selected no request); "
                "fix target_request or the case's matches")
    expected = case.expected.__name__
    why = f" ({case.why})" if case.why else ""
    if isinstance(got, case.expected):
        return None
    if isinstance(got, AdapterError):
        return (f"{case.name}: raised {describe_exception(got)}, declared {expected}{why} — as "
                f"{type(got).__name__} {CONSEQUENCE.get(type(got), '?')}, as {expected} "
                f"{CONSEQUENCE.get(case.expected, '?')}")
    if isinstance(got, BaseException):
        return (f"{case.name}: let a bare {describe_exception(got)} escape, declared {expected}{why}; "
                "catch it and raise one of adapters.errors")
    return f"{case.name}: returned {type(got).__name__} (success), declared {expected}{why}"
