"""Who may use the admin API and the console, and as what.

Two roles: ``viewer`` reads; ``operator`` reads and acts (retry, resolve, replay, paper operations).
Accounts live in the configuration, secrets only as hashes::

    [admin.users.wang]
    role = "operator"
    password_hash = "scrypt$16384$8$1$…"   # shenguan admin hash-password
    api_key_hash = "sha256$…"               # shenguan admin new-api-key

* A **password** (console login form, HTTP Basic on the API) is stored as scrypt (stdlib ``hashlib.scrypt``,
  memory-hard), so a leaked configuration does not hand out passwords cheaply.
* An **API key** (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) is 32 random bytes; a key that random
  cannot be guessed from a fast hash, so SHA-256 is enough and scripted calls stay cheap.

Every comparison is constant-time (``hmac.compare_digest``), an unknown user name costs the same scrypt work
as a wrong password (no user enumeration by timing), and neither a secret nor which half of a credential was
wrong is ever logged or told to the client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from gateway.config import AdminSettings

__all__ = [
    "Authenticator",
    "Principal",
    "Role",
    "api_key_hash",
    "hash_password",
    "new_api_key",
    "password_fingerprint",
    "verify_password",
]

# scrypt cost: N=2^14, r=8, p=1 — 16 MiB and some tens of milliseconds per check (the common interactive setting).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user: name, role, and the channel used (``api`` or ``console``)."""

    name: str
    role: Role
    via: str

    @property
    def can_act(self) -> bool:
        return self.role == Role.operator

    @property
    def actor(self) -> str:
        """How the audit chain names who did something: ``console:wang``, ``api:ci-bot``."""
        return f"{self.via}:{self.name}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password`` (what ``shenguan admin hash-password`` prints)."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; a malformed hash never matches (and never raises)."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM, dklen=32
        )
        return hmac.compare_digest(digest, _unb64(expected))
    except (ValueError, TypeError):
        return False


def new_api_key() -> tuple[str, str]:
    """A fresh API key and the hash to put in the configuration (the key itself is shown once, never stored)."""
    key = "sg_" + secrets.token_urlsafe(32)
    return key, api_key_hash(key)


def api_key_hash(key: str) -> str:
    return "sha256$" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def password_fingerprint(encoded: str) -> str:
    """A short digest of a stored password hash: sessions carry it, so changing a password ends old sessions."""
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:16]


class Authenticator:
    """Checks credentials against ``[admin.users]``; the role is always read from the configuration."""

    def __init__(self, settings: AdminSettings) -> None:
        self.settings = settings
        # Checked when the user name is unknown, so that case costs the same as a wrong password.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.users)

    def role_of(self, name: str) -> Role | None:
        user = self.settings.users.get(name)
        return Role(user.role) if user else None

    def fingerprint_of(self, name: str) -> str | None:
        user = self.settings.users.get(name)
        return password_fingerprint(user.password_hash) if user and user.password_hash else None

    async def password(self, name: str, password: str, *, via: str) -> Principal | None:
        """The principal for a user name and password, or None; the scrypt work runs off the event loop."""
        user = self.settings.users.get(name)
        encoded = user.password_hash if user and user.password_hash else self._decoy
        ok = await asyncio.to_thread(verify_password, password, encoded)
        if not ok or user is None or not user.password_hash:
            return None
        return Principal(name, Role(user.role), via)

    def api_key(self, key: str, *, via: str = "api") -> Principal | None:
        """The principal owning ``key``, or None. Every configured key is compared, match or not."""
        presented = api_key_hash(key).encode("utf-8")
        found: Principal | None = None
        for name, user in self.settings.users.items():
            stored = (user.api_key_hash or "sha256$").encode("utf-8")
            if hmac.compare_digest(presented, stored) and found is None:
                found = Principal(name, Role(user.role), via)
        return found
