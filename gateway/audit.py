"""The audit chain (全程留痕): every state change, hash-linked, verifiable.

Each entry's hash covers its own fields and the previous entry's hash, so changing, removing or
reordering any entry breaks every link after it, and ``verify_entries`` names the first broken one.
Entries are appended inside the same transaction as the change they record — a state change without
its entry, or an entry without its change, cannot be committed.

Two hash algorithms are offered: SHA-256 and SM3 (GB/T 32905, the 国密 hash that Chinese government
systems are often required to use). A chain uses one algorithm from its first entry to its last; the
store records it beside the chain and ``verify_entries`` is told which one to check with, so a chain
that mixes the two is reported as broken at the first entry hashed differently.

SM3 comes from OpenSSL through ``hashlib`` where the local OpenSSL provides it (microseconds per
entry), else from ``gmssl`` (pure Python, about a millisecond per entry — correct but slow enough to
matter at thousands of state changes per second). Both give the same digest; a test holds them to the
standard's test vectors.

By default (``[audit] mode = "metadata"``) entries hold metadata only (ids, business keys, states,
verdicts, error kinds, who did what): never a payload, so the chain carries no personal data and can be
kept as long as the law asks. ``mode = "full"`` adds the canonical payload of accepted messages, for
deployments whose evidence rules want the content itself in the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ALGORITHMS",
    "GENESIS",
    "AuditAlgorithmError",
    "AuditEntry",
    "VerifyResult",
    "canonical",
    "entry_hash",
    "hex_digest",
    "verify_entries",
]

GENESIS = "0" * 64

Algorithm = Literal["sha256", "sm3"]
ALGORITHMS: tuple[str, ...] = ("sha256", "sm3")


class AuditAlgorithmError(ValueError):
    """An unknown algorithm, or a store whose chain uses another algorithm than the one configured."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    kind: str  # e.g. message.accepted, message.suppressed, delivery.delivered, paper.confirmed
    subject: str  # the id the entry is about (message id, delivery id, mapping version)
    detail: str  # canonical JSON of the metadata
    prev_hash: str
    hash: str


def canonical(detail: dict[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _sm3_openssl(data: bytes) -> str:
    return hashlib.new("sm3", data).hexdigest()


def _sm3_gmssl(data: bytes) -> str:
    from gmssl import func, sm3  # imported lazily: only needed where OpenSSL lacks SM3

    return str(sm3.sm3_hash(func.bytes_to_list(data)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SM3: Callable[[bytes], str] = _sm3_openssl if "sm3" in hashlib.algorithms_available else _sm3_gmssl
_DIGESTS: dict[str, Callable[[bytes], str]] = {"sha256": _sha256, "sm3": lambda data: _SM3(data)}


def hex_digest(data: bytes, algorithm: str = "sha256") -> str:
    """Lowercase hex digest of ``data`` with ``algorithm`` (``sha256`` or ``sm3``; both 256 bits)."""
    try:
        fn = _DIGESTS[algorithm]
    except KeyError:
        raise AuditAlgorithmError(f"unknown audit hash algorithm {algorithm!r} (known: sha256, sm3)") from None
    return fn(data)


def entry_hash(
    prev_hash: str, seq: int, at: float, kind: str, subject: str, detail: str, *, algorithm: str = "sha256"
) -> str:
    """Hash over the previous hash and this entry's fields, unambiguously delimited.

    Shared by every store backend: the same entry hashes the same wherever it was written.
    """
    text = "\x1f".join((prev_hash, str(seq), repr(float(at)), kind, subject, detail))
    return hex_digest(text.encode("utf-8"), algorithm)


BreakKind = Literal["missing", "link", "hash", "algorithm"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str | None = None
    kind: str | None = None  # the broken entry's kind (message.accepted, delivery.dead, …)
    subject: str | None = None
    broken: BreakKind | None = None  # what broke: a missing entry, a link, a hash, a mixed algorithm
    algorithm: str = "sha256"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "algorithm": self.algorithm,
            "first_broken": self.first_broken,
            "kind": self.kind,
            "subject": self.subject,
            "broken": self.broken,
            "reason": self.reason,
        }


def verify_entries(entries: Iterable[AuditEntry], *, algorithm: str = "sha256") -> VerifyResult:
    """Walk the chain in ``seq`` order (streamed) and report the first entry that does not hold.

    An entry whose hash matches under the *other* algorithm is reported as such: the chain was
    written, or tampered with, in two algorithms, and no entry after it can be trusted.
    """
    hex_digest(b"", algorithm)  # unknown algorithm: fail before walking anything
    prev = GENESIS
    expected_seq = 1
    checked = 0

    def broken(e: AuditEntry, what: BreakKind, reason: str) -> VerifyResult:
        return VerifyResult(False, checked, e.seq, reason, e.kind, e.subject, what, algorithm)

    for e in entries:
        if e.seq != expected_seq:
            return broken(e, "missing", f"entry {expected_seq} is missing (found {e.seq} next)")
        if e.prev_hash != prev:
            return broken(e, "link", f"entry {e.seq} ({e.kind} {e.subject}) does not link to entry {e.seq - 1}")
        if entry_hash(e.prev_hash, e.seq, e.at, e.kind, e.subject, e.detail, algorithm=algorithm) != e.hash:
            for other in ALGORITHMS:
                if (
                    other != algorithm
                    and entry_hash(e.prev_hash, e.seq, e.at, e.kind, e.subject, e.detail, algorithm=other) == e.hash
                ):
                    return broken(
                        e,
                        "algorithm",
                        f"entry {e.seq} ({e.kind} {e.subject}) is hashed with {other}, the chain with {algorithm}: "
                        "a chain must not mix algorithms",
                    )
            return broken(e, "hash", f"entry {e.seq} ({e.kind} {e.subject}) was altered")
        prev = e.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, algorithm=algorithm)
