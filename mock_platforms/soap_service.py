"""The SOAP face of the ``soap`` mock: two spyne services with WSDLs, mounted into the mocks' ASGI app.

Why spyne: the adapter under test is a zeep client, and a fake that only pattern-matched envelopes would let
it get away with anything. spyne is a real SOAP 1.1 stack: it publishes a WSDL (``?wsdl``) that zeep must
read, validates incoming envelopes against its schema, and answers with proper faults.

- ``/soap/auth`` — ``AuthService.login(user, password)`` → token string; wrong credentials → SOAP fault
  ``Client.AuthenticationFailed``.
- ``/soap/exchange`` — ``ExchangeService.service(xml)`` → reply XML string, and ``query(sn)`` → reply XML
  string; both read the token from the ``X-Token`` HTTP header and the service id from ``X-Service-Id``.

spyne speaks WSGI; ``a2wsgi`` runs it on worker threads inside the ASGI app, which is why ``SoapPlatform``
guards its state with a lock. The platform reaches the service functions through the WSGI environ, so every
``create_app()`` gets its own independent exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from a2wsgi import WSGIMiddleware
from spyne import Application, ServiceBase, Unicode, rpc
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from starlette.types import ASGIApp

from mock_platforms.soap import SoapPlatform

__all__ = ["AUTH_NAMESPACE", "EXCHANGE_NAMESPACE", "SERVICE_ID_HEADER", "TOKEN_HEADER", "asgi_app", "wsgi_app"]

AUTH_NAMESPACE = "urn:shenguan:mock:soap:auth"
EXCHANGE_NAMESPACE = "urn:shenguan:mock:soap:exchange"
TOKEN_HEADER = "X-Token"
SERVICE_ID_HEADER = "X-Service-Id"
_ENVIRON_KEY = "mock_platforms.soap.platform"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _platform(ctx: Any) -> SoapPlatform:
    platform: SoapPlatform = ctx.transport.req_env[_ENVIRON_KEY]
    return platform


def _header(ctx: Any, name: str) -> str | None:
    value: str | None = ctx.transport.req_env.get("HTTP_" + name.upper().replace("-", "_"))
    return value


class AuthService(ServiceBase):
    """``login``: the 前置机's session token, to be sent as ``X-Token`` on every exchange call."""

    @rpc(Unicode, Unicode, _returns=Unicode)
    def login(ctx: Any, user: str | None, password: str | None) -> str:
        token = _platform(ctx).login(user or "", password or "")
        if token is None:
            raise Fault("Client.AuthenticationFailed", "用户名或密码错误")
        return token


class ExchangeService(ServiceBase):
    """``service(xml)`` hands one ``ExchangeMessage`` over; ``query(sn)`` asks what became of one."""

    @rpc(Unicode, _returns=Unicode)
    def service(ctx: Any, xml: str | None) -> str:
        return _platform(ctx).service(_header(ctx, TOKEN_HEADER), _header(ctx, SERVICE_ID_HEADER), xml)

    @rpc(Unicode, _returns=Unicode)
    def query(ctx: Any, sn: str | None) -> str:
        return _platform(ctx).query(_header(ctx, TOKEN_HEADER), _header(ctx, SERVICE_ID_HEADER), sn)


def _application(service: type[ServiceBase], namespace: str, name: str) -> WsgiApplication:
    return WsgiApplication(
        Application([service], tns=namespace, name=name, in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    )


def wsgi_app(platform: SoapPlatform) -> WsgiApp:
    """The WSGI app serving ``/auth`` and ``/exchange`` (paths relative to the ``/soap`` mount)."""
    routes = {
        "/auth": _application(AuthService, AUTH_NAMESPACE, "AuthService"),
        "/exchange": _application(ExchangeService, EXCHANGE_NAMESPACE, "ExchangeService"),
    }

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        application = routes.get(environ.get("PATH_INFO", ""))
        if application is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"no such SOAP service: use /auth or /exchange"]
        environ[_ENVIRON_KEY] = platform
        result: Iterable[bytes] = application(environ, start_response)
        return result

    return dispatch


def asgi_app(platform: SoapPlatform) -> ASGIApp:
    """``wsgi_app`` behind ``a2wsgi``, ready for ``app.mount("/soap", …)``."""
    return WSGIMiddleware(wsgi_app(platform), workers=4)  # type: ignore[arg-type]
