"""The admin API: ``/admin/api/v1/…``, JSON, described exactly in the gateway's OpenAPI (``/openapi.json``).

Authentication: HTTP Basic with a configured user's password, or an API key (``Authorization: Bearer KEY``
or ``X-API-Key: KEY``). 401 without valid credentials, 403 when a viewer asks for an action. Errors are
``{"detail": "…"}``: 404 for an unknown id, 409 when the state does not allow the action (the sentence says
what to do instead), 422 for a malformed request.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' local ``Annotated`` aliases at runtime.
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from gateway.admin.actions import Operations
from gateway.admin.auth import Authenticator, Principal
from gateway.admin.models import (
    CST,
    MAX_ID,
    CalendarStatus,
    DeliveryDetail,
    DeliveryPage,
    Health,
    MappingStatus,
    MessageDetail,
    MessagePage,
    Overview,
    PaperConfirm,
    PaperItem,
    PaperRender,
    PaperRendered,
    PaperReturn,
    Problem,
    ReplayRequest,
    ResolveRequest,
    Trace,
    WhoAmI,
)
from gateway.calendar import ScheduleError
from gateway.store.base import DeliveryState, MessageQuery, NotFoundError, StateConflictError

__all__ = ["PREFIX", "admin_api", "install_error_handlers"]

PREFIX = "/admin/api/v1"
CHALLENGE = {"WWW-Authenticate": 'Basic realm="shenguan admin", charset="UTF-8"'}

_basic = HTTPBasic(auto_error=False, description="a configured admin user and password")
_bearer = HTTPBearer(auto_error=False, description="an API key from `shenguan admin new-api-key`")
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same API key, as a header")

_READ = {401: {"model": Problem, "description": "no or wrong credentials"}}
_FOUND = _READ | {404: {"model": Problem, "description": "no such message or delivery"}}
_ACT = _FOUND | {
    403: {"model": Problem, "description": "a viewer cannot act"},
    409: {"model": Problem, "description": "the current state does not allow this action"},
}

Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="a delivery id")]
MessageId = Annotated[str, Path(min_length=1, max_length=200, description="a message id")]


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=CST)).timestamp()


def install_error_handlers(app: Any) -> None:
    """Map the store's operator errors to 404/409 (and a corrupt calendar directory to 503), as ``Problem``."""

    async def not_found(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else "not found"}, status_code=404)

    async def conflict(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def calendar_broken(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"the calendar directory holds an invalid schedule: {exc}"}, status_code=503)

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(StateConflictError, conflict)
    app.add_exception_handler(ScheduleError, calendar_broken)


def admin_api(ops: Operations, auth: Authenticator) -> APIRouter:
    """The admin API's routes over ``ops``, guarded by ``auth``."""

    async def principal(
        basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        key: Annotated[str | None, Depends(_key_header)],
    ) -> Principal:
        who: Principal | None = None
        if bearer is not None:
            who = auth.api_key(bearer.credentials)
        elif key is not None:
            who = auth.api_key(key)
        elif basic is not None:
            who = await auth.password(basic.username, basic.password, via="api")
        if who is None:
            raise HTTPException(401, "valid admin credentials are required", headers=CHALLENGE)
        return who

    async def operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.can_act:
            raise HTTPException(403, f"{who.name} is a viewer: only an operator can do this")
        return who

    Viewer = Annotated[Principal, Depends(principal)]
    Operator = Annotated[Principal, Depends(operator)]
    router = APIRouter(prefix=PREFIX, tags=["admin"])

    @router.get("/whoami", response_model=WhoAmI, responses=_READ, summary="The authenticated user and role")
    async def whoami(who: Viewer) -> WhoAmI:
        return WhoAmI(name=who.name, role=who.role.value)

    @router.get("/health", response_model=Health, responses=_READ, summary="Liveness and readiness")
    async def health(_who: Viewer) -> Health:
        failed = ops.gateway.failed_task()
        return Health(
            live=True,
            ready=ops.ready(),
            instance=ops.gateway.instance_id,
            error=repr(failed) if failed is not None else None,
        )

    @router.get(
        "/overview",
        response_model=Overview,
        responses=_READ,
        summary="Counts by state, per destination with its oldest waiting delivery and breaker",
    )
    async def overview(_who: Viewer) -> Overview:
        return await ops.overview()

    @router.get("/messages", response_model=MessagePage, responses=_READ, summary="Find messages (newest first)")
    async def find_messages(
        _who: Viewer,
        id: Annotated[str | None, Query(max_length=200, description="message id")] = None,
        business_key: Annotated[str | None, Query(max_length=200, description="e.g. the 办件编号 PROJID")] = None,
        correlation_id: Annotated[str | None, Query(max_length=200)] = None,
        type: Annotated[str | None, Query(max_length=200, description="event type")] = None,
        source: Annotated[str | None, Query(max_length=200)] = None,
        state: Annotated[DeliveryState | None, Query(description="with a delivery in this state")] = None,
        destination: Annotated[str | None, Query(max_length=200, description="with a delivery to it")] = None,
        received_from: Annotated[datetime | None, Query(description="stored at or after (naive = Beijing)")] = None,
        received_to: Annotated[datetime | None, Query(description="stored before (naive = Beijing)")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> MessagePage:
        query = MessageQuery(
            message_id=id,
            business_key=business_key,
            correlation_id=correlation_id,
            type=type,
            source=source,
            state=state.value if state else None,
            destination=destination,
            received_from=_epoch(received_from),
            received_to=_epoch(received_to),
            limit=limit,
            offset=offset,
        )
        return await ops.find_messages(query)

    @router.get("/messages/{message_id}", response_model=MessageDetail, responses=_FOUND, summary="One message")
    async def message(_who: Viewer, message_id: MessageId) -> MessageDetail:
        return await ops.message(message_id)

    @router.get(
        "/messages/{message_id}/trace",
        response_model=Trace,
        responses=_FOUND,
        summary="The message's closed loop: every message of its correlation id, in time order",
    )
    async def message_trace(_who: Viewer, message_id: MessageId) -> Trace:
        return await ops.trace((await ops.message(message_id)).correlation_id)

    @router.get("/traces/{correlation_id}", response_model=Trace, responses=_FOUND, summary="A closed loop by id")
    async def trace(_who: Viewer, correlation_id: Annotated[str, Path(min_length=1, max_length=200)]) -> Trace:
        return await ops.trace(correlation_id)

    @router.post(
        "/messages/{message_id}/replay",
        response_model=DeliveryDetail,
        responses=_ACT,
        summary="Deliver a message to one destination again, with the same idempotency key",
    )
    async def replay(who: Operator, message_id: MessageId, body: ReplayRequest) -> DeliveryDetail:
        return await ops.replay(message_id, body.destination, who, force=body.force)

    @router.get(
        "/deliveries", response_model=DeliveryPage, responses=_READ, summary="Deliveries by state (oldest first)"
    )
    async def deliveries(
        _who: Viewer,
        state: Annotated[DeliveryState | None, Query(description="e.g. dead or uncertain")] = None,
        destination: Annotated[str | None, Query(max_length=200)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DeliveryPage:
        return await ops.deliveries(
            state=state.value if state else None, destination=destination, limit=limit, offset=offset
        )

    @router.get(
        "/deliveries/{delivery_id}",
        response_model=DeliveryDetail,
        responses=_FOUND,
        summary="One delivery with every attempt and error",
    )
    async def delivery(_who: Viewer, delivery_id: DeliveryId) -> DeliveryDetail:
        return await ops.delivery(delivery_id)

    @router.post(
        "/deliveries/{delivery_id}/retry",
        response_model=DeliveryDetail,
        responses=_ACT,
        summary="Retry a dead delivery now, with a fresh retry budget",
    )
    async def retry(who: Operator, delivery_id: DeliveryId) -> DeliveryDetail:
        return await ops.retry(delivery_id, who)

    @router.post(
        "/deliveries/{delivery_id}/resolve",
        response_model=DeliveryDetail,
        responses=_ACT,
        summary="Resolve an uncertain delivery: the receiver has it (delivered), or send it again (resend)",
    )
    async def resolve(who: Operator, delivery_id: DeliveryId, body: ResolveRequest) -> DeliveryDetail:
        return await ops.resolve(delivery_id, body.resolution, who)

    @router.get("/paper", response_model=list[PaperItem], responses=_READ, summary="The paper queue (纸质送达)")
    async def paper_queue(
        _who: Viewer,
        state: Annotated[Literal["paper_pending", "paper_delivered"], Query()] = "paper_pending",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[PaperItem]:
        return await ops.paper_queue(state, limit=limit)

    @router.post(
        "/paper/render",
        response_model=PaperRendered,
        responses=_ACT,
        summary="Render unprinted items into one PDF; they are then printed (electronic retries end)",
    )
    async def paper_render(who: Operator, body: PaperRender) -> PaperRendered:
        return await ops.paper_render(body.ids, who)

    @router.get(
        "/paper/files/{name}",
        response_class=FileResponse,
        responses=_FOUND | {200: {"content": {"application/pdf": {}}, "description": "the rendered PDF"}},
        summary="Download a rendered PDF",
    )
    async def paper_file(_who: Viewer, name: Annotated[str, Path(max_length=200)]) -> FileResponse:
        return FileResponse(ops.paper_file(name), media_type="application/pdf", filename=name)

    def paper_action(path: str, summary: str, model: Any = PaperItem) -> Callable[[Any], Any]:
        return router.post(path, response_model=model, responses=_ACT, summary=summary)

    @paper_action("/paper/{delivery_id}/confirm", "Record the signed 送达回证: the item becomes paper_delivered")
    async def paper_confirm(who: Operator, delivery_id: DeliveryId, body: PaperConfirm) -> PaperItem:
        return await ops.paper_confirm(delivery_id, body, who)

    @paper_action(
        "/paper/{delivery_id}/recall",
        "Return an unprinted fallback item to electronic delivery",
        DeliveryDetail,
    )
    async def paper_recall(who: Operator, delivery_id: DeliveryId) -> DeliveryDetail:
        return await ops.paper_recall(delivery_id, who)

    @paper_action("/paper/{delivery_id}/return", "Record that the item could not be served (it stays open)")
    async def paper_return(who: Operator, delivery_id: DeliveryId, body: PaperReturn) -> PaperItem:
        return await ops.paper_return(delivery_id, body.reason, who)

    @router.get("/mapping", response_model=MappingStatus, responses=_READ, summary="审管事项关联映射清单 versions")
    async def mapping(_who: Viewer) -> MappingStatus:
        return await ops.mapping()

    @router.get(
        "/calendar",
        response_model=CalendarStatus,
        responses=_READ | {503: {"model": Problem, "description": "a stored schedule is invalid"}},
        summary="Working-day calendar: which years are exact and which estimated",
    )
    async def calendar(_who: Viewer) -> CalendarStatus:
        return ops.calendar()

    return router
