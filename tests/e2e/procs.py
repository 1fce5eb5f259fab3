"""Real processes for end-to-end tests: ``shenguan mocks serve`` and ``shenguan serve``.

Everything is driven through the documented contract (CLI, ``_mock/`` API, ``status --json``), as an
integrator or a tester would, and nothing is shared in memory with the processes under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from mock_platforms.hlwjg import DEFAULT_CLIENTS as HLWJG_CLIENTS
from mock_platforms.zwfw import DEFAULT_CREDENTIALS as ZWFW_CREDENTIALS

SHENGUAN = [sys.executable, "-m", "gateway"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


#: Retries fast enough for a test against a faulty mock, many enough that none of its faults ends a delivery.
FAST_RETRIES: dict[str, Any] = {
    "max_attempts": 40,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.5,
    "backoff_jitter_s": 0.05,
}


def relay_config(
    mocks: Mocks,
    db: Path | str,
    *,
    gateway: dict[str, Any] | None = None,
    zwfw: dict[str, Any] | None = None,
    hlwjg: dict[str, Any] | None = None,
    sources: dict[str, dict[str, Any]] | None = None,
    **sections: Any,
) -> str:
    """The TOML of a ``shenguan serve`` that polls the zwfw mock and relays its approvals to the hlwjg mock.

    The shape most end-to-end tests share, with the mocks' own credentials (``mock_platforms``) in one place.
    ``gateway``, ``zwfw`` and ``hlwjg`` add to or override those sections; ``sources`` adds further sources
    (a 前置库); any other keyword is a further top-level section (``deadlines``, ``admin``).
    """
    [(paasid, token)] = ZWFW_CREDENTIALS.items()
    [(client_id, client_secret)] = HLWJG_CLIENTS.items()
    zwfw_source = {"adapter": "zwfw", "base_url": f"{mocks.url}/zwfw", "paasid": paasid, "token": token}
    config = {
        "gateway": {"db": str(db), "listen": "127.0.0.1:0", "shutdown_grace_s": 5, **(gateway or {})},
        **sections,
        "sources": {"zwfw": {**zwfw_source, "poll_interval_s": 0.2, **(zwfw or {})}, **(sources or {})},
        "destinations": {
            "hlwjg": {
                "adapter": "hlwjg",
                "base_url": f"{mocks.url}/hlwjg",
                "client_id": client_id,
                "client_secret": client_secret,
                **(hlwjg or {}),
            }
        },
        "routes": [{"type": "approval.decided", "destinations": ["hlwjg"]}],
    }
    return tomli_w.dumps(config)


class Mocks:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_dir / "mocks.log", "wb")
        # The 前置库 mock's exchange database lives with the test's files, not in the working directory.
        self.specialty_db = log_dir / "specialty-exchange.db"
        self.specialty_url = f"sqlite:///{self.specialty_db}"
        self.proc = subprocess.Popen(
            [*SHENGUAN, "mocks", "serve", "--port", str(self.port), "--specialty-db", str(self.specialty_db)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=30)
        wait_for(self._up, 30, "mocks to listen")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"mocks exited with {self.proc.returncode}")
        try:
            return self.http.get("/hlwjg/_mock/records").status_code == 200
        except httpx.TransportError:
            return False

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def records(self, platform: str) -> dict[str, Any]:
        return self.http.get(f"/{platform}/_mock/records").json()

    def faults(self, platform: str, **settings: Any) -> dict[str, Any]:
        """Change some of a platform's fault settings (``_mock/faults``); the others stay as they were."""
        return self.post(f"/{platform}/_mock/faults", settings)

    def traffic(self, platform: str) -> list[dict[str, Any]]:
        """What reached the platform's native API, each request tagged with the fault applied (or None)."""
        return self.http.get(f"/{platform}/_mock/traffic").json()

    def zwfw_feed(self) -> list[Any]:
        """The whole zwfw change feed read over its native, signed API."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            ts, nonce = str(int(time.time())), secrets.token_hex(8)
            sig = hashlib.sha256(f"{ts}zwfw-mock-token{nonce}{ts}".encode()).hexdigest()
            headers = {"x-tif-paasid": "shenguan", "x-tif-timestamp": ts, "x-tif-nonce": nonce, "x-tif-signature": sig}
            params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
            body = self.http.get("/zwfw/api/v1/banjian/changes", params=params, headers=headers).json()
            assert body["code"] == "200", body
            items.extend(body["data"]["items"])
            if not body["data"]["has_more"]:
                return items
            cursor = body["data"]["next_cursor"]

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


class Gateway:
    """``shenguan serve`` as a child process that a test can start, SIGKILL and restart."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"serve-{self.starts}.log", "wb")
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*SHENGUAN, "serve", "--config", str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def status(self) -> dict[str, Any]:
        out = subprocess.run(
            [*SHENGUAN, "status", "--config", str(self.config), "--json"], capture_output=True, check=True, timeout=60
        )
        return json.loads(out.stdout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("serve-*.log")))
