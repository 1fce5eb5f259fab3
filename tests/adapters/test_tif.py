"""The x-tif scheme in one place: what the zwfw adapter signs, ingest verifies — and the mock agrees."""

from __future__ import annotations

import pytest

from adapters.tif import MemoryNonceStore, TifRefused, TifVerifier, signature, signed_headers
from mock_platforms.zwfw import sign as mock_sign


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_signature_agrees_with_the_independent_mock() -> None:
    assert signature(timestamp="1800000000", token="t0k", nonce="abc") == mock_sign("1800000000", "t0k", "abc")


async def test_signed_headers_verify_once_within_the_window() -> None:
    clock = Clock()
    nonces = MemoryNonceStore(clock)
    verifier = TifVerifier({"p": "secret"}, nonces, window_s=300, clock=clock)
    headers = signed_headers(paasid="p", token="secret", clock=clock)
    assert await verifier.verify(headers) == "p"
    with pytest.raises(TifRefused) as replay:
        await verifier.verify(headers)
    assert replay.value.kind == "replayed_nonce"
    clock.now += 301
    with pytest.raises(TifRefused) as stale:
        await verifier.verify(headers)
    assert stale.value.kind == "stale_timestamp"
    assert len(nonces) == 1


async def test_nonces_are_forgotten_once_their_window_has_passed() -> None:
    clock = Clock()
    nonces = MemoryNonceStore(clock)
    for i in range(100):
        assert await nonces.use_nonce("s", f"n{i}", clock.now + 300)
    clock.now += 301
    assert await nonces.use_nonce("s", "fresh", clock.now + 300)
    assert len(nonces) == 1, "bounded by the window, not by history"


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"x-tif-signature": ""}, "missing"),
        ({"x-tif-paasid": "q"}, "unknown_paasid"),
        ({"x-tif-timestamp": "12ab"}, "stale_timestamp"),
        ({"x-tif-signature": "0" * 64}, "bad_signature"),
        ({"x-tif-nonce": "x" * 200}, "bad_signature"),
    ],
)
async def test_each_refusal_is_named_and_spends_no_nonce(change: dict, kind: str) -> None:
    clock = Clock()
    nonces = MemoryNonceStore(clock)
    verifier = TifVerifier({"p": "secret"}, nonces, clock=clock)
    with pytest.raises(TifRefused) as refused:
        await verifier.verify(signed_headers(paasid="p", token="secret", clock=clock) | change)
    assert refused.value.kind == kind and "secret" not in refused.value.reason
    assert len(nonces) == 0
