"""The audit chain (全程留痕): every state change, hash-linked, verifiable.

Each entry's hash covers its own fields and the previous entry's hash, so changing, removing or
reordering any entry breaks every link after it, and ``verify`` names the first broken one. Entries are
appended inside the same transaction as the change they record — a state change without its entry, or
an entry without its change, cannot be committed.

Entries hold metadata only (ids, business keys, states, verdicts, error kinds, who did what): never a
payload, so the chain carries no personal data and can be kept as long as the law asks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["GENESIS", "AuditEntry", "VerifyResult", "entry_hash", "verify_entries"]

GENESIS = "0" * 64


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


def entry_hash(prev_hash: str, seq: int, at: float, kind: str, subject: str, detail: str) -> str:
    """SHA-256 over the previous hash and this entry's fields, unambiguously delimited."""
    text = "\x1f".join((prev_hash, str(seq), repr(float(at)), kind, subject, detail))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_broken": self.first_broken, "reason": self.reason}


def verify_entries(entries: Iterable[AuditEntry]) -> VerifyResult:
    """Walk the chain in ``seq`` order (streamed) and report the first entry that does not hold."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for e in entries:
        if e.seq != expected_seq:
            return VerifyResult(False, checked, e.seq, f"entry {expected_seq} is missing (found {e.seq} next)")
        if e.prev_hash != prev:
            return VerifyResult(False, checked, e.seq, f"entry {e.seq} does not link to entry {e.seq - 1}")
        if entry_hash(e.prev_hash, e.seq, e.at, e.kind, e.subject, e.detail) != e.hash:
            return VerifyResult(False, checked, e.seq, f"entry {e.seq} ({e.kind} {e.subject}) was altered")
        prev = e.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked)
