"""The web console: server-rendered pages over the same operations as the admin API, for operators.

Plain HTML forms and a little CSS (Jinja2 templates shipped in the package; no JavaScript, no build step).
Pages: the dashboard (counts by state per destination, each destination's oldest waiting delivery), dead
letters and uncertain deliveries with their actions, the paper queue, message search, a message with its
deliveries, attempts, errors and closed-loop trace, and a delivery with its attempt log.

Sessions: a login form checks the configured password and sets a signed cookie (itsdangerous) holding the
user name, a CSRF token and a fingerprint of the password hash — the role is read from the configuration
on every request, so removing a user or changing a password ends their sessions at once. Every action is a
POST carrying the session's CSRF token, and the cookie is ``SameSite=Strict`` and ``HttpOnly``.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' local ``Annotated`` aliases at runtime.
import dataclasses
import hmac
import json
import secrets
import time
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError

from gateway.admin.actions import Operations
from gateway.admin.auth import Authenticator, Principal
from gateway.admin.models import CST, PaperConfirm
from gateway.config import AdminSettings
from gateway.store.base import DeliveryState, MessageQuery, NotFoundError, StateConflictError

__all__ = ["Console"]

SESSION_COOKIE = "shenguan_session"
LOGIN_COOKIE = "shenguan_login"
FLASH_COOKIE = "shenguan_flash"
PAGE = 50
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
}


class _Forbidden(Exception):
    """A viewer asked for an action, or a form's CSRF token did not match: a 403 page, nothing changed."""


class _LoginRequired(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


def _local(path: str | None, default: str) -> str:
    """``path`` if it is a page of this console, else ``default`` (no open redirects)."""
    if path and path.startswith("/admin/") and not path.startswith("//") and "\\" not in path and "\n" not in path:
        return path
    return default


def _dt(value: datetime | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, tz=CST)
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def _age(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = max(0, int(time.time() - value.timestamp()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _pretty(value: Any) -> str:
    """JSON for people: indented, Chinese as Chinese (Jinja's ``tojson`` escapes every non-ASCII character)."""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


class Console:
    """The console's routes and session handling; ``install(app)`` mounts it under ``/admin/``."""

    def __init__(self, ops: Operations, auth: Authenticator, settings: AdminSettings) -> None:
        self.ops = ops
        self.auth = auth
        self.settings = settings
        # Without a configured secret, sessions are signed with a per-process key: they end at restart.
        self._signer = URLSafeTimedSerializer(settings.session_secret or secrets.token_urlsafe(32), salt="console")
        env = Environment(loader=PackageLoader("gateway.admin", "templates"), autoescape=select_autoescape())
        env.filters["dt"] = _dt
        env.filters["age"] = _age
        env.filters["pretty"] = _pretty
        self.templates = Jinja2Templates(env=env)

    # -- sessions -------------------------------------------------------------------------------------------

    def _session(self, request: Request) -> tuple[Principal, str] | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=self.settings.session_ttl_s)
        except BadSignature:
            return None
        name, token, fingerprint = data.get("u"), data.get("c"), data.get("f")
        if not isinstance(name, str) or not isinstance(token, str) or not isinstance(fingerprint, str):
            return None
        role, current = self.auth.role_of(name), self.auth.fingerprint_of(name)
        if role is None or current is None or not hmac.compare_digest(current, fingerprint):
            return None
        return Principal(name, role, "console"), token

    def _viewer(self, request: Request) -> tuple[Principal, str]:
        session = self._session(request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _LoginRequired(target)
        return session

    def _operator(self, request: Request, csrf: str) -> Principal:
        who, token = self._viewer(request)
        if not hmac.compare_digest(token.encode(), csrf.encode()):
            raise _Forbidden("this form has expired (CSRF check failed): go back, reload the page and try again")
        if not who.can_act:
            raise _Forbidden(f"{who.name} is a viewer: only an operator can do this")
        return who

    def _cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
            path="/admin",
        )

    # -- rendering ------------------------------------------------------------------------------------------

    def _page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        session = self._session(request)
        flash = None
        if raw := request.cookies.get(FLASH_COOKIE):
            try:
                flash = self._signer.loads(raw, max_age=300)
            except BadSignature:
                flash = None
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "who": session[0] if session else None,
                "csrf": session[1] if session else "",
                "flash": flash,
                "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                **context,
            },
            status_code=status_code,
            headers=_HEADERS,
        )
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/admin")
        return response

    def _done(self, back: str, text: str, *, kind: str = "ok", href: str | None = None) -> RedirectResponse:
        response = RedirectResponse(back, status_code=303, headers=_HEADERS)
        self._cookie(response, FLASH_COOKIE, self._signer.dumps({"kind": kind, "text": text, "href": href}), 300)
        return response

    async def _act(self, back: str, action: Any, success: str, href: str | None = None) -> RedirectResponse:
        """Run one operator action; its error, if any, is shown on the page the operator comes back to."""
        try:
            await action
        except (NotFoundError, StateConflictError, ValueError) as exc:
            return self._done(back, str(exc.args[0]) if exc.args else str(exc), kind="error")
        return self._done(back, success, href=href)

    # -- routes ---------------------------------------------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        async def login_required(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, _LoginRequired)
            return RedirectResponse(f"/admin/login?next={quote(exc.target, safe='')}", status_code=303)

        async def forbidden(request: Request, exc: Exception) -> Response:
            return self._page(request, "error.html", status_code=403, message=str(exc))

        app.add_exception_handler(_LoginRequired, login_required)
        app.add_exception_handler(_Forbidden, forbidden)
        app.include_router(self.router())

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/admin", include_in_schema=False)
        ops = self.ops
        Csrf = Annotated[str, Form()]
        Back = Annotated[str | None, Form()]

        @router.get("/login", response_class=HTMLResponse)
        async def login_form(request: Request, next: str | None = None) -> Response:
            nonce = secrets.token_urlsafe(16)
            response = self._page(
                request, "login.html", next=_local(next, "/admin/"), nonce=nonce, enabled=self.auth.enabled
            )
            self._cookie(response, LOGIN_COOKIE, self._signer.dumps(nonce), 600)
            return response

        @router.post("/login", response_class=HTMLResponse)
        async def login(
            request: Request,
            username: Annotated[str, Form(max_length=200)],
            password: Annotated[str, Form(max_length=1000)],
            nonce: Annotated[str, Form(max_length=200)],
            next: Annotated[str | None, Form()] = None,
        ) -> Response:
            target = _local(next, "/admin/")
            try:
                expected = self._signer.loads(request.cookies.get(LOGIN_COOKIE, ""), max_age=600)
            except BadSignature:
                expected = None
            if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), nonce.encode()):
                return self._done(
                    f"/admin/login?next={quote(target, safe='')}", "The login form expired.", kind="error"
                )
            who = await self.auth.password(username, password, via="console")
            if who is None:
                fresh = secrets.token_urlsafe(16)
                response = self._page(
                    request,
                    "login.html",
                    status_code=401,
                    next=target,
                    nonce=fresh,
                    enabled=self.auth.enabled,
                    error="Wrong user name or password.",
                )
                self._cookie(response, LOGIN_COOKIE, self._signer.dumps(fresh), 600)
                return response
            fingerprint = self.auth.fingerprint_of(who.name) or ""
            session = self._signer.dumps({"u": who.name, "c": secrets.token_urlsafe(24), "f": fingerprint})
            response = RedirectResponse(target, status_code=303)
            self._cookie(response, SESSION_COOKIE, session, int(self.settings.session_ttl_s))
            response.delete_cookie(LOGIN_COOKIE, path="/admin")
            return response

        @router.post("/logout")
        async def logout(request: Request, csrf: Csrf) -> Response:
            self._viewer(request)
            response = RedirectResponse("/admin/login", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/admin")
            return response

        @router.get("/", response_class=HTMLResponse)
        async def dashboard(request: Request) -> Response:
            self._viewer(request)
            return self._page(request, "dashboard.html", overview=await ops.overview())

        async def delivery_list(request: Request, state: str, title: str, offset: int) -> Response:
            self._viewer(request)
            page = await ops.deliveries(state=state, destination=None, limit=PAGE, offset=max(0, offset))
            return self._page(request, "deliveries.html", page=page, state=state, title=title)

        @router.get("/dead", response_class=HTMLResponse)
        async def dead(request: Request, offset: int = 0) -> Response:
            return await delivery_list(request, "dead", "Dead letters", offset)

        @router.get("/uncertain", response_class=HTMLResponse)
        async def uncertain(request: Request, offset: int = 0) -> Response:
            return await delivery_list(request, "uncertain", "Uncertain deliveries", offset)

        @router.get("/messages", response_class=HTMLResponse)
        async def messages(
            request: Request,
            q: str = "",
            correlation_id: str = "",
            state: str = "",
            destination: str = "",
            received_from: str = "",
            received_to: str = "",
            offset: int = 0,
        ) -> Response:
            self._viewer(request)
            error = None
            try:
                query = _message_query(q, correlation_id, state, destination, received_from, received_to, offset)
            except ValueError as exc:
                query, error = None, str(exc)
            page = await ops.find_messages(query) if query else None
            form = {
                "q": q,
                "correlation_id": correlation_id,
                "state": state,
                "destination": destination,
                "received_from": received_from,
                "received_to": received_to,
            }
            return self._page(
                request, "messages.html", page=page, form=form, error=error, states=[s.value for s in DeliveryState]
            )

        @router.get("/messages/{message_id}", response_class=HTMLResponse)
        async def message(request: Request, message_id: str) -> Response:
            self._viewer(request)
            try:
                detail = await ops.message(message_id)
            except NotFoundError as exc:
                return self._page(request, "error.html", status_code=404, message=str(exc))
            trace = await ops.trace(detail.correlation_id)
            attempts = {d.id: (await ops.delivery(d.id)) for d in detail.deliveries}
            return self._page(
                request,
                "message.html",
                m=detail,
                trace=trace,
                attempts=attempts,
                destinations=sorted(ops.gateway.config.destinations),
            )

        @router.get("/deliveries/{delivery_id}", response_class=HTMLResponse)
        async def delivery(request: Request, delivery_id: int) -> Response:
            self._viewer(request)
            try:
                d = await ops.delivery(delivery_id)
            except NotFoundError as exc:
                return self._page(request, "error.html", status_code=404, message=str(exc))
            return self._page(request, "delivery.html", d=d)

        @router.post("/deliveries/{delivery_id}/retry")
        async def retry(request: Request, delivery_id: int, csrf: Csrf, back: Back = None) -> Response:
            who = self._operator(request, csrf)
            href = f"/admin/deliveries/{delivery_id}"
            return await self._act(
                _local(back, href), ops.retry(delivery_id, who), f"Delivery {delivery_id} queued for retry.", href
            )

        @router.post("/deliveries/{delivery_id}/resolve")
        async def resolve(
            request: Request, delivery_id: int, csrf: Csrf, resolution: Annotated[str, Form()], back: Back = None
        ) -> Response:
            who = self._operator(request, csrf)
            href = f"/admin/deliveries/{delivery_id}"
            done = "marked delivered" if resolution == "delivered" else "queued to be sent again"
            return await self._act(
                _local(back, href), ops.resolve(delivery_id, resolution, who), f"Delivery {delivery_id} {done}.", href
            )

        @router.post("/messages/{message_id}/replay")
        async def replay(
            request: Request,
            message_id: str,
            csrf: Csrf,
            destination: Annotated[str, Form()],
            force: Annotated[bool, Form()] = False,
        ) -> Response:
            who = self._operator(request, csrf)
            back = f"/admin/messages/{quote(message_id, safe='')}"
            return await self._act(
                back, ops.replay(message_id, destination, who, force=force), f"Replay to {destination} queued."
            )

        @router.get("/paper", response_class=HTMLResponse)
        async def paper(request: Request, state: str = "paper_pending") -> Response:
            self._viewer(request)
            state = state if state in ("paper_pending", "paper_delivered") else "paper_pending"
            items = await ops.paper_queue(state)
            today = datetime.now(CST).strftime("%Y-%m-%d")
            return self._page(request, "paper.html", items=items, state=state, today=today)

        @router.post("/paper/render")
        async def paper_render(
            request: Request, csrf: Csrf, ids: Annotated[list[int] | None, Form()] = None
        ) -> Response:
            who = self._operator(request, csrf)
            try:
                result = await ops.paper_render(ids or None, who)
            except (NotFoundError, StateConflictError, ValueError) as exc:
                return self._done("/admin/paper", str(exc), kind="error")
            if not result.rendered:
                return self._done("/admin/paper", "Nothing to render: every selected item is already printed.")
            return self._done(
                "/admin/paper",
                f"Rendered {len(result.rendered)} item(s) into {result.file}; they are now printed.",
                href=f"/admin/paper/files/{result.file}",
            )

        @router.get("/paper/files/{name}")
        async def paper_file(request: Request, name: str) -> Response:
            self._viewer(request)
            try:
                path = ops.paper_file(name)
            except NotFoundError as exc:
                return self._page(request, "error.html", status_code=404, message=str(exc))
            return FileResponse(path, media_type="application/pdf", filename=name)

        @router.post("/paper/{delivery_id}/confirm")
        async def paper_confirm(
            request: Request,
            delivery_id: int,
            csrf: Csrf,
            receiver: Annotated[str, Form()],
            signed_at: Annotated[str, Form()],
            method: Annotated[str, Form()],
            note: Annotated[str | None, Form()] = None,
        ) -> Response:
            who = self._operator(request, csrf)
            try:
                body = PaperConfirm(receiver=receiver, signed_at=signed_at, method=method, note=note or None)  # type: ignore[arg-type]
            except ValidationError as exc:
                problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors(include_url=False))
                return self._done("/admin/paper", f"Receipt not recorded: {problems}", kind="error")
            return await self._act(
                "/admin/paper",
                ops.paper_confirm(delivery_id, body, who),
                f"Receipt for {delivery_id} recorded: paper_delivered.",
            )

        @router.post("/paper/{delivery_id}/recall")
        async def paper_recall(request: Request, delivery_id: int, csrf: Csrf) -> Response:
            who = self._operator(request, csrf)
            return await self._act(
                "/admin/paper",
                ops.paper_recall(delivery_id, who),
                f"Delivery {delivery_id} returned to electronic delivery.",
                f"/admin/deliveries/{delivery_id}",
            )

        @router.post("/paper/{delivery_id}/return")
        async def paper_return(
            request: Request, delivery_id: int, csrf: Csrf, reason: Annotated[str, Form()]
        ) -> Response:
            who = self._operator(request, csrf)
            return await self._act(
                "/admin/paper",
                ops.paper_return(delivery_id, reason, who),
                f"Delivery {delivery_id} recorded as not served; it stays in the queue.",
            )

        return router


def _message_query(
    q: str, correlation_id: str, state: str, destination: str, received_from: str, received_to: str, offset: int
) -> MessageQuery:
    """The search form as a query; ``q`` is a message id or a business key."""
    q, correlation_id, destination = q.strip(), correlation_id.strip(), destination.strip()
    if state and state not in DeliveryState.__members__:
        raise ValueError(f"unknown state {state!r}")

    def moment(text: str, name: str) -> float | None:
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} must be a date or date and time, e.g. 2026-11-20 or 2026-11-20T16:40") from None
        return (value if value.tzinfo else value.replace(tzinfo=CST)).timestamp()

    base = MessageQuery(
        correlation_id=correlation_id or None,
        state=state or None,
        destination=destination or None,
        received_from=moment(received_from, "from"),
        received_to=moment(received_to, "to"),
        limit=PAGE,
        offset=max(0, offset),
    )
    if not q:
        return base
    # One box for both: a message id is a UUID, a business key (办件编号 …) never is.
    try:
        uuid.UUID(q)
    except ValueError:
        return dataclasses.replace(base, business_key=q)
    return dataclasses.replace(base, message_id=q)
