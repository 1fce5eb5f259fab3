"""The 政务网关 ``x-tif-*`` signed-header scheme (DESIGN §3): signing a request and verifying one.

Both sides live here, in the adapter SDK, because both are needed by more than one party: the zwfw
adapter signs the requests it makes, and the gateway's push ingest (``POST /ingest/{source}``) verifies
requests that platforms make to it. One implementation of the rule means one place to get it right.
(The bundled mock platforms keep their own copy on purpose: a fake that shares the code it tests
cannot catch its mistakes.)

The scheme: ``x-tif-signature`` = lowercase SHA-256 hex of ``timestamp + token + nonce + timestamp``,
where the token is a secret shared with the ``x-tif-paasid``. A request is accepted when its timestamp is
within the window of the receiver's clock, its signature matches, and its nonce has not been used
before inside that window. A nonce is remembered for as long as its timestamp would still be accepted,
so the replay memory is bounded by the window, not by traffic history.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

__all__ = [
    "HEADERS",
    "MemoryNonceStore",
    "NonceStore",
    "TifRefused",
    "TifVerifier",
    "signature",
    "signed_headers",
]

HEADERS = ("x-tif-paasid", "x-tif-timestamp", "x-tif-nonce", "x-tif-signature")
MAX_NONCE_LENGTH = 128

RefusalKind = Literal["missing", "unknown_paasid", "stale_timestamp", "bad_signature", "replayed_nonce"]


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
    """The four ``x-tif-*`` headers for one request, with a new timestamp and nonce.

    A retry must be signed afresh: resending an old signature is exactly what the replay check refuses.
    """
    timestamp = str(int(clock()))
    nonce = nonce_factory()
    return {
        "x-tif-paasid": paasid,
        "x-tif-timestamp": timestamp,
        "x-tif-nonce": nonce,
        "x-tif-signature": signature(timestamp=timestamp, token=token, nonce=nonce),
    }


class TifRefused(Exception):
    """A request the scheme refuses; ``kind`` says why, ``reason`` says it in words (never the secret)."""

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: RefusalKind = kind
        self.reason = reason


class NonceStore(Protocol):
    """Where spent nonces are remembered. ``use_nonce`` is atomic: of two concurrent calls with the same
    nonce exactly one returns True. The gateway's store implements it durably (replays are refused after
    a restart, and across instances on a shared database)."""

    async def use_nonce(self, scope: str, nonce: str, expires_at: float) -> bool: ...


class MemoryNonceStore:
    """Spent nonces in memory, forgotten when their window has passed (for a single process, and tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: set[tuple[str, str]] = set()
        self._expiry: deque[tuple[float, tuple[str, str]]] = deque()

    async def use_nonce(self, scope: str, nonce: str, expires_at: float) -> bool:
        now = self._clock()
        while self._expiry and self._expiry[0][0] < now:
            self._seen.discard(self._expiry.popleft()[1])
        key = (scope, nonce)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._expiry.append((expires_at, key))
        return True

    def __len__(self) -> int:
        return len(self._seen)


class TifVerifier:
    """Verify ``x-tif-*`` headers against known ``paasid → token`` credentials.

    The checks run cheapest and least revealing first: all headers present, paasid known, timestamp in
    the window, signature (compared in constant time), and only then the nonce is spent — so a request
    refused for another reason does not burn its nonce, and an unsigned flood cannot fill the nonce store.
    """

    def __init__(
        self,
        credentials: Mapping[str, str],
        nonces: NonceStore,
        *,
        window_s: float = 300.0,
        scope: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = dict(credentials)
        self._nonces = nonces
        self.window_s = window_s
        self._scope = scope
        self._clock = clock

    def check_signature(self, headers: Mapping[str, str]) -> tuple[str, int, str]:
        """Everything but the nonce: returns (paasid, timestamp, nonce) or raises ``TifRefused``."""
        missing = [h for h in HEADERS if not headers.get(h)]
        if missing:
            raise TifRefused("missing", f"missing header {', '.join(missing)}")
        paasid, ts, nonce, sig = (headers[h] for h in HEADERS)
        token = self._credentials.get(paasid)
        if token is None:
            raise TifRefused("unknown_paasid", "x-tif-paasid is not known for this endpoint")
        if not ts.isascii() or not ts.isdigit() or len(ts) > 12:
            raise TifRefused("stale_timestamp", "x-tif-timestamp must be Unix seconds")
        skew = int(ts) - self._clock()
        if abs(skew) > self.window_s:
            raise TifRefused(
                "stale_timestamp",
                f"x-tif-timestamp is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the gateway's clock "
                f"(window ±{self.window_s:.0f} s)",
            )
        if len(nonce) > MAX_NONCE_LENGTH or not nonce.isascii():
            raise TifRefused("bad_signature", f"x-tif-nonce must be at most {MAX_NONCE_LENGTH} ASCII characters")
        expected = signature(timestamp=ts, token=token, nonce=nonce)
        if not hmac.compare_digest(sig.lower().encode("ascii", "replace"), expected.encode("ascii")):
            raise TifRefused("bad_signature", "x-tif-signature does not match")
        return paasid, int(ts), nonce

    async def verify(self, headers: Mapping[str, str]) -> str:
        """Check the headers and spend the nonce; returns the caller's paasid or raises ``TifRefused``."""
        paasid, ts, nonce = self.check_signature(headers)
        # Remembered as long as its timestamp would still be accepted: after that the window refuses it.
        if not await self._nonces.use_nonce(f"{self._scope}|{paasid}", nonce, ts + self.window_s):
            raise TifRefused("replayed_nonce", "x-tif-nonce was already used (replayed request)")
        return paasid
