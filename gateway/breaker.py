"""A circuit breaker per destination.

When a destination keeps failing, hammering it only burns every delivery's retry budget at once. After
``failures`` consecutive failures the breaker opens: the relay stops leasing for that destination for
``cooldown_s``. Then it is half-open: one probe attempt is let through; success closes it, failure
opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.closed
        if self._clock() - self._opened_at < self.cooldown_s:
            return BreakerState.open
        return BreakerState.half_open

    def allowance(self, wanted: int) -> int:
        """How many attempts may start now, out of ``wanted`` (half-open: a single probe)."""
        state = self.state
        if state == BreakerState.closed:
            return wanted
        if state == BreakerState.open or self._probing:
            return 0
        return min(1, wanted)

    def record_started(self) -> None:
        """An attempt started; in half-open state it is the probe, and no other may start."""
        if self.state == BreakerState.half_open:
            self._probing = True

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> bool:
        """Count a failure; returns True when it opened a closed breaker (a probe failing re-opens a
        breaker that was already open in spirit, so that is not an opening worth an alert)."""
        was_closed = self._opened_at is None
        self._consecutive += 1
        if self._probing or self._consecutive >= self.failures:
            self._opened_at = self._clock()
        self._probing = False
        return was_closed and self._opened_at is not None
