"""Run the mocks over real HTTP: in the background of the current event loop, or blocking for the CLI.

In-process demos and tests want a real socket (a dropped response only means something over TCP) without a
second process or thread; ``run_in_background`` gives them one on a free port inside their own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator
from typing import NamedTuple

import uvicorn
from starlette.types import ASGIApp

from mock_platforms.app import create_app


class RunningServer(NamedTuple):
    """A server started by ``run_in_background``: where it listens, and the coroutine that stops it."""

    base_url: str
    stop: Callable[[], Awaitable[None]]


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host program.

    uvicorn normally replaces the SIGINT/SIGTERM handlers while it runs; embedded in a gateway demo or a test
    process, that would steal the host's graceful-shutdown signals.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _base_url(server: uvicorn.Server, host: str) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def _start(server: uvicorn.Server) -> asyncio.Task[None]:
    """Start ``server.serve()`` as a task and return once it listens (or raise if it could not start)."""

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            # uvicorn reports a failed bind by logging and calling sys.exit; a SystemExit escaping a task
            # would tear down the host's whole event loop.
            raise RuntimeError("mock server failed to start (port in use?)") from exc

    task = asyncio.create_task(serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("mock server stopped before it started")
        await asyncio.sleep(0.01)
    return task


async def run_in_background(
    host: str = "127.0.0.1", port: int = 0, *, app: ASGIApp | None = None, log_level: str = "warning"
) -> RunningServer:
    """Serve ``app`` (default: a fresh ``create_app()``) on ``host:port`` in the current event loop.

    ``port=0`` picks a free port; the returned ``base_url`` has the real one. ``await stop()`` shuts the
    server down gracefully and waits for it.
    """
    # log_config=None: the host program owns logging (and its masking); uvicorn must not install its own handlers.
    config = uvicorn.Config(
        app or create_app(), host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
        log_config=None,
    )
    server = _EmbeddedServer(config)
    task = await _start(server)

    async def stop() -> None:
        server.should_exit = True
        await task

    return RunningServer(_base_url(server, host), stop)


def serve(
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    app: ASGIApp | None = None,
    log_level: str = "warning",
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (handled gracefully by uvicorn); ``on_started`` gets the base URL once
    the socket is bound, so the real port is known even for ``port=0``."""

    async def main() -> None:
        config = uvicorn.Config(
            app or create_app(), host=host, port=port, log_level=log_level, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = await _start(server)
        if on_started is not None:
            on_started(_base_url(server, host))
        await task

    asyncio.run(main())
