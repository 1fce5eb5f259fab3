"""Small statistics shared by the legs: percentiles in milliseconds, rounded for a table."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile_ms"]


def percentile_ms(seconds: Sequence[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of durations given in seconds, in ms; ``None`` when empty.

    Nearest rank rather than interpolation: p99 of 1,000 samples is the 990th smallest, a latency that
    really happened.
    """
    if not seconds:
        return None
    ordered = sorted(seconds)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)
