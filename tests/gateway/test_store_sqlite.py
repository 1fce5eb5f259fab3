"""What only the SQLite store does: one process per database file (the contract shared with PostgreSQL is
in ``test_store.py``)."""

from __future__ import annotations

import pytest

from gateway.store.sqlite import SQLiteStore, StoreLockedError


async def test_one_process_per_database_file(tmp_path) -> None:
    first = SQLiteStore(tmp_path / "x.db")
    await first.open()
    try:
        with pytest.raises(StoreLockedError, match="in use by another shenguan process"):
            await SQLiteStore(tmp_path / "x.db").open()
        reader = SQLiteStore(tmp_path / "x.db")
        await reader.open(exclusive=False)  # status readers do not need the lock
        await reader.close()
    finally:
        await first.close()
