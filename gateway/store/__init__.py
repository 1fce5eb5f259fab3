"""Persistence: the store protocol and its backends, chosen by URL."""

from gateway.store.base import (
    TERMINAL_STATES,
    DeliveryState,
    IngestResult,
    LeasedDelivery,
    Outcome,
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
    "Rejection",
    "Route",
    "Router",
    "Store",
    "open_store",
]


def open_store(
    url: str, *, sqlite_synchronous: str = "FULL", audit_algorithm: str | None = None, audit_mode: str = "metadata"
) -> Store:
    """A store for ``url``: a file path or ``sqlite:///path`` (PostgreSQL URLs come with that backend)."""
    from gateway.store.sqlite import SQLiteStore

    if url.startswith(("postgresql://", "postgres://")):
        raise ValueError("the PostgreSQL store is not available in this version; use an SQLite path")
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SQLiteStore(path, synchronous=sqlite_synchronous, audit_algorithm=audit_algorithm, audit_mode=audit_mode)
