"""The relay loop: lease due deliveries, attempt them through their destination adapter, record outcomes.

Per destination it keeps at most ``concurrency`` attempts in flight and consults a circuit breaker
before leasing. Each attempt's outcome is decided here from the adapter's error taxonomy and the
destination's capabilities — the only place that knows the retry policy:

- success → ``delivered``; permanent error → ``dead``;
- retryable error → ``retry_wait`` with tenacity's exponential backoff and jitter, ``dead`` once the
  retry budget is spent;
- unknown outcome → resend only if the receiver honours the idempotency key; else ask its status
  first if it can answer; else ``uncertain`` for an operator. Never a blind resend.

Attempts of a destination are made by ``concurrency`` worker tasks that each take the next leased
delivery as soon as their previous attempt ends — the shape of a plain client loop, which is also what
keeps requests from piling into the HTTP connection pool at the same instant (which
``adapters.http.ExclusiveConnectionPool`` also makes harmless). Outcomes are queued and
written in groups (one commit for many attempts), each guarded by the lease it was made under. For
receivers that honour the idempotency key, leases are taken ahead in the same spirit: up to
``RESERVE_FACTOR × concurrency`` deliveries beyond those in flight, refilled when half of them have
started, so that one lease transaction serves several attempts and the workers ride out the store being
busy with something else (see ``_single_round``). Recovery of leases left by a previous
process must finish before ``run`` starts.

A destination whose adapter takes batches (``capabilities.max_batch_size > 1``) is leased up to
``batch_size`` records at a time; a batch is sent when full or when its first record has waited
``batch_max_age_s``, and its concurrency counts batches. The adapter answers per record, and each
record's outcome follows the same rules as a single attempt: accepted → ``delivered``, refused for its
content → ``dead`` with the receiver's reason (never resent), the rest of the batch unaffected. A failure
of the whole batch applies to every record in it: retried (each within its own budget) or, when the
outcome is unknown and the receiver answers status queries, settled by one batched status query before
anything is sent again — so a record the receiver has already judged is never submitted twice. Delivered
records are terminal and can never be part of a later batch. The outcomes of one batch are written in one
``complete`` call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import structlog
import tenacity

from adapters import (
    AdapterError,
    BatchDestinationAdapter,
    BatchResult,
    DeliveryReceipt,
    DestinationAdapter,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
)
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.config import DestinationConfig
from gateway.store.base import DeliveryState, LeasedDelivery, Outcome, Store, StoreUnavailableError
from schemas import Classification, Envelope

__all__ = ["Destination", "Relay", "RelayObserver"]

log = structlog.get_logger("shenguan.relay")

#: Deliveries leased ahead of the workers, per unit of ``concurrency`` (see ``Relay._single_round``).
RESERVE_FACTOR = 4


@dataclass
class Destination:
    """A configured destination: its adapter, policy and live state (in-flight count, breaker)."""

    name: str
    adapter: DestinationAdapter
    config: DestinationConfig
    breaker: CircuitBreaker = field(init=False)
    inflight: int = 0  # attempts in flight; batches, for a batching destination
    forming: list[LeasedDelivery] = field(default_factory=list)  # leased, waiting for their batch to fill
    forming_since: float | None = None  # when the first record of the forming batch was leased
    ready: deque[LeasedDelivery] = field(default_factory=deque)  # leased, waiting for a worker
    has_ready: asyncio.Event = field(default_factory=asyncio.Event)  # wakes idle workers

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
    def batch_size(self) -> int:
        """Records per attempt: 1, or for a batch adapter the configured size capped at the adapter's maximum."""
        cap = self.adapter.capabilities.max_batch_size
        if cap <= 1 or not isinstance(self.adapter, BatchDestinationAdapter):
            return 1
        return min(self.config.batch_size or cap, cap)

    @property
    def batching(self) -> bool:
        return self.batch_size > 1

    def batch_due(self, now: float) -> bool:
        """The forming batch is full, or its first record has waited ``batch_max_age_s``."""
        if not self.forming or self.forming_since is None:
            return False
        return len(self.forming) >= self.batch_size or now - self.forming_since >= self.config.batch_max_age_s

    @property
    def recovery_policy(self) -> str:
        """What a lease left mid-attempt by a dead process becomes: resend, verify first, or uncertain."""
        caps = self.adapter.capabilities
        if caps.status_query and self.batching:
            return "verify"  # one status query settles a whole interrupted batch without resubmitting it
        if caps.idempotent_receiver:
            return "resend"
        return "verify" if caps.status_query else "uncertain"


class RelayObserver(Protocol):
    """Told about every attempt's outcome and every breaker opening (metrics, alerts). Called on the event
    loop, so it must be quick and must not block; an observer that raises is logged, never fatal."""

    def on_outcome(self, destination: str, delivery: LeasedDelivery, outcome: Outcome) -> None: ...

    def on_breaker_open(self, destination: str) -> None: ...


class Relay:
    #: How often to look for leases that expired in other instances (dead or hung) and take them over.
    takeover_s = 2.0
    _next_takeover = 0.0
    _store_backoff = 0.25

    def __init__(
        self,
        store: Store,
        destinations: Mapping[str, Destination],
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        idle_s: float = 0.25,
        commit_batch: int = 256,
        commit_linger_s: float = 0.05,
        observers: Sequence[RelayObserver] = (),
    ) -> None:
        self._store = store
        self._dests = dict(destinations)
        self._owner = owner
        self._clock = clock
        self._idle_s = idle_s
        self._commit_batch = commit_batch
        self._commit_linger_s = commit_linger_s
        self._wake = asyncio.Event()
        # Each outcome with whether it may wait for company (see ``_commit_loop``).
        self._outcomes: asyncio.Queue[tuple[Outcome, bool]] = asyncio.Queue()
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
        count = await self._store.recover(owner=self._owner, **self._policies())
        if count:
            log.warning("relay.recovered_leases", count=count)
        self._recovered = True
        return count

    def _policies(self) -> dict[str, list[str]]:
        """Destinations whose interrupted attempts need a status query first, and those that go uncertain."""
        by_policy: dict[str, list[str]] = {"verify": [], "uncertain": [], "resend": []}
        for name, dest in self._dests.items():
            by_policy[dest.recovery_policy].append(name)
        return {"verify": by_policy["verify"], "uncertain": by_policy["uncertain"]}

    async def _take_over_expired(self) -> None:
        """Every ``takeover_s``: release expired leases of other instances, under the recovery rules.

        With several instances on one store, one that dies leaves leases behind; once they expire, any
        live relay returns them to work (or to ``uncertain``) exactly as a restart would have.
        """
        now = self._clock()
        if now < self._next_takeover:
            return
        self._next_takeover = now + self.takeover_s
        try:
            count = await self._store.take_over_expired(owner=self._owner, **self._policies())
        except Exception:  # the next round tries again; leasing itself does not depend on this
            log.exception("relay.takeover_failed")
            return
        if count:
            log.warning("relay.took_over_leases", count=count)

    async def run(self) -> None:
        """Lease and attempt until ``stop``; then drain in-flight attempts and their outcomes."""
        if not self._recovered:
            raise RuntimeError("recover() must finish before the relay runs")
        committer = asyncio.create_task(self._commit_loop(), name="relay-commit")
        for dest in self._dests.values():
            if not dest.batching:
                for i in range(dest.config.concurrency):
                    self._track(asyncio.create_task(self._worker(dest), name=f"relay-{dest.name}-{i}"))
        try:
            while not self._stopping:
                await self._take_over_expired()
                try:
                    started = await self._lease_round()
                except StoreUnavailableError as exc:
                    # Nothing was leased; attempts in flight go on and their outcomes wait in the queue.
                    log.warning("relay.store_unavailable", error=str(exc), retry_in_s=self._store_backoff)
                    await asyncio.sleep(self._store_backoff)
                    self._store_backoff = min(self._store_backoff * 2, 5.0)
                    continue
                self._store_backoff = self._idle_s
                if not started:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait_s())
        finally:
            self._flush_batches()  # a graceful stop sends what was leased rather than leaving it in flight
            for dest in self._dests.values():
                dest.has_ready.set()  # workers send what is reserved, as the breaker allows, then end
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
            if dest.batching:
                started += await self._batch_round(dest)
            else:
                started += await self._single_round(dest)
        return started

    async def _single_round(self, dest: Destination) -> int:
        """Keep the destination's workers supplied; returns how many deliveries were leased.

        Why a reserve: every lease is a transaction, and with ``synchronous=FULL`` every transaction is an
        fsync on the store's single writer. Leasing one delivery per freed slot made leases about half of
        all transactions and left attempts waiting behind them; and a lease also waits behind whatever that
        writer is doing — an ingest page of 100–200 messages holds it for 20–40 ms, during which a small
        reserve ran dry and the workers idled (docs/benchmarks.md). So, while the breaker is closed, a lease
        takes the free slots plus a reserve of up to ``RESERVE_FACTOR × concurrency`` more, and the next
        lease waits until half the reserve has started.

        Only for receivers that honour the idempotency key (recovery policy ``resend``): a reserved
        delivery is in flight as far as the store knows, so a crash before it was sent brings it back as
        pending — harmless for them, but a status query or an operator's decision (``uncertain``) for the
        others, who therefore lease per free slot. Reserved deliveries start only as the breaker allows
        (the half-open probe included); one left leased at a stop is recovered like any in-flight lease.
        """
        concurrency = dest.config.concurrency
        free = concurrency - dest.inflight
        want = 0
        if dest.recovery_policy == "resend" and dest.breaker.state == BreakerState.closed:
            reserve = RESERVE_FACTOR * concurrency
            if len(dest.ready) <= reserve // 2:
                want = free + reserve - len(dest.ready)
        elif not dest.ready:
            want = dest.breaker.allowance(free)
        leased: list[LeasedDelivery] = []
        if want > 0:
            leased = await self._store.lease_due(
                owner=self._owner, destination=dest.name, limit=want, lease_s=dest.config.lease_s
            )
            dest.ready.extend(leased)
        if dest.ready and dest.breaker.allowance(1) > 0:
            dest.has_ready.set()
        return len(leased)

    def _take_ready(self, dest: Destination) -> LeasedDelivery | None:
        """The next leased delivery, if there is one and the breaker lets an attempt start."""
        if not dest.ready or dest.breaker.allowance(1) <= 0:
            return None
        row = dest.ready.popleft()
        dest.inflight += 1
        dest.breaker.record_started()
        return row

    async def _worker(self, dest: Destination) -> None:
        """One of the destination's ``concurrency`` attempt loops; at a stop it ends once nothing it may
        send is left (the reserve is sent as the breaker allows; what it holds back stays leased)."""
        while True:
            row = self._take_ready(dest)
            if row is None:
                if self._stopping:
                    return
                dest.has_ready.clear()
                self._wake.set()  # the leasing loop refills the reserve or, failing that, polls
                await dest.has_ready.wait()
                continue
            if len(dest.ready) <= RESERVE_FACTOR * dest.config.concurrency // 2:
                self._wake.set()
            await self._attempt(dest, row)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            dest.inflight -= 1  # the worker that made the attempt asks for more when it needs to
        outcome = _with_start(outcome, started_at)
        self._notify("on_outcome", dest.name, row, outcome)
        await self._outcomes.put((outcome, dest.recovery_policy == "resend"))

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
        self._breaker_after(dest, exc)
        return self._failure_outcome(dest, row, exc, verify=verify)

    def _breaker_after(self, dest: Destination, exc: AdapterError) -> None:
        """One failed attempt (a single delivery or a whole batch) as the breaker sees it."""
        if isinstance(exc, PermanentError):
            dest.breaker.record_success()  # the receiver answered; it just refused this content
        elif dest.breaker.record_failure():
            log.warning("relay.breaker_open", destination=dest.name, cooldown_s=dest.config.breaker_cooldown_s)
            self._notify("on_breaker_open", dest.name)

    def _failure_outcome(
        self, dest: Destination, row: LeasedDelivery, exc: AdapterError, *, verify: bool = False
    ) -> Outcome:
        """What a failure means for one delivery under the retry policy; the breaker is the caller's business."""
        reason = exc.reason[:2000]
        if isinstance(exc, PermanentError):
            log.warning("relay.dead", destination=dest.name, delivery=row.id, reason=reason)
            return Outcome(row.id, DeliveryState.dead, error=reason, error_kind=exc.kind)
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

    # -- batches -----------------------------------------------------------------------------------------
    async def _batch_round(self, dest: Destination) -> int:
        """Lease into the destination's forming batch and send it once it is due; returns how many were leased.

        Records are leased only while a batch slot is free and the breaker allows an attempt, so a leased
        record waits at most ``batch_max_age_s`` (well inside ``lease_s``) before it is sent.
        """
        leased: list[LeasedDelivery] = []
        room = dest.batch_size - len(dest.forming)
        if room > 0 and dest.inflight < dest.config.concurrency and dest.breaker.allowance(1) > 0:
            leased = await self._store.lease_due(
                owner=self._owner, destination=dest.name, limit=room, lease_s=dest.config.lease_s
            )
            if leased and not dest.forming:
                dest.forming_since = self._clock()
            dest.forming.extend(leased)
        if dest.batch_due(self._clock()):
            self._start_batch(dest)
        return len(leased)

    def _start_batch(self, dest: Destination) -> None:
        rows, dest.forming, dest.forming_since = dest.forming, [], None
        dest.inflight += 1
        dest.breaker.record_started()
        task = asyncio.create_task(self._attempt_batch(dest, rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _flush_batches(self) -> None:
        for dest in self._dests.values():
            if dest.forming:
                self._start_batch(dest)

    def _idle_wait_s(self) -> float:
        """How long to sleep when nothing was leased: until woken, the idle poll, or a forming batch comes of age."""
        wait = self._idle_s
        now = self._clock()
        for dest in self._dests.values():
            if dest.forming_since is not None:
                wait = min(wait, max(0.0, dest.forming_since + dest.config.batch_max_age_s - now))
        return wait

    async def _attempt_batch(self, dest: Destination, rows: list[LeasedDelivery]) -> None:
        started_at = self._clock()
        try:
            outcomes = await self._decide_batch(dest, rows)
        except Exception as exc:  # a bug in the adapter or here: the batch may have left
            log.exception("relay.batch_crashed", destination=dest.name, deliveries=len(rows))
            crash = OutcomeUnknownError(f"batch attempt crashed: {type(exc).__name__}: {exc}")
            self._breaker_after(dest, crash)
            verify = dest.adapter.capabilities.status_query
            outcomes = [self._failure_outcome(dest, row, crash, verify=verify) for row in rows]
        finally:
            dest.inflight -= 1
            self._wake.set()
        outcomes = [_with_start(outcome, started_at) for outcome in outcomes]
        for row, outcome in zip(rows, outcomes, strict=True):
            self._notify("on_outcome", dest.name, row, outcome)
        await self._write(outcomes)  # the whole batch's outcomes in one transaction
        self._wake.set()

    async def _decide_batch(self, dest: Destination, rows: list[LeasedDelivery]) -> list[Outcome]:
        """Per-record outcomes of one batch attempt, in the order of ``rows``."""
        adapter = cast(BatchDestinationAdapter, dest.adapter)
        caps = adapter.capabilities
        outcomes: dict[int, Outcome] = {}
        todo: list[tuple[LeasedDelivery, Envelope]] = []
        for row in rows:
            env = row.envelope()
            if env.classification == Classification.secret:  # defence in depth, as in _decide
                outcomes[row.id] = Outcome(
                    row.id, DeliveryState.paper_pending, error="secret message: paper only", error_kind="policy"
                )
            else:
                todo.append((row, env))
        verify = [(row, env) for row, env in todo if row.verify_first] if caps.status_query else []
        if verify:
            outcomes.update(await self._verify_batch(dest, adapter, verify))
            todo = [(row, env) for row, env in todo if row.id not in outcomes]
        if todo:
            try:
                results = await adapter.deliver_batch([(env, row.idempotency_key) for row, env in todo])
                if len(results) != len(todo):
                    raise OutcomeUnknownError(f"adapter answered {len(results)} results for {len(todo)} records")
            except AdapterError as exc:
                self._breaker_after(dest, exc)
                # Unknown outcome: ask before sending again, where the receiver can be asked.
                verify_next = isinstance(exc, OutcomeUnknownError) and caps.status_query
                for row, _ in todo:
                    outcomes[row.id] = self._failure_outcome(dest, row, exc, verify=verify_next)
            else:
                dest.breaker.record_success()
                for (row, _), result in zip(todo, results, strict=True):
                    outcomes[row.id] = self._record_outcome(dest, row, result)
        return [outcomes[row.id] for row in rows]

    async def _verify_batch(
        self, dest: Destination, adapter: BatchDestinationAdapter, items: list[tuple[LeasedDelivery, Envelope]]
    ) -> dict[int, Outcome]:
        """Settle records whose last outcome was unknown: those the receiver judged get their verdict now."""
        try:
            answers = await adapter.query_status_batch([(env, row.idempotency_key) for row, env in items])
            if len(answers) != len(items):
                raise RetryableError(f"status query answered {len(answers)} of {len(items)} records")
        except AdapterError as exc:
            failure = RetryableError(f"status query failed: {exc.reason}", code=exc.code)
            self._breaker_after(dest, failure)
            return {row.id: self._failure_outcome(dest, row, failure, verify=True) for row, _ in items}
        settled = {}
        for (row, _), answer in zip(items, answers, strict=True):
            if answer is not None:  # the receiver has judged it: take that verdict, send nothing
                settled[row.id] = self._record_outcome(dest, row, answer)
        return settled

    def _record_outcome(self, dest: Destination, row: LeasedDelivery, result: BatchResult) -> Outcome:
        """One record's result within a batch the receiver answered."""
        if isinstance(result, DeliveryReceipt):
            if result.replayed:
                log.info("relay.replayed", destination=dest.name, delivery=row.id, key=row.idempotency_key)
            return Outcome(row.id, DeliveryState.delivered, remote_id=result.remote_id)
        if not isinstance(result, AdapterError):
            result = OutcomeUnknownError(f"adapter gave {type(result).__name__} for a record, not a result")
        verify = isinstance(result, OutcomeUnknownError) and dest.adapter.capabilities.status_query
        return self._failure_outcome(dest, row, result, verify=verify)

    async def _commit_loop(self) -> None:
        """Write outcomes in groups: whatever is queued, after lingering up to ``commit_linger_s`` for more.

        Why linger: each write is one transaction — an fsync, a hop to the store's thread or a few round trips
        to PostgreSQL — and without it the groups averaged two outcomes; with three instances sharing the
        work, each instance's groups are a third as large again (docs/benchmarks.md). Waiting costs no
        throughput, because a slot is freed when its attempt ends, not when its outcome is written; it only
        moves ``delivered_at`` by at most the linger. Nothing is acknowledged on the strength of an unwritten
        outcome: a crash meanwhile leaves the lease, recovered by the usual rules — which resend to a receiver
        that honours the idempotency key, harmlessly. For any other receiver a recovered lease means a status
        query or an operator's decision, so an outcome of theirs is written at once, with whatever is queued.
        A stop writes at once too.
        """
        loop = asyncio.get_running_loop()
        while True:
            outcome, may_wait = await self._outcomes.get()
            batch, urgent = [outcome], not may_wait
            deadline = loop.time() + self._commit_linger_s
            while len(batch) < self._commit_batch:
                if not self._outcomes.empty():
                    outcome, may_wait = self._outcomes.get_nowait()
                    batch.append(outcome)
                    urgent |= not may_wait
                    continue
                if urgent or self._stopping or loop.time() >= deadline:
                    break
                try:
                    async with asyncio.timeout_at(deadline):
                        outcome, may_wait = await self._outcomes.get()
                except TimeoutError:
                    break
                batch.append(outcome)
                urgent |= not may_wait
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
