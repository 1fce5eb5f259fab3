"""The ``/{platform}/_mock/`` control plane shared by every fake platform (DESIGN §4).

Tests, benchmarks and users drive every mock through the same six endpoints, so they are built once here
from a small protocol each platform implements. The control plane is never faulted: a mock that is "down"
can still be inspected and repaired.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from mock_platforms.faults import FaultState, FaultUpdate
from mock_platforms.traffic import TrafficLog

MAX_GENERATE = 1_000_000


class GenerateRequest(BaseModel):
    """Body of ``POST generate``; rates are fractions of ``count`` (see ``generator.generate_banjian``)."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=100, ge=0, le=MAX_GENERATE)
    seed: int = 0
    duplicate_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    revision_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    secret_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    kind: str | None = Field(
        default=None,
        max_length=64,
        description="what to generate where a platform offers several kinds (e.g. hlwjg 'loop', zwfw 'preapproval')",
    )


class InjectRequest(BaseModel):
    """Body of ``POST inject``: items of any JSON shape, served verbatim — malformed ones are the point."""

    records: list[Any]


class MockPlatform(Protocol):
    """What a fake platform offers the control plane. State changes are synchronous (no ``await`` inside),
    so each one is atomic on the single event loop that serves the app."""

    name: str
    faults: FaultState
    traffic: TrafficLog

    def records_report(self) -> dict[str, Any]: ...

    def generate(self, request: GenerateRequest) -> dict[str, int]: ...

    def inject(self, records: list[Any]) -> dict[str, int]: ...

    def reset(self) -> None: ...


def control_router(platform: MockPlatform) -> APIRouter:
    """Build the ``_mock`` routes for one platform (mounted under ``/{name}/_mock``)."""
    router = APIRouter(tags=[f"{platform.name} _mock"])

    @router.get("/records")
    async def records(
        limit: Annotated[int | None, Query(ge=0, description="at most this many records (0: counts only)")] = None,
    ) -> dict[str, Any]:
        """What the mock holds: ``accepted`` facts, ``duplicate_creations``, ``rejected``, and the records.

        ``limit`` caps the ``records`` list (the counts stay whole): a benchmark that relayed 200,000 approvals
        needs the counts, not a response of hundreds of megabytes.
        """
        report = platform.records_report()
        if limit is not None and isinstance(report.get("records"), list):
            report["records"] = report["records"][:limit]
        return report

    @router.post("/faults")
    async def faults(change: FaultUpdate) -> dict[str, Any]:
        """Merge fault settings; returns all of them."""
        return platform.faults.update(change)

    @router.get("/faults")
    async def current_faults() -> dict[str, Any]:
        return platform.faults.as_dict()

    @router.post("/generate")
    async def generate(request: GenerateRequest) -> dict[str, int]:
        """Append generated native items to the platform's feed."""
        return platform.generate(request)

    @router.post("/inject")
    async def inject(request: InjectRequest) -> dict[str, int]:
        """Append exactly these items to the feed."""
        return platform.inject(request.records)

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        """Clear records, feed, counters and traffic; faults back to healthy defaults."""
        platform.reset()
        platform.faults.reset()
        platform.traffic.clear()
        return {"platform": platform.name, "reset": True}

    @router.get("/traffic")
    async def traffic() -> list[dict[str, Any]]:
        """The last requests received on the native API, with their raw bodies, oldest first."""
        return platform.traffic.entries()

    return router
