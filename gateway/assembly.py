"""Building a gateway's parts from its configuration: the store and the adapters.

Both the gateway process and its intake process (``gateway.intake_process``) build from the same
``Config``; doing it in one place keeps the two from ever opening a different store or reading an
adapter's options differently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters import Direction
from adapters.registry import load
from gateway.config import Config, ConfigError
from gateway.store import Store, open_store

__all__ = ["build_adapter", "open_configured_store"]


def build_adapter(kind: str, name: str, adapter_name: str, options: dict[str, Any]) -> Any:
    """The adapter of section ``[{kind}.{name}]``; a ``ConfigError`` naming the section when it cannot be built."""
    cls = load(adapter_name)
    direction = cls.capabilities.direction
    wanted = Direction.source if kind == "sources" else Direction.destination
    if direction not in (wanted, Direction.both):
        raise ConfigError(
            f"{kind}.{name}: adapter {adapter_name!r} is a {direction.value} adapter, not a {wanted.value}"
        )
    try:
        return cls.from_config(name, options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{kind}.{name} ({adapter_name}): {exc}") from None


def open_configured_store(config: Config, *, clock: Callable[[], float] = time.time) -> Store:
    """The store ``[gateway] db`` names, with the configured durability, audit chain and pool (not opened yet)."""
    return open_store(
        config.gateway.db,
        sqlite_synchronous=config.gateway.sqlite_synchronous,
        audit_algorithm=config.audit.algorithm,
        audit_mode=config.audit.mode,
        clock=clock,
        pool_size=config.gateway.pg_pool_size,
    )
