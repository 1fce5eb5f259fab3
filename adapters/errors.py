"""The error taxonomy every adapter speaks: what the relay should do next, not what went wrong.

- ``RetryableError``: the receiver did not apply the request (5xx before processing, connection refused,
  rate limited). Sending again later is safe.
- ``PermanentError``: the receiver refused the content (validation or business error). Sending the same
  thing again will fail the same way; the delivery goes to ``dead`` for an operator.
- ``OutcomeUnknownError``: the request may have been applied (timeout after sending, connection dropped
  before the answer, unreadable reply). A resend is safe only when the receiver honours the idempotency
  key, or after a status query says the receiver does not hold it.
- ``DecodeError``: native input that cannot become a canonical message; it is stored as rejected with
  this reason, never dropped.

A business error hidden inside an HTTP 200 body is classified by what it means, not by the status line.
"""

from __future__ import annotations

import httpx

__all__ = [
    "AdapterError",
    "DecodeError",
    "OutcomeUnknownError",
    "PermanentError",
    "RetryableError",
    "classify_transport_error",
]


class AdapterError(Exception):
    """Base of the taxonomy. ``code`` is the platform's own error code when it gave one."""

    def __init__(self, reason: str, *, code: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retry_after_s = retry_after_s

    @property
    def kind(self) -> str:
        """Short name of the class of error, as stored on a delivery attempt."""
        return _KINDS.get(type(self), "error")


class RetryableError(AdapterError):
    """Not applied by the receiver; safe to send again later."""


class PermanentError(AdapterError):
    """Refused for its content; sending it again cannot succeed."""


class OutcomeUnknownError(AdapterError):
    """May have been applied; resend only if the receiver is idempotent or a status query says no."""


class DecodeError(AdapterError):
    """Native input that cannot be turned into a canonical message."""


_KINDS: dict[type[AdapterError], str] = {
    RetryableError: "retryable",
    PermanentError: "permanent",
    OutcomeUnknownError: "outcome_unknown",
    DecodeError: "decode",
}


def classify_transport_error(exc: httpx.HTTPError) -> AdapterError:
    """Map an httpx transport failure to the taxonomy by whether the request could have arrived.

    A failure to connect (or to get a pooled connection) means nothing was sent. Anything after the
    request started to leave — a read timeout, a dropped connection, a half-written body — may have
    been applied by the receiver.
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return RetryableError(f"cannot connect: {type(exc).__name__}: {exc}")
    # Everything else (read/write timeouts, dropped connections, a reply that cannot be decoded) happened
    # after the request began to leave: assume the receiver may have applied it.
    return OutcomeUnknownError(f"no usable reply: {type(exc).__name__}: {exc}")
