"""One ASGI app serving every fake platform under its own prefix (``/zwfw``, ``/hlwjg``), as DESIGN §4 asks.

``create_app`` builds fresh state on every call — no module-level singletons — so tests and in-process demos
can run several independent sets of mocks side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from mock_platforms import credit, hlwjg, soap, zwfw
from mock_platforms.control import MockPlatform, control_router
from mock_platforms.faults import FaultInjectionMiddleware
from mock_platforms.specialty import SpecialtyPlatform
from mock_platforms.specialty import native_router as specialty_router
from mock_platforms.traffic import DEFAULT_TRAFFIC_LIMIT, TrafficRecorderMiddleware


class MockPlatformsApp(FastAPI):
    """FastAPI with the traffic recorder and fault injector wrapped *outside* Starlette's middleware stack.

    ``add_middleware`` would place them inside ``ServerErrorMiddleware``, which wraps ``send`` in a closure;
    the fault injector needs the server's own ``send`` to abort the TCP connection for dropped responses.
    """

    platforms: dict[str, MockPlatform]

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        stack = FaultInjectionMiddleware(stack, {name: p.faults for name, p in self.platforms.items()})
        return TrafficRecorderMiddleware(stack, {name: p.traffic for name, p in self.platforms.items()})


def create_app(
    *,
    zwfw_credentials: Mapping[str, str] | None = None,
    hlwjg_clients: Mapping[str, str] | None = None,
    credit_apps: Mapping[str, str] | None = None,
    soap_users: Mapping[str, str] | None = None,
    specialty_db: str | Path | None = None,
    clock: Callable[[], float] = time.time,
    traffic_limit: int = DEFAULT_TRAFFIC_LIMIT,
) -> MockPlatformsApp:
    """Build the mocks app with fresh state.

    ``zwfw_credentials`` maps x-tif paasid → token (default ``{"shenguan": "zwfw-mock-token"}``);
    ``hlwjg_clients`` maps OAuth2 client_id → client_secret (default ``{"shenguan": "hlwjg-mock-secret"}``).
    ``credit_apps`` maps credit appKey → appSecret (default ``{"shenguan": "credit-mock-secret"}``).
    ``soap_users`` maps 前置机 login user → password (default ``{"shenguan": "soap-mock-password"}``).
    ``specialty_db`` is the SQLite file of the 前置库 mock (default: a fresh temporary file); it is emptied.
    ``clock`` (unix seconds) drives signature windows, token expiry and event times, so tests can move time.
    The platform objects are reachable as ``app.platforms[name]`` for in-process inspection.
    """
    zwfw_platform = zwfw.ZwfwPlatform(
        zwfw.DEFAULT_CREDENTIALS if zwfw_credentials is None else zwfw_credentials, clock, traffic_limit
    )
    hlwjg_platform = hlwjg.HlwjgPlatform(
        hlwjg.DEFAULT_CLIENTS if hlwjg_clients is None else hlwjg_clients, clock, traffic_limit
    )
    app = MockPlatformsApp(
        title="shenguan mock platforms",
        description="Fakes of the platforms shenguan relays between, with fault injection (`_mock/`).",
    )
    soap_platform = soap.SoapPlatform(soap.DEFAULT_USERS if soap_users is None else soap_users, clock, traffic_limit)
    credit_platform = credit.CreditPlatform(
        credit.DEFAULT_APPS if credit_apps is None else credit_apps, clock, traffic_limit
    )
    app.platforms = {"zwfw": zwfw_platform, "hlwjg": hlwjg_platform, "soap": soap_platform, "credit": credit_platform}
    app.include_router(zwfw.native_router(zwfw_platform), prefix="/zwfw")
    app.include_router(hlwjg.native_router(hlwjg_platform), prefix="/hlwjg")
    app.include_router(credit.native_router(credit_platform), prefix="/credit")
    specialty_platform = SpecialtyPlatform(specialty_db, clock, traffic_limit)
    app.platforms["specialty"] = specialty_platform
    app.include_router(specialty_router(specialty_platform), prefix="/specialty")
    for name, platform in app.platforms.items():
        app.include_router(control_router(platform), prefix=f"/{name}/_mock")
    # Mounted after the control routers: a mount matches its whole prefix, and /soap/_mock must stay reachable.
    app.mount("/soap", soap.asgi_app(soap_platform))

    @app.get("/", tags=["index"])
    async def index() -> dict[str, Any]:
        """Which platforms this server fakes, and where."""
        return {"platforms": {name: f"/{name}" for name in app.platforms}}

    return app
