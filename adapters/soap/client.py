"""The SOAP side of the adapter: zeep ``AsyncClient``s for the auth and exchange services over one httpx client.

This module is the adapter's cut-off to the network, and it is where the XML hardening is configured:

- every document zeep parses — WSDL and replies — goes through ``HARDENED``: ``forbid_dtd``,
  ``forbid_entities``, ``forbid_external`` and ``xml_huge_tree=False``. lxml is told not to resolve
  entities, and zeep refuses any ``<!DOCTYPE>`` before the tree is used;
- the WSDLs are fetched with the *async* httpx client and handed to zeep as bytes. zeep's own WSDL loader
  is synchronous and would block the event loop; ours is given a sync client that refuses every request,
  so nothing can make it fetch (an import in a hostile WSDL included);
- HTTP headers (the token and service id the 前置机 reads) travel in a ``ContextVar``, set for the duration
  of one call: zeep's ``settings(extra_http_headers=…)`` is thread-local, and concurrent deliveries on one
  event loop would see each other's headers;
- zeep's ``AsyncTransport.post`` logs whole request bodies at DEBUG — personal data included — so ours does
  not log bodies at all.

Everything that goes wrong is raised as the adapter taxonomy, classified as for a *send* (a request that
may have been applied is ``OutcomeUnknownError``). Callers that only read (``login``, ``query``) downgrade
to ``RetryableError`` themselves.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import httpx
import zeep
import zeep.exceptions
from lxml import etree
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from adapters.errors import (
    AdapterError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
    classify_transport_error,
)
from adapters.http import retry_after_s
from adapters.masking import mask_text

__all__ = ["HARDENED", "ExchangeClient", "hardened_settings"]

_HTTP_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("soap_http_headers", default=None)
_FORBIDDEN = (
    zeep.exceptions.DTDForbidden,
    zeep.exceptions.EntitiesForbidden,
    zeep.exceptions.ExternalReferenceForbidden,
)


def hardened_settings() -> zeep.Settings:
    """zeep settings that refuse DTDs, entity declarations and external fetches, and keep lxml's size limits."""
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True, xml_huge_tree=False)


HARDENED = hardened_settings()


class _RefuseBlockingFetch(httpx.BaseTransport):
    """The sync transport zeep would load WSDL imports with: it refuses, so the event loop never blocks."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise zeep.exceptions.ExternalReferenceForbidden(f"fetch of {request.url} refused: WSDLs are loaded async")


class _Transport(AsyncTransport):
    """zeep's async transport on our client, with per-call headers, no body logging and status classification."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__(client=client, wsdl_client=httpx.Client(transport=_RefuseBlockingFetch()))

    async def post(self, address: str, message: Any, headers: Mapping[str, str]) -> httpx.Response:
        response = await self.client.post(address, content=message, headers={**headers, **(_HTTP_HEADERS.get() or {})})
        _check_status(response)
        return response

    async def aclose(self) -> None:
        self.wsdl_client.close()


def _check_status(response: httpx.Response) -> None:
    """Classify the status lines that never carry a SOAP envelope; 200 and 500 (faults) go on to zeep."""
    status = response.status_code
    if status in (200, 500):
        return
    if status in (429, 503):
        raise RetryableError(f"soap HTTP {status}", code=str(status), retry_after_s=retry_after_s(response))
    if status == 408:
        raise RetryableError("soap HTTP 408: request not received in time", code="408")
    if status >= 500:
        raise OutcomeUnknownError(f"soap HTTP {status}; the exchange may have processed it", code=str(status))
    if status >= 400:
        raise PermanentError(f"soap HTTP {status} (check base_url and the service paths)", code=str(status))
    raise RetryableError(f"soap unexpected HTTP {status} (check base_url)", code=str(status))


def _fault(exc: zeep.exceptions.Fault) -> AdapterError:
    """A SOAP fault: ``Client…`` means the request was refused for its content, ``Server…`` that it may not."""
    code = str(exc.code or "")
    local = code.rpartition(":")[2]
    text = mask_text(str(exc.message or ""))[:200]
    if not local:  # zeep's reading of an HTTP 500 that carries XML but no SOAP fault
        return OutcomeUnknownError("soap HTTP 500 without a SOAP fault; the exchange may have processed it")
    if local.startswith("Client"):
        return PermanentError(f"soap fault {local}: {text}", code=local)
    return OutcomeUnknownError(f"soap fault {local}: {text}; the exchange may have processed it", code=local)


class ExchangeClient:
    """Calls ``login``, ``service`` and ``query`` on the 前置机; zeep clients are built once, on first use."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        auth_path: str = "auth",
        exchange_path: str = "exchange",
        settings: zeep.Settings | None = None,
    ) -> None:
        self._http = client
        self._transport = _Transport(client)
        self._settings = settings or hardened_settings()
        self._addresses = {"auth": f"{base_url}/{auth_path}", "exchange": f"{base_url}/{exchange_path}"}
        self._operation = {"auth": "login", "exchange": "service"}
        self._proxies: dict[str, AsyncServiceProxy] = {}
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def login(self, user: str, password: str) -> Any:
        return await self._call("auth", "login", {}, user=user, password=password)

    async def service(self, xml: str, headers: Mapping[str, str]) -> Any:
        return await self._call("exchange", "service", headers, xml=xml)

    async def query(self, sn: str, headers: Mapping[str, str]) -> Any:
        return await self._call("exchange", "query", headers, sn=sn)

    async def _call(self, service: str, operation: str, headers: Mapping[str, str], **arguments: str) -> Any:
        proxy = await self._proxy(service)
        reset = _HTTP_HEADERS.set(dict(headers))
        try:
            return await proxy[operation](**arguments)
        except AdapterError:
            raise
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
        except OSError as exc:  # a raw socket error from a custom transport: the request may have left
            raise OutcomeUnknownError(f"no reply: {type(exc).__name__}: {exc}") from exc
        except zeep.exceptions.Fault as exc:
            raise _fault(exc) from exc
        except _FORBIDDEN as exc:
            raise OutcomeUnknownError(
                f"soap reply refused unparsed: {type(exc).__name__} (a DTD or entity declaration; XML hardening)"
            ) from exc
        except zeep.exceptions.TransportError as exc:
            # Its message quotes the whole reply (which may echo personal data): keep the status and the parser's
            # own complaint, e.g. libxml2 refusing an entity bomb ("Maximum entity amplification factor exceeded").
            parser = exc.__context__ if isinstance(exc.__context__, zeep.exceptions.XMLSyntaxError) else None
            why = f": {mask_text(str(parser))[:200]}" if parser is not None else ""
            raise OutcomeUnknownError(
                f"soap reply unreadable (HTTP {exc.status_code}, not a SOAP envelope){why}"
            ) from exc
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
            raise OutcomeUnknownError(f"soap reply unreadable: {type(exc).__name__}") from exc
        finally:
            _HTTP_HEADERS.reset(reset)

    async def _proxy(self, service: str) -> AsyncServiceProxy:
        """The service proxy, after fetching and parsing its WSDL once (``RetryableError`` when that fails)."""
        proxy = self._proxies.get(service)
        if proxy is not None:
            return proxy
        async with self._lock:
            proxy = self._proxies.get(service)
            if proxy is None:
                proxy = await self._load(service)
                self._proxies[service] = proxy
            return proxy

    async def _load(self, service: str) -> AsyncServiceProxy:
        address = self._addresses[service]
        url = f"{address}?wsdl"
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise RetryableError(f"soap WSDL {url} unreachable: {classify_transport_error(exc).reason}") from exc
        except OSError as exc:
            raise RetryableError(f"soap WSDL {url} unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise RetryableError(
                f"soap WSDL {url}: HTTP {response.status_code}",
                code=str(response.status_code),
                retry_after_s=retry_after_s(response),
            )
        try:
            client = zeep.AsyncClient(io.BytesIO(response.content), transport=self._transport, settings=self._settings)
            binding = _binding_with(client, self._operation[service])
        except (zeep.exceptions.Error, etree.LxmlError, ValueError, LookupError) as exc:
            raise RetryableError(f"soap WSDL {url} unusable: {type(exc).__name__}") from exc
        # The 前置机's WSDL often advertises an internal address (behind NAT); the configured one is used.
        return AsyncServiceProxy(client, binding, address=address)


def _binding_with(client: zeep.AsyncClient, operation: str) -> Any:
    for binding in client.wsdl.bindings.values():
        try:
            binding.get(operation)
        except ValueError:
            continue
        return binding
    raise LookupError(f"no binding in the WSDL offers {operation!r}")
