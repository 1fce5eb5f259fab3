"""What both kit families share: declared error cases, the receiver handle, log capture, small helpers.

Why a separate module: the destination and source checks differ in what they drive (``deliver`` vs.
``decode``/``poll``) but agree on how a platform reply is canned, how an adapter's verdict is judged and
how its logs are searched for personal data. Keeping those here keeps each family's file about its checks.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog

from adapters.errors import AdapterError, DecodeError, OutcomeUnknownError, PermanentError, RetryableError
from adapters.masking import mask_text

__all__ = [
    "ErrorCase",
    "Receiver",
    "ReplyFactory",
    "RequestMatcher",
    "every_request",
    "personal_values",
    "reply",
    "transport_error",
]

T = TypeVar("T")

RequestMatcher = Callable[[httpx.Request], bool]
"""Selects the request(s) a check interferes with, e.g. the record POST but not the token fetch."""

ReplyFactory = Callable[[httpx.Request], httpx.Response]
"""Builds the canned reply to one request (or raises an ``httpx`` transport error to simulate one)."""


def every_request(_request: httpx.Request) -> bool:
    """The default matcher: every request the adapter sends is the one the check is about."""
    return True


def reply(
    status: int,
    *,
    json: Any = None,
    content: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ReplyFactory:
    """A canned platform reply, built afresh for each request (a response object cannot be sent twice)."""

    def build(request: httpx.Request) -> httpx.Response:
        if json is not None:
            return httpx.Response(status, json=json, headers=headers, request=request)
        return httpx.Response(status, content=content or b"", headers=headers, request=request)

    return build


def transport_error(
    kind: type[httpx.TransportError], message: str = "simulated by the conformance kit"
) -> ReplyFactory:
    """A transport failure instead of a reply, e.g. ``httpx.ConnectError`` (nothing sent) or ``ReadTimeout``."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise kind(message, request=request)

    return fail


@dataclass(frozen=True, slots=True)
class ErrorCase:
    """A platform reply and the class the adapter must map it to — the adapter's declared classification.

    ``response`` is a ``reply(...)``/``transport_error(...)`` factory or any ``httpx.Request → Response``
    callable; it answers every request ``matches`` selects (default: the kit class's ``target_request``).
    ``expected`` is ``RetryableError``, ``PermanentError`` or ``OutcomeUnknownError`` (sources:
    ``RetryableError`` or ``PermanentError``). Business errors inside an HTTP 200 belong here too.
    """

    name: str
    response: ReplyFactory
    expected: type[AdapterError]
    matches: RequestMatcher | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class Receiver:
    """A fresh fake of the platform: the transport an adapter talks to, and a way to count its effects.

    ``inspect()`` returns (or resolves to) a mapping with at least ``accepted`` (distinct facts held) and
    ``duplicate_creations`` (a second record created for a fact already held) — the mocks'
    ``/_mock/records`` report has exactly these keys.
    """

    transport: httpx.AsyncBaseTransport
    inspect: Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
    extra: dict[str, Any] = field(default_factory=dict)


async def counts(receiver: Receiver) -> Mapping[str, Any]:
    """The receiver's report, whether ``inspect`` is sync or async."""
    result = receiver.inspect()
    if inspect.isawaitable(result):
        result = await result
    return result


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one check's coroutine on its own event loop.

    The checks are plain (sync) test methods so that the kit works whether or not the author's project
    uses pytest-asyncio, and so that each check starts from fresh adapters, clients and loops.
    """
    return asyncio.run(coro)


async def close(adapter: Any) -> None:
    """``aclose`` the adapter, ignoring a failure to close: the check's verdict is about what came before."""
    try:
        await adapter.aclose()
    except Exception:
        pass


def kind_name(exc: BaseException) -> str:
    """How a verdict is named in failure messages."""
    return type(exc).__name__


TAXONOMY: tuple[type[AdapterError], ...] = (RetryableError, PermanentError, OutcomeUnknownError, DecodeError)

CONSEQUENCE: dict[type[AdapterError], str] = {
    RetryableError: "the relay resends it later",
    PermanentError: "the relay gives up and parks the delivery for an operator (dead)",
    OutcomeUnknownError: "the relay resends only with the same key or after a status query",
    DecodeError: "the record is stored as rejected with the reason",
}


# -- personal data -------------------------------------------------------------------------------------
_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE_CANDIDATE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def personal_values(*values: Any) -> set[str]:
    """Every 身份证号 and mobile number inside ``values`` (nested dicts and lists), as raw substrings.

    A value counts as personal when the gateway's own masking would change it, so the kit and the
    log pipeline agree on what must never appear unmasked.
    """
    found: set[str] = set()
    for text in (s for v in values for s in _strings(v)):
        for pattern in (_ID_CANDIDATE, _MOBILE_CANDIDATE):
            found.update(m for m in pattern.findall(text) if mask_text(m) != m)
    return found


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:
            self.lines.append(f"{record.msg!r} {record.args!r}")


@dataclass(slots=True)
class CapturedLogs:
    """structlog event dicts and stdlib log lines emitted while a block ran."""

    events: list[Mapping[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def leaks(self, secrets: Sequence[str]) -> list[str]:
        """Descriptions of the log entries in which a raw personal value appears (values not repeated)."""
        found: list[str] = []
        for event in self.events:
            text = json.dumps(event, ensure_ascii=False, default=repr)
            hits = sum(1 for s in secrets if s in text)
            if hits:
                keys = [k for k, v in event.items() if any(s in json.dumps(v, ensure_ascii=False, default=repr)
                                                           for s in secrets)]
                found.append(f"structlog event {event.get('event')!r} (keys {', '.join(map(str, keys))})")
        for line in self.lines:
            if any(s in line for s in secrets):
                found.append(f"stdlib log line starting {mask_text(line[:60])!r}")
        return found


@contextmanager
def capture_all_logs() -> Iterator[CapturedLogs]:
    """Capture structlog (``structlog.testing.capture_logs``, before any processor) and stdlib logging.

    Capturing *before* the masking processor is the point: the kit checks that the adapter never hands a
    raw personal value to the logger at all, so a later change of processors cannot leak it.
    """
    captured = CapturedLogs()
    handler = _ListHandler()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with structlog.testing.capture_logs() as events:
            captured.events = events  # filled live, so a check may inspect it before the block ends
            yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        captured.lines.extend(handler.lines)


# -- configuration hooks and messages --------------------------------------------------------------------
_MISSING = object()


class KitBase:
    """Shared plumbing of the kit classes: reading the author's class attributes however they were written.

    Authors may assign hooks as ``staticmethod(lambda ...)`` or as bare functions/lambdas; a bare function
    stored on a class would otherwise become a bound method and receive the test instance as its first
    argument, a confusing failure for a few lines of configuration.
    """

    kit_name: str = "conformance"

    def _hook(self, name: str, *, required: bool = True) -> Any:
        for klass in type(self).__mro__:
            if name in klass.__dict__:
                value = klass.__dict__[name]
                if isinstance(value, staticmethod):
                    return value.__func__
                if isinstance(value, classmethod):
                    return value.__get__(None, type(self))
                if value is None and required:
                    break
                return value
        if required:
            raise AssertionError(
                f"{type(self).__name__} does not set `{name}`: the {self.kit_name} kit needs it "
                f"(see the {type(self).__mro__[1].__name__} docstring)."
            )
        return None


def describe_exception(exc: BaseException) -> str:
    """``Type: reason`` with personal data masked — failure messages end up in CI logs."""
    return f"{type(exc).__name__}: {mask_text(str(exc))[:300]}"


def diff_paths(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ (values themselves are not reported)."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{where} (dropped)")
            elif key not in expected:
                out.append(f"{where} (added)")
            else:
                out.extend(diff_paths(expected[key], actual[key], where))
        return out
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple) and len(expected) == len(actual):
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in diff_paths(e, a, f"{path}[{i}]")]
    return [] if expected == actual else [path or "(whole value)"]
