"""The relay loop: lease due deliveries, attempt them through their destination adapter, record outcomes.

Per destination it keeps at most ``concurrency`` attempts in flight and consults a circuit breaker
before leasing. Each attempt's outcome is decided here from the adapter's error taxonomy and the
destination's capabilities — the only place that knows the retry policy:

- success → ``delivered``; permanent error → ``dead``;
- retryable error → ``retry_wait`` with tenacity's exponential backoff and jitter, ``dead`` once the
  retry budget is spent;
- unknown outcome → resend only if the receiver honours the idempotency key; else ask its status
  first if it can answer; else ``uncertain`` for an operator. Never a blind resend.

Outcomes are queued and written in groups (one commit for many attempts), each guarded by the lease
it was made under. Recovery of leases left by a previous process must finish before ``run`` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog
import tenacity

from adapters import (
    AdapterError,
    DestinationAdapter,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
)
from gateway.breaker import CircuitBreaker
from gateway.config import DestinationConfig
from gateway.store.base import DeliveryState, LeasedDelivery, Outcome, Store
from schemas import Classification

__all__ = ["Destination", "Relay", "RelayObserver"]

log = structlog.get_logger("shenguan.relay")


@dataclass
class Destination:
    """A configured destination: its adapter, policy and live state (in-flight count, breaker)."""

    name: str
    adapter: DestinationAdapter
    config: DestinationConfig
    breaker: CircuitBreaker = field(init=False)
    inflight: int = 0

    def __post_init__(self) -> None:
        self.breaker = CircuitBreaker(self.config.breaker_failures, self.config.breaker_cooldown_s)
        self._wait = tenacity.wait_exponential_jitter(
            multiplier=self.config.backoff_initial_s, max=self.config.backoff_max_s, jitter=self.config.backoff_jitter_s
        )

    def backoff_s(self, attempt: int) -> float:
        """Delay before the next attempt, after ``attempt`` attempts (tenacity's strategy)."""
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(self._wait(state))

    @property
    def recovery_policy(self) -> str:
        """What a lease left mid-attempt by a dead process becomes: resend, verify first, or uncertain."""
        caps = self.adapter.capabilities
        if caps.idempotent_receiver:
            return "resend"
        return "verify" if caps.status_query else "uncertain"


class RelayObserver(Protocol):
    """Told about every attempt's outcome and every breaker opening (metrics, alerts). Called on the event
    loop, so it must be quick and must not block; an observer that raises is logged, never fatal."""

    def on_outcome(self, destination: str, delivery: LeasedDelivery, outcome: Outcome) -> None: ...

    def on_breaker_open(self, destination: str) -> None: ...


class Relay:
    def __init__(
        self,
        store: Store,
        destinations: Mapping[str, Destination],
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        idle_s: float = 0.25,
        commit_batch: int = 256,
        observers: Sequence[RelayObserver] = (),
    ) -> None:
        self._store = store
        self._dests = dict(destinations)
        self._owner = owner
        self._clock = clock
        self._idle_s = idle_s
        self._commit_batch = commit_batch
        self._wake = asyncio.Event()
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._recovered = False
        self._observers = tuple(observers)

    @property
    def destinations(self) -> Mapping[str, Destination]:
        return self._dests

    def wake(self) -> None:
        """New work may be due (messages ingested, a slot freed)."""
        self._wake.set()

    async def recover(self) -> int:
        """Release leases a previous process left in flight, per destination policy."""
        by_policy: dict[str, list[str]] = {"verify": [], "uncertain": [], "resend": []}
        for name, dest in self._dests.items():
            by_policy[dest.recovery_policy].append(name)
        count = await self._store.recover(
            owner=self._owner, verify=by_policy["verify"], uncertain=by_policy["uncertain"]
        )
        if count:
            log.warning("relay.recovered_leases", count=count)
        self._recovered = True
        return count

    async def run(self) -> None:
        """Lease and attempt until ``stop``; then drain in-flight attempts and their outcomes."""
        if not self._recovered:
            raise RuntimeError("recover() must finish before the relay runs")
        committer = asyncio.create_task(self._commit_loop(), name="relay-commit")
        try:
            while not self._stopping:
                started = await self._lease_round()
                if not started:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_s)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._outcomes.join()
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def abort(self) -> None:
        """Cancel in-flight attempts (their leases stay, recovered at the next start)."""
        for task in list(self._tasks):
            task.cancel()

    async def _lease_round(self) -> int:
        started = 0
        for dest in self._dests.values():
            free = dest.breaker.allowance(dest.config.concurrency - dest.inflight)
            if free <= 0:
                continue
            leased = await self._store.lease_due(
                owner=self._owner, destination=dest.name, limit=free, lease_s=dest.config.lease_s
            )
            for row in leased:
                dest.inflight += 1
                dest.breaker.record_started()
                task = asyncio.create_task(self._attempt(dest, row))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            started += len(leased)
        return started

    async def _attempt(self, dest: Destination, row: LeasedDelivery) -> None:
        started_at = self._clock()
        try:
            outcome = await self._decide(dest, row)
        except Exception as exc:  # a bug in the adapter or here: the request may have left
            log.exception("relay.attempt_crashed", destination=dest.name, delivery=row.id)
            outcome = self._after_failure(
                dest, row, OutcomeUnknownError(f"attempt crashed: {type(exc).__name__}: {exc}")
            )
        finally:
            dest.inflight -= 1
            self._wake.set()
        outcome = _with_start(outcome, started_at)
        self._notify("on_outcome", dest.name, row, outcome)
        await self._outcomes.put(outcome)

    def _notify(self, event: str, *args: object) -> None:
        for observer in self._observers:
            try:
                getattr(observer, event)(*args)
            except Exception:  # metrics or alerting must never stop a delivery
                log.exception("relay.observer_failed", observer=type(observer).__name__, event=event)

    async def _decide(self, dest: Destination, row: LeasedDelivery) -> Outcome:
        env = row.envelope()
        if env.classification == Classification.secret:
            # Defence in depth: routing sends secret messages to paper, but should one ever be
            # leased for a network destination it must not be handed to the adapter.
            return Outcome(row.id, DeliveryState.paper_pending, error="secret message: paper only", error_kind="policy")
        caps = dest.adapter.capabilities
        if row.verify_first and caps.status_query:
            try:
                receipt = await dest.adapter.query_status(env, row.idempotency_key)
            except AdapterError as exc:
                return self._after_failure(dest, row, RetryableError(f"status query failed: {exc.reason}"), verify=True)
            if receipt is not None:
                dest.breaker.record_success()
                return Outcome(row.id, DeliveryState.delivered, remote_id=receipt.remote_id)
        try:
            receipt = await dest.adapter.deliver(env, row.idempotency_key)
        except AdapterError as exc:
            return self._after_failure(dest, row, exc)
        dest.breaker.record_success()
        if receipt.replayed:
            log.info("relay.replayed", destination=dest.name, delivery=row.id, key=row.idempotency_key)
        return Outcome(row.id, DeliveryState.delivered, remote_id=receipt.remote_id)

    def _after_failure(
        self, dest: Destination, row: LeasedDelivery, exc: AdapterError, *, verify: bool = False
    ) -> Outcome:
        reason = exc.reason[:2000]
        if isinstance(exc, PermanentError):
            dest.breaker.record_success()  # the receiver answered; it just refused this content
            log.warning("relay.dead", destination=dest.name, delivery=row.id, reason=reason)
            return Outcome(row.id, DeliveryState.dead, error=reason, error_kind=exc.kind)
        if dest.breaker.record_failure():
            log.warning("relay.breaker_open", destination=dest.name, cooldown_s=dest.config.breaker_cooldown_s)
            self._notify("on_breaker_open", dest.name)
        caps = dest.adapter.capabilities
        if isinstance(exc, OutcomeUnknownError) and not caps.idempotent_receiver:
            if not caps.status_query:
                log.warning("relay.uncertain", destination=dest.name, delivery=row.id, reason=reason)
                return Outcome(row.id, DeliveryState.uncertain, error=reason, error_kind=exc.kind)
            verify = True
        if row.attempts >= dest.config.max_attempts:
            if dest.config.paper_fallback:
                # 线上为主、线下为辅: the electronic channel has had its chance; an operator prints it.
                log.warning("relay.paper_fallback", destination=dest.name, delivery=row.id, attempts=row.attempts)
                return Outcome(
                    row.id,
                    DeliveryState.paper_pending,
                    error=f"retry budget of {dest.config.max_attempts} attempts spent, queued for paper; "
                    f"last error: {reason}",
                    error_kind=exc.kind,
                    verify_first=verify,
                )
            log.warning("relay.dead", destination=dest.name, delivery=row.id, attempts=row.attempts, reason=reason)
            return Outcome(
                row.id,
                DeliveryState.dead,
                error=f"retry budget of {dest.config.max_attempts} attempts spent; last error: {reason}",
                error_kind=exc.kind,
                verify_first=verify,
            )
        delay = max(dest.backoff_s(row.attempts), exc.retry_after_s or 0.0)
        return Outcome(
            row.id,
            DeliveryState.retry_wait,
            error=reason,
            error_kind=exc.kind,
            next_attempt_at=self._clock() + delay,
            verify_first=verify,
        )

    async def _commit_loop(self) -> None:
        while True:
            first = await self._outcomes.get()
            batch = [first]
            while len(batch) < self._commit_batch and not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._outcomes.task_done()
            self._wake.set()

    async def _write(self, batch: list[Outcome]) -> None:
        delay = 0.1
        while True:
            try:
                await self._store.complete(self._owner, batch)
                return
            except Exception:
                # Outcomes are only in memory until written: keep trying. If the process dies meanwhile,
                # the leases are recovered at the next start and the receivers' idempotency holds.
                log.exception("relay.commit_failed", outcomes=len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _with_start(outcome: Outcome, started_at: float) -> Outcome:
    return replace(outcome, started_at=started_at)
