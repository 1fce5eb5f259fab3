"""``HlwjgEventsAdapter``: reads 互联网+监管's event feed, so the gateway learns which tasks were claimed (认领).

The feed (``GET api/v1/events?since=<position>&limit=<n>``) lists what happened on the platform in order:
``TASK_CREATED`` when an approval record opened a task, ``TASK_CLAIMED`` when a department claimed one (by
hand, or by the platform's own default claim), and what supervision did about it afterwards (inspections,
results, advice …). What this adapter makes of each:

- ``TASK_CLAIMED`` → a ``supervision.task.claimed`` envelope in the approval's loop (``correlation_id`` is the
  approval's 办件编号, as the approval source names it). It closes the task's claim deadline.
- ``TASK_CREATED`` → nothing, on purpose: the receipt of the approval's delivery already carries the
  ``taskNo`` and the moment the task was created, which is what starts the claim deadline. Reading it twice
  would only add a second source for the same fact (一数一源).
- the rest of the loop (``adapters.hlwjg.loop``): ``INSPECTION_REPORTED``, ``RESULT_REPORTED`` (and the
  ``credit.penalty.published`` of a penalised result), ``BREACH_REPORTED``, ``REVOCATION_ADVISED``,
  ``PREAPPROVAL_ANSWERED``, ``GUIDANCE_REQUESTED`` / ``GUIDANCE_ANSWERED``, ``SITE_INSPECTION_REPORTED`` — each
  in the loop of the approval it names.
- an unknown kind → ``DecodeError``: it is kept in the rejected store with its raw text and the reason, not
  dropped, until an event type exists for it.

Reading the feed changes nothing on the platform, so every failure to read a page is retryable except a
refusal of the request itself (a 4xx other than 401/408/429: wrong ``base_url`` or an invalid cursor), which
needs an operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx
import structlog

from adapters.base import Capabilities, Direction, PollPage, RawRecord
from adapters.errors import AdapterError, DecodeError, PermanentError, RetryableError
from adapters.hlwjg.auth import TOKEN_PATH, TokenCache, send_authorized
from adapters.hlwjg.claims import CLAIM_EVENT, CREATED_EVENT, to_envelope
from adapters.hlwjg.loop import KINDS, decode_event
from adapters.http import async_client, retry_after_s
from adapters.masking import mask_text
from adapters.options import base_url_option, positive_float_option, str_option
from schemas import Envelope

__all__ = ["EVENTS_PATH", "HlwjgEventsAdapter"]

log = structlog.get_logger(__name__)

EVENTS_PATH = "api/v1/events"
_OK = "0"
_RETRYABLE_STATUS = frozenset({401, 408, 425, 429})
_KNOWN = (CREATED_EVENT, CLAIM_EVENT, *KINDS)


class HlwjgEventsAdapter:
    """Source adapter for the ``hlwjg`` event feed; the cursor is the feed position (``since``)."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.source,
        event_types=("supervision.task.claimed", *sorted(set(KINDS.values())), "credit.penalty.published"),
    )

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._client = async_client(base_url=base_url, timeout_s=timeout_s, transport=transport)
        self._tokens = TokenCache(self._client, token_url=TOKEN_PATH, client_id=client_id, client_secret=client_secret)

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``base_url``, ``client_id``, ``client_secret``, optional ``timeout_s`` (default 10)."""
        adapter = f"hlwjg-events adapter {name!r}"
        return cls(
            name,
            base_url=base_url_option(options, adapter=adapter),
            client_id=str_option(options, "client_id", adapter=adapter),
            client_secret=str_option(options, "client_secret", adapter=adapter),
            timeout_s=positive_float_option(options, "timeout_s", 10.0, adapter=adapter),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        """The events after position ``cursor``; ``RetryableError`` / ``PermanentError`` when unreadable."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["since"] = cursor
        try:
            response = await send_authorized(self._client, self._tokens, "GET", EVENTS_PATH, params=params)
            page = self._page(response, cursor)
        except AdapterError as exc:
            # A read applies nothing: whatever the transport says, reading again is safe.
            failure = exc if isinstance(exc, PermanentError | RetryableError) else RetryableError(exc.reason)
            log.info(
                "hlwjg_events.poll_failed",
                adapter=self.name,
                cursor=cursor,
                kind=failure.kind,
                code=failure.code,
                reason=failure.reason,
            )
            raise failure from None
        log.debug("hlwjg_events.poll", adapter=self.name, cursor=cursor, records=len(page.records))
        return page

    def decode(self, record: RawRecord) -> list[Envelope]:
        """One feed event → its envelopes: none, one, or a result and its penalty (see the module docstring)."""
        item = record.payload
        kind = item.get("eventType") if isinstance(item, Mapping) else None
        try:
            if kind == CREATED_EVENT:
                return []
            if kind == CLAIM_EVENT:
                return [to_envelope(item, source=self.name)]
            if isinstance(kind, str) and kind in KINDS:
                return decode_event(kind, item, source=self.name)
            shown = repr(mask_text(kind[:32])) if isinstance(kind, str) else "missing"
            raise DecodeError(f"eventType {shown} is not supported (known: {', '.join(_KNOWN)})")
        except DecodeError as exc:
            log.info("hlwjg_events.decode_rejected", adapter=self.name, position=record.position, reason=exc.reason)
            raise

    def _page(self, response: httpx.Response, cursor: str | None) -> PollPage:
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise RetryableError(f"hlwjg events HTTP {status}", code=str(status), retry_after_s=retry_after_s(response))
        body = _json_object(response)
        if status != 200:
            code = str((body or {}).get("code") or status)
            message = mask_text(str((body or {}).get("message") or "")[:200])
            raise PermanentError(f"hlwjg events HTTP {status} {code}: {message} (check base_url)", code=code)
        if body is None:
            raise RetryableError("hlwjg events reply is not a JSON object")
        if str(body.get("code")) != _OK:
            raise RetryableError(f"hlwjg events reply code {mask_text(str(body.get('code'))[:32])}")
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise RetryableError("hlwjg events reply lacks data.events")
        events: list[Any] = data["events"]
        position = data.get("next")
        if isinstance(position, bool) or not isinstance(position, int | str) or not str(position).isdigit():
            raise RetryableError("hlwjg events reply has no numeric data.next")
        start = int(cursor) if cursor is not None and cursor.isdigit() else 0
        records = [RawRecord(item, position=str(start + i + 1)) for i, item in enumerate(events)]
        return PollPage(records=records, next_cursor=str(position), has_more=data.get("hasMore") is True)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
