"""What a peer gateway's answer to ``POST /ingest/{source}`` means for each envelope that was sent.

The receiving side is ``gateway/ingest.py``: it stores every record (accepted or rejected) before it
answers, and names per record its message id and dedup verdict, or why it was rejected. So:

- 200 / 422 (some records rejected): one result per envelope. ``new`` and ``revision`` are delivered;
  ``duplicate`` (the peer already holds this content) and ``stale`` (it holds a newer revision) are
  delivered too — the receiver is idempotent by construction, a resend is its normal case. A rejection
  is a ``PermanentError`` with the peer's reason: it stored the record as rejected and would again.
  A receipt carries no ``remote_id``: that names the supervision platform's task (``taskNo``) to the
  deadline tracker, and a hand-over to the next gateway opens no task.
- 401 ``stale_timestamp`` / ``replayed_nonce``: retryable, the next attempt is signed afresh; any other
  401, 403 (credentials of another source), 404 (no such push source), 400 and 415: permanent, with the
  peer's reason — the configuration must change. 413: the body is over the peer's ``ingest_max_bytes``
  (``TooLarge``: the adapter splits a batch; a single envelope that large is permanent).
- 408 / 425 / 429 / 503 (the peer is starting or stopping): refused before storing, retryable.
- Any other 5xx: the peer may have committed before it failed — ``OutcomeUnknownError``, which the relay
  resends because the receiver is idempotent. A 200 that cannot be read is the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from adapters.base import BatchResult, DeliveryReceipt
from adapters.errors import AdapterError, OutcomeUnknownError, PermanentError, RetryableError
from adapters.http import retry_after_s
from adapters.masking import mask_text
from schemas import Envelope

__all__ = ["TooLarge", "request_error", "results"]

_SIGN_AGAIN = frozenset({"stale_timestamp", "replayed_nonce"})
_BUSY = frozenset({408, 425, 429, 503})
_DELIVERED = frozenset({"new", "revision"})
_ALREADY_HELD = frozenset({"duplicate", "stale"})


class TooLarge(PermanentError):
    """413: the body is over the peer's ``ingest_max_bytes``; a batch can be split, a single envelope cannot."""


def results(response: httpx.Response, envelopes: Sequence[Envelope]) -> list[BatchResult]:
    """One result per envelope sent, in order; raises the request's error when the answer is not per record."""
    if response.status_code not in (200, 422):
        raise request_error(response)
    body = _json_object(response)
    messages = body.get("messages") if body is not None else None
    rejections = body.get("rejections") if body is not None else None
    if not isinstance(messages, list) or not isinstance(rejections, list):
        raise OutcomeUnknownError(
            f"peer HTTP {response.status_code} without a readable ingest answer; it may hold the records",
            code=str(response.status_code),
        )
    found: dict[int, BatchResult] = {}
    for item in messages:
        index = _index(item, len(envelopes))
        if index is not None:
            found[index] = _verdict(item, envelopes[index])
    for item in rejections:
        index = _index(item, len(envelopes))
        reason = _text(item.get("reason")) if isinstance(item, Mapping) else ""
        refused = PermanentError(f"peer rejected it: {reason or 'no reason given'}", code="rejected")
        if isinstance(item, Mapping) and item.get("index") is None:
            return [refused] * len(envelopes)  # the body as a whole was refused (and stored as rejected)
        if index is not None:
            found[index] = refused
    unanswered = OutcomeUnknownError("peer's answer says nothing about this record; it may hold it")
    return [found.get(i, unanswered) for i in range(len(envelopes))]


def request_error(response: httpx.Response) -> AdapterError:
    """The error of a request the peer refused or failed as a whole (any status but 200 and 422)."""
    status = response.status_code
    body = _json_object(response) or {}
    error, detail = _text(body.get("error")), _text(body.get("detail"))
    said = f"peer HTTP {status}{f' {error}' if error else ''}{f': {detail}' if detail else ''}"
    code = error or str(status)
    if status == 401:
        if error in _SIGN_AGAIN:
            return RetryableError(f"{said} (the next attempt is signed afresh)", code=code)
        return PermanentError(f"{said} (check the credentials this gateway pushes with)", code=code)
    if status == 413:
        return TooLarge(f"{said} (the peer's ingest_max_bytes is smaller than this body)", code=code)
    if status in _BUSY:
        return RetryableError(said, code=code, retry_after_s=retry_after_s(response))
    if status >= 500:
        return OutcomeUnknownError(f"{said}; it may have stored the records before failing", code=code)
    if 300 <= status < 400:
        return PermanentError(f"{said} (a redirect: check base_url)", code=code)
    return PermanentError(said, code=code)


def _verdict(item: Mapping[str, Any], envelope: Envelope) -> BatchResult:
    message_id, verdict = item.get("message_id"), item.get("verdict")
    if message_id != envelope.id:
        return PermanentError(
            f"peer stored it under another message id: its push source does not preserve ids (is it adapter "
            f"'shenguan'?); verdict {_text(verdict)}",
            code="id_mismatch",
        )
    # No remote_id: a peer is not the supervision platform, and the deadline tracker reads a remote id as the
    # platform's taskNo (a task exists, its claim period starts). The peer holds the message under its own id.
    detail = {"verdict": verdict, "message_id": message_id}
    if verdict in _DELIVERED:
        return DeliveryReceipt(replayed=False, detail=detail)
    if verdict in _ALREADY_HELD:
        original = item.get("original_message_id")
        held = original if isinstance(original, str) and original else envelope.id
        return DeliveryReceipt(replayed=True, detail=detail | {"original_message_id": held})
    return OutcomeUnknownError(f"peer answered an unknown verdict {_text(verdict)!r}")


def _index(item: Any, count: int) -> int | None:
    if not isinstance(item, Mapping):
        return None
    index = item.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        return None
    return index


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _text(value: Any, limit: int = 300) -> str:
    """A peer-supplied string as it may be stored and logged: masked and short."""
    return mask_text(value[:limit]) if isinstance(value, str) else ""
