"""Persistence: the store protocol and its backends, chosen by URL."""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from gateway.store.base import (
    TERMINAL_STATES,
    DeliveryState,
    IngestResult,
    LeasedDelivery,
    Outcome,
    PageCounts,
    Rejection,
    Route,
    Router,
    Store,
)

__all__ = [
    "TERMINAL_STATES",
    "DeliveryState",
    "IngestResult",
    "LeasedDelivery",
    "Outcome",
    "PageCounts",
    "Rejection",
    "Route",
    "Router",
    "Store",
    "is_postgres_url",
    "open_store",
]


if TYPE_CHECKING:
    from gateway.store.postgres import PostgresStore
    from gateway.store.sqlite import SQLiteStore

    #: A concrete backend: ``Store`` plus the paper, mapping, audit and operator operations both implement.
    Backend: TypeAlias = SQLiteStore | PostgresStore


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    audit_algorithm: str | None = None,
    audit_mode: str = "metadata",
    pool_size: int = 10,
    clock: Callable[[], float] = time.time,
) -> Store:
    """A store for ``url``: ``postgresql://…`` / ``postgres://…`` (several instances on one database, a pool
    of at most ``pool_size`` connections), else a file path or ``sqlite:///path`` (one process). ``clock`` is
    what the store stamps times with (tests inject one to move time without sleeping)."""
    if is_postgres_url(url):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(
            url, pool_max=pool_size, audit_algorithm=audit_algorithm, audit_mode=audit_mode, clock=clock
        )
    from gateway.store.sqlite import SQLiteStore

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SQLiteStore(
        path, synchronous=sqlite_synchronous, audit_algorithm=audit_algorithm, audit_mode=audit_mode, clock=clock
    )
