"""The intake process: a gateway's pollers and deadline tracker (``gateway.intake``) in a child of ``shenguan serve``.

Why a process: CPython runs one thread of Python at a time. In one process, decoding and storing a page of
approvals (pydantic, checksums, hashes, the ledger) or following the audit chain for deadlines holds the
interpreter lock while the relay's requests wait; with a backlog arriving, the relay delivered at under half
the rate it reaches alone (docs/benchmarks.md). In a child, the intake has the other core.

What crosses between the two is small, on purpose:

- parent → child, once, pickled on the child's stdin: the ``Config`` and the instance id. The child opens
  the same store itself — SQLite: a second connection to the WAL file (the one-process lock stays with the
  parent, which keeps every other ``shenguan serve`` out); PostgreSQL: a pool of its own.
- child → parent, JSON lines on a pipe: ``started``; ``ingested`` per stored page (counts for the metrics,
  and a wake-up for the relay); ``progress`` (each source's caught-up state, for ``idle`` and readiness);
  ``deadlines`` (at risk by kind after each tick, for ``/metrics``); ``wake`` (default claims recorded or
  held messages routed); ``failed`` with the reason; ``stopped``. Nothing is acknowledged through the pipe:
  the child commits to the store, and the relay finds the work there whether or not a wake-up arrives.

The child yields the CPU to the relay: it runs at ``[gateway] intake_nice`` (default 5) below the gateway's
priority, in the gateway's own session, in a process group of its own. On a busy machine a backlog arriving
made the intake, the relay and the receiver compete for the same cores, and the relay delivered a third
slower while the intake read ahead of it; what the intake leaves unread waits in the source's feed, where
it is durable, while a delivery that waits is late (docs/benchmarks.md). The session matters: Linux groups
CPU time by session (autogroup), and a child in a session of its own would get a whole group's share,
whatever its niceness. The process group keeps a terminal's Ctrl-C to the gateway, which stops the child.

Lifetimes are tied both ways. The parent stops the child with SIGTERM (pollers finish the page in hand) and
awaits it within the shutdown grace; a child that exits on its own is a failed runtime task, and
``shenguan serve`` exits non-zero. The child dies with its parent: on Linux the kernel SIGKILLs it the
moment the parent dies (``PR_SET_PDEATHSIG``), so a gateway restarted after a SIGKILL never finds an orphan
still reading its feeds; elsewhere it stops when its stdin, the parent's end of a pipe, closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.assembly import build_adapter, open_configured_store
from gateway.config import Config
from gateway.intake import Intake, SourceProgress
from gateway.logging import configure_logging
from gateway.routing import ConfigRouter, MappingFollower
from gateway.store import IngestResult, PageCounts

__all__ = ["IntakeProcess", "IntakeProcessError", "main"]

log = structlog.get_logger("shenguan.intake")

#: How often the child reports progress (caught-up states, deadline risk) when it changed.
PROGRESS_S = 0.1


class IntakeProcessError(RuntimeError):
    """The intake process failed to start, or exited while the gateway was running."""


@dataclass(slots=True)
class RemoteSource:
    """A source polled in the intake process, as its last ``progress`` report left it."""

    name: str
    caught_up: bool = False
    caught_up_once: bool = False


class IntakeProcess:
    """The parent's handle on the intake process: spawns it, follows its reports, stops it.

    Shaped like ``Intake`` where the gateway looks (``sources``, ``start``, ``stop``, ``deadline_risk``).
    """

    def __init__(
        self,
        config: Config,
        *,
        instance_id: str,
        on_ingested: Callable[[str, PageCounts], None],
        on_wake: Callable[[], None],
    ) -> None:
        self.config = config
        self.instance_id = instance_id
        self._on_ingested = on_ingested
        self._on_wake = on_wake
        self._remote = {name: RemoteSource(name) for name, sc in config.sources.items() if sc.mode != "push"}
        self._risk: dict[tuple[str, ...], float] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._events: asyncio.StreamReader | None = None
        self._error: str | None = None
        self._stopping = False

    @property
    def sources(self) -> Sequence[SourceProgress]:
        return list(self._remote.values())

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout_s: float = 60.0) -> list[asyncio.Task[None]]:
        """Spawn the child and wait until it reports ``started``; the returned task follows it from then on."""
        read_fd, write_fd = os.pipe()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.intake_process",
                "--events-fd",
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
                process_group=0,  # Ctrl-C reaches the gateway only; the session is shared (module docstring)
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        self._events = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self._events), os.fdopen(read_fd, "rb", buffering=0)
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(
            pickle.dumps({"config": self.config, "instance_id": self.instance_id, "parent_pid": os.getpid()})
        )
        await self._proc.stdin.drain()  # stdin stays open: its end is how a child off Linux sees the parent die
        try:
            first = await asyncio.wait_for(self._next_event(), timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            await self._kill()
            raise
        if first is None or first.get("event") != "started":
            self._apply(first or {})
            code = await self._proc.wait()
            raise IntakeProcessError(self._error or f"the intake process exited with {code} before it started")
        log.info("intake.started", pid=self._proc.pid)
        return [asyncio.create_task(self._follow(), name="intake")]

    def stop(self) -> None:
        """Ask the child to finish the page in hand and exit (the ``intake`` task then ends)."""
        self._stopping = True
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)

    async def deadline_risk(self) -> dict[tuple[str, ...], float]:
        return dict(self._risk)

    async def _follow(self) -> None:
        assert self._proc is not None
        try:
            while (event := await self._next_event()) is not None:
                self._apply(event)
            code = await self._proc.wait()
        except asyncio.CancelledError:  # the gateway's grace ran out: the child's page is rolled back, not lost
            await self._kill()
            raise
        if code != 0 or not self._stopping:
            detail = f": {self._error}" if self._error else ""
            raise IntakeProcessError(f"the intake process (pid {self._proc.pid}) exited with {code}{detail}")
        log.info("intake.stopped", pid=self._proc.pid)

    async def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._proc.wait(), 10)

    async def _next_event(self) -> dict[str, Any] | None:
        assert self._events is not None
        while line := await self._events.readline():
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("intake.unreadable_report", line=line[:200].decode(errors="replace"))
                continue
            if isinstance(event, dict):
                return event
        return None

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ingested":
            counts = PageCounts(
                {(str(t), str(v)): int(n) for t, v, n in event["verdicts"]},
                int(event["accepted"]),
                int(event["rejected"]),
                int(event["unrouted"]),
            )
            self._on_ingested(str(event["source"]), counts)
        elif kind == "progress":
            for name, (caught_up, once) in event["sources"].items():
                if (remote := self._remote.get(name)) is not None:
                    remote.caught_up, remote.caught_up_once = bool(caught_up), bool(once)
            if "deadlines" in event:
                self._risk = {(str(kind),): float(n) for kind, n in event["deadlines"].items()}
        elif kind == "wake":
            self._on_wake()
        elif kind == "failed":
            self._error = str(event.get("error"))
        elif kind != "stopped":
            log.warning("intake.unknown_report", report=str(event)[:200])


# -- the child ------------------------------------------------------------------------------------------------


class _Reports:
    """The child's end of the pipe: one JSON line per report, written whole (each is far under PIPE_BUF)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode()
        while data:
            data = data[os.write(self._fd, data) :]

    def ingested(self, source: str, result: IngestResult) -> None:
        counts = result.counts()
        self.send(
            "ingested",
            source=source,
            verdicts=[[t, v, n] for (t, v), n in counts.verdicts.items()],
            accepted=counts.accepted,
            rejected=counts.rejected,
            unrouted=counts.unrouted,
        )


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux); give up at once if it already has."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        sys.exit(1)


async def _serve_intake(config: Config, instance_id: str, reports: _Reports) -> int:
    store = open_configured_store(config)
    try:
        await store.open(exclusive=False)  # type: ignore[call-arg]  # both backends take it; the parent holds the lock
    except Exception as exc:
        reports.send("failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    sources: dict[str, Any] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        router = ConfigRouter(config.routes)
        mapping = MappingFollower(store, router)
        await mapping.refresh()
        for name, sc in config.sources.items():
            if sc.mode != "push":
                sources[name] = build_adapter("sources", name, sc.adapter, sc.adapter_options())
        intake = Intake(
            config,
            store,
            router,
            sources,
            owner=instance_id,
            on_ingested=reports.ingested,
            on_default_claims=lambda: reports.send("wake"),
        )
    except Exception as exc:
        reports.send("failed", error=str(exc))
        await _close(sources, store)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    tasks = intake.start()
    watchers = [
        asyncio.create_task(_follow_mapping(mapping, config.gateway.mapping_poll_s, reports), name="mapping-watch"),
        asyncio.create_task(_report_progress(intake, reports), name="progress"),
        asyncio.create_task(_parent_gone(stop), name="parent-watch"),
    ]
    reports.send("started")
    code = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        if failed:
            error = failed[0].exception()
            log.error("intake.failed", task=failed[0].get_name(), error=repr(error))
            reports.send("failed", error=f"{failed[0].get_name()}: {error!r}")
            code = 1
            break
    intake.stop()
    for watcher in watchers:
        watcher.cancel()
    _, pending = await asyncio.wait([*tasks, *watchers], timeout=config.gateway.shutdown_grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, *watchers, return_exceptions=True)
    await _close(sources, store)
    reports.send("stopped")
    return code


async def _follow_mapping(mapping: MappingFollower, interval_s: float, reports: _Reports) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            if await mapping.refresh():
                reports.send("wake")
        except Exception:  # the next round tries again
            log.exception("mapping.refresh_failed")


async def _report_progress(intake: Intake, reports: _Reports) -> None:
    """Every ``PROGRESS_S``: each source's caught-up state and the deadline risk, when either changed."""
    last: dict[str, Any] | None = None
    while True:
        report: dict[str, Any] = {"sources": {s.name: [s.caught_up, s.caught_up_once] for s in intake.sources}}
        if intake.deadlines is not None:
            report["deadlines"] = dict(intake.deadlines.last.at_risk_by_kind)
        if report != last:
            reports.send("progress", **report)
            last = report
        await asyncio.sleep(PROGRESS_S)


async def _parent_gone(stop: asyncio.Event) -> None:
    """Stop when stdin closes: the parent died (where no kernel signal says so) or closed it to stop us."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while await reader.read(4096):
            pass
        stop.set()
    finally:
        transport.close()


async def _close(sources: dict[str, Any], store: Any) -> None:
    for adapter in sources.values():
        with contextlib.suppress(Exception):
            await adapter.aclose()
    with contextlib.suppress(Exception):
        await store.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the child (``python -m gateway.intake_process --events-fd N``), spawned by ``IntakeProcess``."""
    parser = argparse.ArgumentParser(prog="python -m gateway.intake_process", description=__doc__.splitlines()[0])
    parser.add_argument("--events-fd", type=int, required=True, help="pipe to write reports to")
    args = parser.parse_args(argv)
    payload = pickle.load(sys.stdin.buffer)  # from our own parent: the pipe is not reachable by anyone else
    _die_with_parent(int(payload["parent_pid"]))
    config: Config = payload["config"]
    if config.gateway.intake_nice and hasattr(os, "nice"):
        os.nice(config.gateway.intake_nice)  # before any thread starts: threads inherit it (module docstring)
    fmt = config.gateway.log_format
    configure_logging("json" if fmt == "auto" else fmt, config.gateway.log_level)
    structlog.contextvars.bind_contextvars(process="intake")
    reports = _Reports(args.events_fd)
    sys.exit(asyncio.run(_serve_intake(config, str(payload["instance_id"]), reports)))


if __name__ == "__main__":
    main()
