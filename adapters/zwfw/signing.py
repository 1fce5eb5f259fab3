"""Request signing of the 政务服务一体化平台 gateway (``x-tif-*`` headers).

The platform authenticates each call by a signature over a timestamp and a single-use nonce, so a
captured request cannot be replayed. Hence a fresh timestamp and nonce for *every* request, a retry
included: resending an old signature is exactly what the platform's replay check (code 4012) refuses.
The scheme itself (signing and verifying) lives in ``adapters.tif``, shared with the gateway's push ingest.
"""

from __future__ import annotations

from adapters.tif import signature, signed_headers

__all__ = ["signature", "signed_headers"]
