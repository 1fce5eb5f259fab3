"""Runnable fakes of the platforms shenguan relays between, with fault injection (DESIGN §3, §4).

Each fake speaks only its native format and imports nothing else of ours: a fake that shared the adapters'
code could not catch their mistakes. ``create_app()`` serves them all on one ASGI app, one path prefix per
platform; ``/{platform}/_mock/`` is the control plane tests and benchmarks drive.

Modules, one idea each:
- ``app`` — ``create_app()``: fresh state per call, fault and traffic layers outermost.
- ``zwfw`` / ``zwfw_linkage`` — 政务服务一体化平台: x-tif signed, cursor-paged 办件 change feed; the 审管联动 linkage
  inbox (requestId-idempotent, status query), the bureau's linkage feed, its feedback and answers, requests.
- ``hlwjg`` / ``hlwjg_loop`` — 互联网+监管: OAuth2 bearer, idempotent approval-record, claim and loop-message
  intake, status query, event feed; supervision acting on its tasks (``generate`` kind ``loop``), answers.
- ``credit`` / ``credit_fields`` — 公共信用信息平台: batch upload of 双公示 records, a verdict per record,
  recordId idempotency, batched status query; the XK_*/CF_* field checks.
- ``soap`` / ``soap_service`` — legacy SOAP exchange (前置机): login token, ``service(xml)`` with its own result
  codes, not idempotent, ``query(sn)``; spyne services with WSDLs mounted under ``/soap`` via a2wsgi.
- ``control`` — the shared ``_mock`` endpoints (records, faults, generate, inject, reset, traffic).
- ``faults`` — fault settings and the ASGI middleware that applies them (including real dropped connections).
- ``traffic`` — bounded log of raw native requests.
- ``generator`` / ``catalog`` / ``identifiers`` — seeded realistic 办件, reference tables, check digits.
- ``server`` / ``cli`` — uvicorn in the background of an event loop, or ``shenguan mocks serve``.
"""

from mock_platforms.app import create_app

__all__ = ["create_app"]
