"""``SourceConformance``: the checks every source adapter passes before the poller may use it.

Subclass it in a test module and set a few class attributes; pytest collects the inherited ``test_*``::

    from adapters.conformance import ErrorCase, SourceConformance, reply

    class TestMySourceConformance(SourceConformance):
        adapter_factory = staticmethod(lambda transport: MySource("my", base_url="http://mock", transport=transport))
        native_samples = [one_valid_native_record, another]   # dicts, with a 身份证号 and a mobile number
        encode_native = None                                  # optional inverse: Envelope -> native record
        registration_no_field = "APPLY_REGNO"                 # where a 工商注册号 goes, if the format has one
        error_cases = [ErrorCase("code 500 in HTTP 200", reply(200, json={"code": "500"}), RetryableError)]

The awkward-input check feeds ``adapters.conformance.corpus.standard_corpus`` of every native sample to
``decode``: each variant must become valid envelopes or a ``DecodeError``, never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import ValidationError

from adapters.base import RawRecord
from adapters.conformance.common import (
    ErrorCase,
    KitBase,
    RequestMatcher,
    capture_all_logs,
    close,
    describe_exception,
    diff_paths,
    every_request,
    personal_values,
    run,
    transport_error,
)
from adapters.conformance.corpus import CorpusCase, standard_corpus
from adapters.conformance.destination import judge
from adapters.conformance.transports import CannedReplyTransport
from adapters.errors import AdapterError, DecodeError, RetryableError
from schemas import Envelope, describe_validation_error

__all__ = ["STANDARD_SOURCE_ERRORS", "SourceConformance"]

STANDARD_SOURCE_ERRORS: tuple[ErrorCase, ...] = (
    ErrorCase("connection refused", transport_error(httpx.ConnectError), RetryableError,
              why="a poll that could not connect may simply be repeated"),
    ErrorCase("read timeout", transport_error(httpx.ReadTimeout), RetryableError,
              why="a poll only reads: whatever happened, reading again is safe"),
)
"""Failures whose meaning is the same for every polled HTTP source; checked unless ``standard_error_cases`` is off."""


class SourceConformance(KitBase):
    """Conformance checks of a source adapter. Set these class attributes in your subclass:

    - ``adapter_factory(transport) -> adapter``: build the adapter on the given ``httpx`` transport.
    - ``native_samples``: valid native records (dicts) exactly as the platform sends them; include a
      身份证号 and a mobile number so the log check has something to look for.
    - ``encode_native(envelope) -> native`` (optional): the inverse of ``decode``, for the round trip.
    - ``registration_no_field`` (optional): the native field of a 工商注册号, for the 17-zeros-X cases.
    - ``error_cases``: platform replies to a poll and the class each must be mapped to (``ErrorCase``).
    - ``target_request(request) -> bool``: which request is the poll (default: every request);
      ``upstream_factory() -> transport`` (optional) answers the others (e.g. a token endpoint).
    - ``standard_error_cases``: also check ``STANDARD_SOURCE_ERRORS`` (default ``True``).
    """

    kit_name = "source conformance"
    adapter_factory: ClassVar[Callable[[httpx.AsyncBaseTransport], Any]]
    native_samples: ClassVar[Sequence[Mapping[str, Any]]] = ()
    encode_native: ClassVar[Callable[[Envelope], Any] | None] = None
    registration_no_field: ClassVar[str | None] = None
    target_request: ClassVar[RequestMatcher] = staticmethod(every_request)
    upstream_factory: ClassVar[Callable[[], httpx.AsyncBaseTransport] | None] = None
    error_cases: ClassVar[Sequence[ErrorCase]] = ()
    standard_error_cases: ClassVar[bool] = True
    poll_limit: ClassVar[int] = 10

    # -- plumbing ---------------------------------------------------------------------------------------
    def _natives(self) -> list[Mapping[str, Any]]:
        natives = list(self._hook("native_samples"))
        assert natives, f"{type(self).__name__}.native_samples is empty: give at least one valid native record."
        return natives

    def _offline_adapter(self) -> Any:
        return self._hook("adapter_factory")(CannedReplyTransport(None, every_request, _no_network))

    def _corpus(self, native: Mapping[str, Any]) -> list[CorpusCase]:
        return standard_corpus(native, registration_no_field=self._hook("registration_no_field", required=False))

    def _decode_samples(self, adapter: Any) -> list[list[Envelope]]:
        decoded: list[list[Envelope]] = []
        for i, native in enumerate(self._natives()):
            try:
                envelopes = adapter.decode(RawRecord(native, position=f"sample {i}"))
            except Exception as exc:
                raise AssertionError(
                    f"native sample {i} does not decode: {describe_exception(exc)}. native_samples must be "
                    "valid records; if it is valid, fix decode."
                ) from exc
            assert isinstance(envelopes, list) and envelopes, (
                f"native sample {i}: decode returned {type(envelopes).__name__} "
                f"{'(empty)' if not envelopes else ''}; it must return a non-empty list of Envelope."
            )
            decoded.append(envelopes)
        return decoded

    # -- 1. round trip ------------------------------------------------------------------------------------
    def test_round_trip(self) -> None:
        """native → canonical → native gives back the sample (needs ``encode_native``)."""
        encode_native = self._hook("encode_native", required=False)
        if encode_native is None:
            pytest.skip("no inverse codec declared: set encode_native to check native → canonical → native")
        adapter = self._offline_adapter()
        try:
            decoded = self._decode_samples(adapter)
        finally:
            run(close(adapter))
        problems: list[str] = []
        for i, (native, envelopes) in enumerate(zip(self._natives(), decoded, strict=True)):
            try:
                back = encode_native(envelopes[0])
            except Exception as exc:
                problems.append(f"native sample {i}: encode_native failed: {describe_exception(exc)}")
                continue
            changed = diff_paths(dict(native), back)
            if changed:
                problems.append(f"native sample {i}: changed at {', '.join(changed)}")
        assert not problems, (
            "Round trip native → canonical → native does not give back the sample:\n  " + "\n  ".join(problems)
            + "\nFix decode (a native field is dropped or misread) or encode_native (it must be decode's "
            "inverse); samples must be in the platform's normal form."
        )

    def test_decode_is_deterministic(self) -> None:
        """The same native record decoded twice gives identical envelopes (ids, hashes): re-reads dedup."""
        adapter = self._offline_adapter()
        try:
            first, second = self._decode_samples(adapter), self._decode_samples(adapter)
        finally:
            run(close(adapter))
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            dump_a, dump_b = [e.model_dump(mode="json") for e in a], [e.model_dump(mode="json") for e in b]
            assert dump_a == dump_b, (
                f"native sample {i} decodes differently on a second read (at {', '.join(diff_paths(dump_a, dump_b))}). "
                "decode must be pure: no clock, no random ids — use Envelope.wrap, whose id is derived."
            )

    # -- 2. canonical validation --------------------------------------------------------------------------
    def test_samples_decode_to_canonical(self) -> None:
        """Every decoded sample re-validates as an Envelope of a declared type."""
        adapter = self._offline_adapter()
        try:
            decoded = self._decode_samples(adapter)
            declared = tuple(type(adapter).capabilities.event_types)
        finally:
            run(close(adapter))
        problems = [
            f"native sample {i}: {problem}"
            for i, envelopes in enumerate(decoded)
            for problem in _canonical_problems(envelopes, declared)
        ]
        assert not problems, (
            "Decoded samples are not valid canonical messages:\n  " + "\n  ".join(problems)
            + "\nBuild envelopes with Envelope.wrap(payload, ...) and list every type the adapter emits in "
            "capabilities.event_types."
        )

    # -- 6. awkward input ---------------------------------------------------------------------------------
    def test_awkward_inputs_decode_or_reject(self) -> None:
        """Every corpus variant becomes valid envelopes or a DecodeError — never another exception."""
        adapter = self._offline_adapter()
        problems: list[str] = []
        try:
            declared = tuple(type(adapter).capabilities.event_types)
            for i, native in enumerate(self._natives()):
                for case in self._corpus(native):
                    problem = _decode_problem(adapter, case, declared)
                    if problem:
                        problems.append(f"native sample {i}, {case.name}: {problem}")
        finally:
            run(close(adapter))
        shown = problems[:25]
        more = f"\n  … and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        assert not problems, (
            f"decode mishandles {len(problems)} awkward input(s):\n  " + "\n  ".join(shown) + more
            + "\nEvery bad native record must raise adapters.errors.DecodeError with a reason naming the "
            "field (never its value), so the poller stores it as rejected instead of crashing the page."
        )

    def test_blank_and_null_agree(self) -> None:
        """A field sent as ``""`` and as ``null`` means the same (both are how platforms write "absent")."""
        adapter = self._offline_adapter()
        problems: list[str] = []
        try:
            for i, native in enumerate(self._natives()):
                for key in native:
                    blank = _outcome(adapter, {**native, key: ""})
                    null = _outcome(adapter, {**native, key: None})
                    if blank != null:
                        detail = "different content" if blank[0] == null[0] else f"{blank[0]} vs {null[0]}"
                        problems.append(f"native sample {i}, field {key}: '' and null give {detail}")
        finally:
            run(close(adapter))
        assert not problems, (
            "'' and null decode differently:\n  " + "\n  ".join(problems)
            + "\nPlatforms send both for an absent value: treat them alike (adapters.native.blank_to_none)."
        )

    # -- 5. error classification --------------------------------------------------------------------------
    def test_error_classification(self) -> None:
        """Each declared platform reply to a poll is mapped to its declared class of the taxonomy."""
        cases = list(self._hook("error_cases", required=False) or ())
        if self._hook("standard_error_cases", required=False):
            cases = list(STANDARD_SOURCE_ERRORS) + cases
        if not cases:
            pytest.skip("no error_cases declared: declare how the adapter classifies the platform's replies")
        problems = run(self._classify_all(cases))
        assert not problems, (
            "Platform replies to a poll are misclassified:\n  " + "\n  ".join(problems)
            + "\nFix the adapter's mapping of these replies to adapters.errors (or, if the declaration is "
            "wrong, the ErrorCase). A poll changes nothing, so transient trouble must be RetryableError."
        )

    async def _classify_all(self, cases: Sequence[ErrorCase]) -> list[str]:
        target = self._hook("target_request", required=False) or every_request
        upstream = self._hook("upstream_factory", required=False)
        limit = self._hook("poll_limit", required=False) or 10
        problems: list[str] = []
        for case in cases:
            canned = CannedReplyTransport(upstream() if upstream else None, case.matches or target, case.response)
            adapter = self._hook("adapter_factory")(canned)
            try:
                try:
                    got: Any = await adapter.poll(None, limit)
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
        """No 身份证号 or mobile number of the samples reaches a log call or a DecodeError reason unmasked."""
        natives = self._natives()
        secrets = sorted(personal_values(natives))
        if not secrets:
            pytest.skip("native samples carry no 身份证号 or mobile number: add one so this check means something")
        reasons: list[str] = []
        with capture_all_logs() as logs:
            adapter = self._offline_adapter()
            try:
                for native in natives:
                    for case in [CorpusCase("sample", native), *self._corpus(native)]:
                        try:
                            adapter.decode(RawRecord(case.payload, position=case.name))
                        except AdapterError as exc:
                            reasons.append(f"DecodeError for {case.name}: {exc.reason}")
                        except Exception:
                            pass  # reported by test_awkward_inputs_decode_or_reject
            finally:
                run(close(adapter))
            try:
                self.test_error_classification()
            except (AssertionError, pytest.skip.Exception):
                pass  # reported by test_error_classification; here only the logs matter
        leaks = logs.leaks(secrets)
        leaks += [r.split(":", 1)[0] for r in reasons if any(s in r for s in secrets)]
        assert not leaks, (
            "Personal data (身份证号 / mobile number) reached the logs or a rejection reason unmasked:\n  "
            + "\n  ".join(leaks)
            + "\nRejection reasons are stored and logged: name the field, never echo its value (or mask it "
            "with adapters.masking.mask_text). Log ids and positions, not payloads."
        )


# -- helpers ------------------------------------------------------------------------------------------------
def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError("decode made a network request; it must be pure")


def _canonical_problems(envelopes: Any, declared: tuple[str, ...]) -> list[str]:
    if not isinstance(envelopes, list):
        return [f"decode returned {type(envelopes).__name__}, not a list of Envelope"]
    problems: list[str] = []
    for env in envelopes:
        if not isinstance(env, Envelope):
            problems.append(f"decode returned a {type(env).__name__} among its envelopes")
            continue
        try:
            again = Envelope.model_validate(json.loads(env.model_dump_json()))
            env.payload()
        except ValidationError as exc:
            problems.append(f"envelope does not re-validate: {describe_validation_error(exc)}")
            continue
        if again != env:
            problems.append("envelope does not survive a JSON round trip")
        if declared and env.type not in declared:
            problems.append(f"type {env.type} is not in capabilities.event_types {declared}")
    return problems


def _decode_problem(adapter: Any, case: CorpusCase, declared: tuple[str, ...]) -> str | None:
    try:
        envelopes = adapter.decode(RawRecord(case.payload, position=case.name))
    except DecodeError:
        return None
    except RecursionError:
        return "RecursionError escaped decode (catch it with the parse error and raise DecodeError)"
    except Exception as exc:
        return f"{describe_exception(exc)} escaped decode; raise DecodeError naming the field instead"
    problems = _canonical_problems(envelopes, declared)
    if isinstance(envelopes, list) and not envelopes:
        problems.append("decode returned no envelope and no DecodeError (a record must not vanish silently)")
    return "; ".join(problems) or None


def _outcome(adapter: Any, payload: Any) -> tuple[str, Any]:
    try:
        envelopes = adapter.decode(RawRecord(payload))
    except DecodeError:
        return ("DecodeError", None)
    except Exception as exc:
        return (type(exc).__name__, None)
    try:
        return ("envelopes", [e.content_hash for e in envelopes])
    except AttributeError:
        return ("not envelopes", None)
