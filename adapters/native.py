"""Small conversions every Chinese platform's native format needs.

Platforms write times without a zone (they mean Beijing time), dates as ``yyyy-MM-dd`` and leave optional
fields as ``""`` or ``null`` interchangeably. The canonical model wants aware datetimes and ``None``; doing
the conversion in one place means every adapter reads a naive ``2026-11-20 16:40:02`` the same way.

The helpers raise ``ValueError`` with a short reason; the calling codec turns that into a ``DecodeError``
that names its native field (only the codec knows the field name).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

__all__ = ["SHANGHAI", "blank_to_none", "platform_date", "platform_datetime"]


def _shanghai() -> tzinfo:
    """Asia/Shanghai from the tz database; a fixed +08:00 where no tz data is installed.

    China has kept +08:00 without daylight saving since 1991, so the fallback only differs for
    historical summer times no approval record carries.
    """
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Shanghai")
    except Exception:  # ZoneInfoNotFoundError, or no tz data on a slim image
        return timezone(timedelta(hours=8), "Asia/Shanghai")


SHANGHAI: tzinfo = _shanghai()

# A date *and* a time of day: a bare date where a time belongs is a fault, not midnight.
_DATETIME_RE = re.compile(
    r"^\d{4}[-/]\d{2}[-/]\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$",
    re.ASCII,
)


def blank_to_none(value: Any) -> Any:
    """``None``, ``""`` and whitespace-only strings become ``None``; anything else is returned as is."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def platform_datetime(text: str) -> datetime:
    """Parse a platform time into an aware Asia/Shanghai datetime.

    Naive times (``2026-11-20 16:40:02``, the usual form) are Beijing time. Zoned ISO-8601 times, which
    newer interfaces send, are converted to Asia/Shanghai so one instant always hashes the same way.
    """
    text = text.strip()
    if not _DATETIME_RE.match(text):
        raise ValueError("is not a time (yyyy-MM-dd HH:mm:ss)")
    try:
        parsed = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise ValueError("is not a time (yyyy-MM-dd HH:mm:ss)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(SHANGHAI)


def platform_date(text: str) -> date:
    """Parse a platform date: ``yyyy-MM-dd``; ``yyyy/MM/dd`` and a trailing ``00:00:00`` are tolerated."""
    text = text.strip().replace("/", "-")
    head = text.split(" ", 1)[0].split("T", 1)[0]
    try:
        return date.fromisoformat(head)
    except ValueError:
        raise ValueError("is not a date (yyyy-MM-dd)") from None
