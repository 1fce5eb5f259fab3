"""The gateway's HTTP side: health, readiness and status for now (ingest, admin and metrics build on it).

The server runs inside the gateway's own event loop (uvicorn embedded, its signal handling switched
off) so that one SIGTERM handler governs the whole process's graceful stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gateway.admin import install_admin
from gateway.ingest import ingest_router
from gateway.metrics import metrics_router
from gateway.runtime import Gateway

__all__ = ["EmbeddedServer", "create_app", "parse_listen"]


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="shenguan gateway", version="0.1.0")

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: recovery done, relay and pollers running",
        responses={503: {"description": "not ready (starting, recovering, or a runtime task failed)"}},
    )
    async def readyz() -> JSONResponse:
        failed = gateway.failed_task()
        ready = gateway.relay is not None and failed is None
        body: dict[str, Any] = {"ready": ready, "instance": gateway.instance_id}
        if failed is not None:
            body["error"] = repr(failed)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/status", summary="Counts by state (the shape of `shenguan status --json`)")
    async def status() -> dict[str, object]:
        return await gateway.store.status()

    app.include_router(ingest_router(gateway))  # POST /ingest/{source}: pushes from platforms
    app.include_router(metrics_router(lambda: gateway.metrics))  # GET /metrics: Prometheus
    install_admin(app, gateway)  # /admin/api/v1 (JSON, in the OpenAPI) and /admin/ (the operators' console)
    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway process owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases
        return None


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` → (host, port); ``ValueError`` naming the problem."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be host:port, got {listen!r}")
    return host or "127.0.0.1", int(port)
