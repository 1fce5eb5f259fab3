"""HTTP conventions shared by the REST adapters."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

__all__ = ["retry_after_s"]


def retry_after_s(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """The receiver's ``Retry-After`` in seconds (delta-seconds or HTTP-date), ``None`` when absent or odd.

    Honouring it lets a rate-limited receiver set the pace instead of our backoff guessing.
    """
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
