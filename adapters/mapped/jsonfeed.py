"""An HTTP JSON feed as a source: ``GET`` a page after a cursor, find the records and the next cursor by path.

Many specialty systems (a 市场监管 licence system, a 不动产 registry) publish their decisions as a paged JSON
list. The mapping's ``[source]`` (``JsonSource``) says where the list is in the reply, how the cursor is
passed and advanced, and where a business status hides inside an HTTP 200; this module does the HTTP.

A poll only reads, so nothing can have been applied by a failed one: every failure that may heal by itself
(network trouble, 5xx/408/429, an unreadable or incomplete reply, a status listed as ``retryable``) is a
``RetryableError``; another HTTP status or business status is a ``PermanentError`` (an operator must act).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from adapters.base import PollPage, RawRecord
from adapters.errors import AdapterError, PermanentError, RetryableError, classify_transport_error
from adapters.http import async_client, retry_after_s
from adapters.mapped.spec import JsonSource
from adapters.masking import mask_text

__all__ = ["MISSING", "JsonFeed", "get_path"]

log = structlog.get_logger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429})
MISSING = object()


def get_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.items``; a leading ``$.`` is allowed), or ``MISSING``."""
    current = document
    for part in path.removeprefix("$.").removeprefix("$").split("."):
        if not part:
            continue
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


class JsonFeed:
    """One ``httpx.AsyncClient`` per feed, reused for every poll."""

    def __init__(
        self,
        name: str,
        spec: JsonSource,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self._client = async_client(
            base_url=base_url, headers=dict(headers or {}), timeout_s=timeout_s, transport=transport
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        spec = self.spec
        params: dict[str, Any] = dict(spec.params)
        if spec.limit_param is not None:
            params[spec.limit_param] = limit
        if cursor is not None:
            params[spec.cursor_param] = cursor
        try:
            response = await self._client.get(spec.path.lstrip("/"), params=params)
        except httpx.HTTPError as exc:
            # A read cannot have changed anything, so even an unknown outcome is simply retryable.
            raise self._failed(cursor, RetryableError(classify_transport_error(exc).reason)) from exc
        except OSError as exc:  # raw socket error from a custom transport
            raise self._failed(cursor, RetryableError(f"no reply: {type(exc).__name__}: {exc}")) from exc
        try:
            page = self._page(response, cursor, limit)
        except AdapterError as exc:
            raise self._failed(cursor, exc) from None
        log.debug(
            "jsonfeed.poll",
            source=self.name,
            cursor=cursor,
            records=len(page.records),
            next_cursor=page.next_cursor,
            has_more=page.has_more,
        )
        return page

    def _failed(self, cursor: str | None, exc: AdapterError) -> AdapterError:
        log.info(
            "jsonfeed.poll_failed", source=self.name, cursor=cursor, kind=exc.kind, code=exc.code, reason=exc.reason
        )
        return exc

    def _page(self, response: httpx.Response, cursor: str | None, limit: int) -> PollPage:
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise RetryableError(f"{self.name} HTTP {status}", code=str(status), retry_after_s=retry_after_s(response))
        if status != 200:
            raise PermanentError(f"{self.name} HTTP {status} (check base_url, path and credentials)", code=str(status))
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise RetryableError(f"{self.name} reply is not JSON") from None
        self._check_status(body)
        items = get_path(body, self.spec.records)
        if not isinstance(items, list):
            raise RetryableError(f"{self.name} reply lacks a list at {self.spec.records}")
        next_cursor = self._next_cursor(body, items, cursor)
        has_more = self._has_more(body, items, limit)
        at = cursor if cursor is not None else "start"
        records = [RawRecord(item, position=f"{at}+{i}") for i, item in enumerate(items)]
        return PollPage(records=records, next_cursor=next_cursor, has_more=has_more)

    def _check_status(self, body: Any) -> None:
        check = self.spec.status
        if check is None:
            return
        value = get_path(body, check.path)
        if value is MISSING or isinstance(value, dict | list):
            raise RetryableError(f"{self.name} reply has no status at {check.path}")
        if any(_same(value, ok) for ok in check.ok):
            return
        message = get_path(body, check.message) if check.message else None
        shown = mask_text(message[:200]) if isinstance(message, str) else ""
        code = str(value)
        if any(_same(value, r) for r in check.retryable):
            raise RetryableError(f"{self.name} status {code}: {shown}".rstrip(": "), code=code)
        raise PermanentError(f"{self.name} status {code}: {shown}".rstrip(": "), code=code)

    def _next_cursor(self, body: Any, items: list[Any], cursor: str | None) -> str | None:
        spec = self.spec
        if spec.next_cursor is not None:
            value = get_path(body, spec.next_cursor)
            value = None if value is MISSING else value
        else:
            assert spec.cursor_field is not None
            value = None
            for item in reversed(items):
                found = get_path(item, spec.cursor_field) if isinstance(item, Mapping) else MISSING
                if found is not MISSING and found not in (None, ""):
                    value = found
                    break
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is not None and not isinstance(value, str):
            raise RetryableError(f"{self.name} reply has a cursor that is not text or a whole number")
        if not value:
            if items:
                # Advancing to "nothing" would restart the feed; staying put would loop. Neither is safe.
                raise RetryableError(f"{self.name} reply has records but no next cursor")
            return cursor
        return value

    def _has_more(self, body: Any, items: list[Any], limit: int) -> bool:
        if self.spec.has_more is None:
            return len(items) >= limit
        return get_path(body, self.spec.has_more) is True


def _same(value: Any, expected: Any) -> bool:
    """Status codes arrive as numbers or strings: ``0`` and ``"0"`` are the same code."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return str(value) == str(expected)
