"""Request signing of the 政务服务一体化平台 gateway (``x-tif-*`` headers).

The platform authenticates each call by a signature over a timestamp and a single-use nonce, so a
captured request cannot be replayed. Hence a fresh timestamp and nonce for *every* request, a retry
included: resending an old signature is exactly what the platform's replay check (code 4012) refuses.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

__all__ = ["signature", "signed_headers"]


def signature(*, timestamp: str, token: str, nonce: str) -> str:
    """Lowercase SHA-256 hex of ``timestamp + token + nonce + timestamp`` (the platform's rule)."""
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode()).hexdigest()


def signed_headers(
    *,
    paasid: str,
    token: str,
    clock: Callable[[], float] = time.time,
    nonce_factory: Callable[[], str] = lambda: secrets.token_hex(16),
) -> dict[str, str]:
    """The four ``x-tif-*`` headers for one request, with a new timestamp and nonce."""
    timestamp = str(int(clock()))
    nonce = nonce_factory()
    return {
        "x-tif-paasid": paasid,
        "x-tif-timestamp": timestamp,
        "x-tif-nonce": nonce,
        "x-tif-signature": signature(timestamp=timestamp, token=token, nonce=nonce),
    }
