"""The relay legs: ``shenguan serve`` relaying a backlog of approvals from the zwfw mock to the hlwjg mock.

A leg starts one or more ``shenguan serve`` processes with a generated configuration, waits until every one
has started (relay running, intake process up), then puts ``count`` distinct approvals in the zwfw feed in
one step (a backlog), waits until the store says every delivery is ``delivered``, stops them with SIGTERM
and then reads the figures:

- throughput: ``count / (last delivered_at − first received_at)``, both read from the store — the span
  from the first approval's acceptance to the last one's delivery. No process start-up falls inside it:
  with several instances, one that was still importing its modules while another already relayed would
  otherwise be measured as relay work;
- end-to-end latency of each message: its delivery's ``delivered_at`` minus its ``received_at`` (the
  acceptance in the store). The whole backlog is accepted far faster than it can be delivered, so this is
  mostly time spent waiting in the outbox: it grows with the backlog and reads as "how long the last
  approvals of a burst of N wait", not as the cost of one message;
- peak memory: ``VmHWM`` of each gateway process;
- correctness: the receiver must hold exactly ``count`` records with no duplicate creation.

Progress is read from the store by this process (a read-only SQLite connection, or a PostgreSQL session),
never from the gateway, so watching costs the gateway nothing.
"""

from __future__ import annotations

import sqlite3
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from benchmarks.procs import GatewayProcess, MockServer, cpu_s, wait_for
from benchmarks.stats import percentile_ms

__all__ = ["DestinationSettings", "PostgresReader", "RelayLeg", "SQLiteReader", "run_relay_leg"]


@dataclass(frozen=True, slots=True)
class DestinationSettings:
    """The hlwjg destination as both the ceiling and the relay use it: one place, so they cannot differ."""

    concurrency: int = 8
    timeout_s: float = 30.0

    def adapter_options(self) -> dict[str, Any]:
        """What the hlwjg adapter reads from the destination section (``base_url`` added per run)."""
        return {"client_id": "shenguan", "client_secret": "hlwjg-mock-secret", "timeout_s": self.timeout_s}


@dataclass(frozen=True, slots=True)
class RelayLeg:
    name: str
    count: int
    db_url: str  # an SQLite path or a postgresql:// URL, shared by every instance
    instances: int = 1
    page_size: int = 100  # the product default (SourceConfig.page_size)


class StoreReader(Protocol):
    def delivered(self) -> int: ...

    def timings(self) -> list[tuple[float, float]]:
        """(received_at, delivered_at) of every delivered delivery, in seconds since the epoch."""
        ...

    def close(self) -> None: ...


_DELIVERED = "SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'"
_TIMINGS = (
    "SELECT m.received_at, d.delivered_at FROM deliveries d JOIN messages m ON m.id = d.message_id "
    "WHERE d.state = 'delivered'"
)


class SQLiteReader:
    """A read-only connection to the gateway's SQLite file (WAL lets it read while the gateway writes)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and Path(self._path).exists():
            self._conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=30)
        return self._conn

    def delivered(self) -> int:
        conn = self._connection()
        if conn is None:
            return 0
        try:
            return int(conn.execute(_DELIVERED).fetchone()[0])
        except sqlite3.OperationalError:  # schema not created yet
            return 0

    def timings(self) -> list[tuple[float, float]]:
        conn = self._connection()
        return [] if conn is None else [(float(a), float(b)) for a, b in conn.execute(_TIMINGS)]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresReader:
    """A session on the benchmark's PostgreSQL database; times are read as epoch seconds whatever their type."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)

    def delivered(self) -> int:
        import psycopg

        try:
            row = self._conn.execute(_DELIVERED).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0

    def timings(self) -> list[tuple[float, float]]:
        return [(_epoch(a), _epoch(b)) for a, b in self._conn.execute(_TIMINGS)]

    def close(self) -> None:
        self._conn.close()


def _epoch(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def gateway_config(
    mocks_url: str, db_url: str, destination: DestinationSettings, *, instance_id: str, page_size: int
) -> str:
    """The TOML of one benchmark gateway: the example configuration's shape, production defaults kept
    (``synchronous=FULL``, info logging), pointed at the benchmark's mocks and store."""
    return textwrap.dedent(
        f"""
        [gateway]
        db = "{db_url}"
        listen = "127.0.0.1:0"
        instance_id = "{instance_id}"
        log_format = "json"
        log_level = "info"
        sqlite_synchronous = "FULL"

        [sources.zwfw]
        adapter = "zwfw"
        base_url = "{mocks_url}/zwfw"
        paasid = "shenguan"
        token = "zwfw-mock-token"
        poll_interval_s = 0.5
        page_size = {page_size}

        [destinations.hlwjg]
        adapter = "hlwjg"
        base_url = "{mocks_url}/hlwjg"
        client_id = "shenguan"
        client_secret = "hlwjg-mock-secret"
        timeout_s = {destination.timeout_s}
        concurrency = {destination.concurrency}

        [[routes]]
        type = "approval.decided"
        destinations = ["hlwjg"]
        """
    )


def _reader(db_url: str) -> StoreReader:
    if db_url.startswith(("postgresql://", "postgres://")):
        return PostgresReader(db_url)
    return SQLiteReader(db_url.removeprefix("sqlite:///").removeprefix("sqlite://"))


def run_relay_leg(
    leg: RelayLeg, workdir: Path, destination: DestinationSettings, *, seed: int, timeout_s: float
) -> dict[str, Any]:
    """Relay ``leg.count`` approvals end to end and return the leg's figures (see the module docstring)."""
    workdir.mkdir(parents=True, exist_ok=True)
    mocks = MockServer(workdir)
    gateways: list[GatewayProcess] = []
    reader: StoreReader | None = None
    try:
        for i in range(leg.instances):
            config = workdir / f"{leg.name}-{i}.toml"
            config.write_text(
                gateway_config(
                    mocks.url, leg.db_url, destination, instance_id=f"bench-{leg.name}-{i}", page_size=leg.page_size
                )
            )
            gateways.append(GatewayProcess(config, workdir / f"{leg.name}-{i}.log"))
        wait_for(lambda: all(gw.started() for gw in gateways), timeout_s, f"{leg.name}: every instance started")
        for gw in gateways:
            gw.start_counting()
        mocks.generate(leg.count, seed=seed)
        started = time.monotonic()
        mocks_cpu_before = cpu_s(mocks.proc.pid)
        reader = _reader(leg.db_url)
        current = reader

        def done() -> bool:
            for gw in gateways:
                gw.check()
            return current.delivered() >= leg.count

        wait_for(done, timeout_s, f"{leg.name}: {leg.count} deliveries", interval_s=0.25)
        wall_s = time.monotonic() - started
        mocks_cpu = cpu_s(mocks.proc.pid) - mocks_cpu_before
        codes = [gw.stop() for gw in gateways]
        if any(codes):
            raise RuntimeError(f"{leg.name}: shenguan serve exited with {codes}; see the logs in {workdir}")
        timings = reader.timings()
        received = mocks.received()
    finally:
        for gw in gateways:
            if gw.proc.poll() is None:
                gw.stop()
        if reader is not None:
            reader.close()
        mocks.close()
    cpu = {
        "gateway": sum(gw.cpu_s for gw in gateways),
        "mocks": mocks_cpu,
        "instances": [gw.cpu_s for gw in gateways],
        "processes": [gw.cpu_s_by_process for gw in gateways],
    }
    return _figures(leg, timings, received, [gw.peak_rss_mb for gw in gateways], wall_s, cpu)


def _figures(
    leg: RelayLeg,
    timings: Sequence[tuple[float, float]],
    received: dict[str, Any],
    rss: list[float],
    wall_s: float,
    cpu: dict[str, Any],
) -> dict[str, Any]:
    if len(timings) != leg.count:
        raise RuntimeError(f"{leg.name}: the store has {len(timings)} delivered deliveries, expected {leg.count}")
    if received["accepted"] != leg.count or received["duplicate_creations"]:
        raise RuntimeError(
            f"{leg.name}: the receiver holds {received['accepted']} records with "
            f"{received['duplicate_creations']} duplicate creations, expected {leg.count} and 0"
        )
    first = min(r for r, _ in timings)
    last = max(d for _, d in timings)
    span = last - first
    latencies = [d - r for r, d in timings]
    return {
        "leg": leg.name,
        "instances": leg.instances,
        "messages": leg.count,
        "elapsed_s": round(span, 3),
        "msgs_per_s": round(leg.count / span, 1) if span > 0 else None,
        "wall_s": round(wall_s, 3),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "peak_rss_mb": round(max(rss), 1),
        "peak_rss_mb_total": round(sum(rss), 1),
        # CPU per message while relaying (start-up excluded), gateway processes and mocks apart.
        "cpu_ms_per_msg": round(cpu["gateway"] * 1000 / leg.count, 3),
        "mocks_cpu_ms_per_msg": round(cpu["mocks"] * 1000 / leg.count, 3),
        "cpu_s_by_instance": [round(c, 2) for c in cpu["instances"]],
        # Per instance: [serve, intake process] — the relay's share and the pollers' and deadline tracker's.
        "cpu_s_by_process": [[round(c, 2) for c in instance] for instance in cpu["processes"]],
        "duplicate_creations": received["duplicate_creations"],
    }
