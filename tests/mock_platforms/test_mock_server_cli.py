"""Serving the mocks: in the background of a test's loop, and from the ``mocks serve`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from mock_platforms.cli import app as cli_app
from mock_platforms.server import run_in_background

REPO = Path(__file__).resolve().parents[2]


async def test_run_in_background_serves_fresh_independent_apps() -> None:
    one = await run_in_background()
    two = await run_in_background()
    try:
        assert one.base_url != two.base_url and one.base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http:
            index = (await http.get(f"{one.base_url}/")).json()
            assert {"zwfw": "/zwfw", "hlwjg": "/hlwjg", "soap": "/soap"}.items() <= index["platforms"].items()
            await http.post(f"{one.base_url}/zwfw/_mock/generate", json={"count": 2})
            assert (await http.get(f"{one.base_url}/zwfw/_mock/records")).json()["feed_size"] == 2
            assert (await http.get(f"{two.base_url}/zwfw/_mock/records")).json()["feed_size"] == 0
    finally:
        await one.stop()
        await two.stop()


def test_cli_lists_serve_with_its_options() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output


def test_cli_serve_prints_its_address_and_stops_on_sigterm() -> None:
    env = os.environ | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_platforms.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("mocks listening on http://127.0.0.1:"), line
        base_url = line.removeprefix("mocks listening on ")
        assert httpx.get(f"{base_url}/hlwjg/_mock/records", timeout=5).json()["platform"] == "hlwjg"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
