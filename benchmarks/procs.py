"""The processes a benchmark leg runs: the mock platforms and ``shenguan serve``, each its own OS process.

Separate processes keep the figures honest: the gateway's peak memory is its own (``VmHWM`` of its pid, the
kernel's high-water mark of resident memory), and neither side can borrow the other's event loop or share
objects in memory. Everything goes through the documented contract (CLI, ``_mock/`` API), as an operator
would drive it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

__all__ = ["GatewayProcess", "MockServer", "child_pids", "cpu_s", "free_port", "peak_rss_mb", "wait_for"]

SHENGUAN = [sys.executable, "-m", "gateway"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process in MiB (``VmHWM``: the kernel's high-water mark)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used so far.

    Throughput on a shared two-core machine moves with whatever else runs; CPU time spent per message
    barely does, which makes it the figure to compare hot-path changes by.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (``shenguan serve`` has one: its intake process), from ``/proc/*/stat``."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _stop(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)


class MockServer:
    """``shenguan mocks serve`` on a free loopback port (fresh state per instance)."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_dir / f"mocks-{self.port}.log", "wb")  # closed in close()
        self.proc = subprocess.Popen(
            [*SHENGUAN, "mocks", "serve", "--port", str(self.port)], stdout=self._log, stderr=subprocess.STDOUT
        )
        self.http = httpx.Client(base_url=self.url, timeout=600)
        try:
            wait_for(self._up, 60, "the mocks to listen")
        except BaseException:
            self.close()
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"mocks exited with {self.proc.returncode}")
        try:
            return self.http.get("/hlwjg/_mock/records", params={"limit": 0}).status_code == 200
        except httpx.TransportError:
            return False

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def generate(self, count: int, *, seed: int) -> int:
        """Put ``count`` distinct approvals in the zwfw feed (in chunks: the mock caps one call)."""
        done = 0
        while done < count:
            chunk = min(100_000, count - done)
            self.post("/zwfw/_mock/generate", {"count": chunk, "seed": seed + done})
            done += chunk
        return done

    def received(self) -> dict[str, Any]:
        """What the hlwjg mock holds: the counts only."""
        response = self.http.get("/hlwjg/_mock/records", params={"limit": 0})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        self.http.close()
        _stop(self.proc, 10)
        self._log.close()


class GatewayProcess:
    """One ``shenguan serve --config FILE`` child; its log goes to ``log_path``.

    Its figures cover the whole gateway: the ``serve`` process and its intake process (pollers and deadline
    tracker, ``gateway.intake_process``). CPU is summed, counted from ``start_counting`` (after start-up);
    peak memory is the sum of each process's own peak — an upper bound on what the two held at any one
    moment.
    """

    def __init__(self, config: Path, log_path: Path) -> None:
        self._log = open(log_path, "wb")  # closed in stop()
        self.log_path = log_path
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*SHENGUAN, "serve", "--config", str(config)], stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        self._peak_mb: dict[int, float] = {}
        self._cpu_s: dict[int, float] = {}
        self._cpu_base: dict[int, float] = {}

    def started(self) -> bool:
        """``serve`` has logged ``gateway.started``: recovered, relaying, its intake process running."""
        self.check()
        return '"gateway.started"' in self.log_path.read_text(errors="replace")

    def start_counting(self) -> None:
        """From now on CPU time counts (what start-up used is left out)."""
        self.check()
        self._cpu_base = dict(self._cpu_s)

    @property
    def peak_rss_mb(self) -> float:
        return sum(self._peak_mb.values())

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_s_by_process)

    @property
    def cpu_s_by_process(self) -> list[float]:
        """CPU seconds of ``serve`` first, then of each child (its intake process), since ``start_counting``."""
        pids = sorted(self._cpu_s, key=lambda p: p != self.proc.pid)
        return [self._cpu_s[pid] - self._cpu_base.get(pid, 0.0) for pid in pids]

    def check(self) -> None:
        """Raise if the process died; refresh the peak memory and CPU readings of it and its children."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"shenguan serve exited with {self.proc.returncode}; see {self.log_path}")
        for pid in (self.proc.pid, *child_pids(self.proc.pid)):
            try:
                peak, cpu = peak_rss_mb(pid), cpu_s(pid)
            except (OSError, RuntimeError):
                continue  # it ended between the listing and the reading: keep its last figures
            self._peak_mb[pid] = max(self._peak_mb.get(pid, 0.0), peak)
            self._cpu_s[pid] = cpu

    def stop(self) -> int:
        """SIGTERM (graceful), after a last reading of peak memory and CPU time."""
        if self.proc.poll() is None:
            self.check()
        code = _stop(self.proc, 60)
        self._log.close()
        return code
