"""A 前置库 (exchange database) table as a source: read pending rows, mark each one once it is stored.

The exchange pattern: the specialty system inserts rows with ``SJSCZT = 0`` (pending); the reader takes them
and writes back ``3`` (accepted) or ``2``/``-1`` (failed, reason in ``SJWXYY``). Column names and status
values come from the mapping's ``[source]`` (``TableSource``); the database is any SQLAlchemy URL, so the
SQLite file of the mock and a city's PostgreSQL, MySQL, Oracle or 达梦 exchange database are read the same.

**Never a row twice, every row marked.** A row is marked only after the gateway committed it (its message
or rejection) together with the cursor, and the cursor names the rows of that page (``{"taken": [keys]}``).
So a crash between the commit and the marking leaves rows that are still pending but *named by the stored
cursor*: the next ``poll`` marks them first — with the outcomes ``acknowledge`` was given if this process
still has them, else by decoding them again (decoding is pure, so it gives the verdict the gateway stored:
stored → accepted, ``DecodeError`` → rejected with the same reason) — and never hands them out again. Rows
not named by the cursor are read by status, not by position, so a row the specialty system committed late,
with a lower ``order_column`` value than rows already read, is still read. A page is never read while the
previous one is unmarked (a failed mark makes the next poll retry it, or fail), so the cursor always covers
every row that is taken but not yet marked.

**Not blocking the event loop.** SQLAlchemy Core's synchronous API runs on one worker thread per adapter,
rather than SQLAlchemy's asyncio extension: exchange databases are often reached through drivers that exist
only in a synchronous form (Oracle, 达梦, KingbaseES, ODBC), a source makes one round trip per page (so a
thread costs nothing measurable), and one thread serialises the adapter's reads and marks on one pooled
connection without any locking of ours.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from adapters.base import PollPage, RawRecord
from adapters.errors import AdapterError, PermanentError, RetryableError
from adapters.mapped.spec import TableSource

__all__ = ["ExchangeTable", "RowKey"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
RowKey = int | str
Judge = Callable[[dict[str, Any]], str | None]
"""Decides a row's fate again (``None``: it decodes, so it was stored; else the rejection reason)."""


class ExchangeTable:
    """Reads and marks one exchange table. ``columns`` are the native fields the mapping reads."""

    def __init__(
        self,
        name: str,
        spec: TableSource,
        url: str,
        *,
        columns: Iterable[str],
        judge: Judge,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self._judge = judge
        self._wanted = sorted({*columns, spec.order_column, spec.status_column, *filter(None, [spec.reason_column])})
        options = {"pool_pre_ping": True, "hide_parameters": True, **(engine_options or {})}
        self._engine: Engine = sa.create_engine(url, **options)
        self.url_shown = self._engine.url.render_as_string(hide_password=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"shenguan-{name}-db")
        self._table: sa.Table | None = None
        self._keys: dict[str, str] = {}  # reflected column name -> the name the mapping uses
        self._columns: dict[str, str] = {}  # the name the mapping uses -> reflected column name
        self._unmarked: dict[RowKey, tuple[int | str, str | None]] = {}  # acknowledged, not yet written
        self._settled_cursor: str | None = None  # the stored cursor whose rows are known to be marked

    # -- public -----------------------------------------------------------------------------------------------
    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        """Mark what ``cursor`` says was taken and is still pending, then read up to ``limit`` pending rows."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        taken = [] if cursor == self._settled_cursor and not self._unmarked else _taken(cursor)
        marks = dict(self._unmarked)
        rows, settled = await self._run(self._poll_sync, taken, marks, limit)
        for key in marks:
            self._unmarked.pop(key, None)
        self._settled_cursor = cursor
        if settled:
            log.info("exchange.settled", source=self.name, rows=settled, cursor_rows=len(taken))
        keys = [self._key_of(row) for row in rows]
        records = [RawRecord(row, position=f"{self.spec.table}#{key}") for row, key in zip(rows, keys, strict=True)]
        next_cursor = _cursor(keys) if keys else cursor
        return PollPage(records=records, next_cursor=next_cursor, has_more=len(rows) >= limit)

    async def acknowledge(self, next_cursor: str | None, outcomes: Sequence[tuple[RowKey, str | None]]) -> None:
        """Mark stored rows (``None``: accepted; else the rejection reason). Never raises for a failed write:
        the marks are kept and written before the next read."""
        for key, reason in outcomes:
            status = self.spec.accepted if reason is None else self.spec.rejected
            self._unmarked[key] = (status, reason)
        marks = dict(self._unmarked)
        try:
            await self._run(self._mark_sync, marks)
        except AdapterError as exc:
            log.warning("exchange.mark_failed", source=self.name, rows=len(marks), reason=exc.reason)
            return
        for key in marks:
            self._unmarked.pop(key, None)
        self._settled_cursor = next_cursor

    def key_of(self, record: Mapping[str, Any]) -> RowKey:
        """The row's identity: its ``order_column`` value."""
        return self._key_of(record)

    async def aclose(self) -> None:
        try:
            await self._run(self._engine.dispose)
        finally:
            self._executor.shutdown(wait=True)

    # -- worker thread ----------------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the adapter's DB thread; database failures become the error taxonomy."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sa.exc.NoSuchTableError:
            raise PermanentError(f"exchange table {self.spec.table} does not exist in {self.url_shown}") from None
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
            raise RetryableError(f"exchange database unavailable: {_brief(exc)}") from None
        except sa.exc.SQLAlchemyError as exc:
            raise RetryableError(f"exchange database error: {_brief(exc)}") from None

    def _poll_sync(
        self, taken: list[RowKey], marks: dict[RowKey, tuple[int | str, str | None]], limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        with self._engine.begin() as conn:
            table = self._reflect(conn)
            settled = self._settle(conn, table, taken, marks) if (taken or marks) else 0
            query = (
                sa.select(table)
                .where(table.c[self._col(self.spec.status_column)] == self.spec.pending)
                .order_by(table.c[self._col(self.spec.order_column)])
                .limit(limit)
            )
            rows = [self._record(row) for row in conn.execute(query).mappings()]
        return rows, settled

    def _settle(
        self,
        conn: Connection,
        table: sa.Table,
        taken: list[RowKey],
        marks: dict[RowKey, tuple[int | str, str | None]],
    ) -> int:
        """Mark the rows of the stored page that are still pending; returns how many were."""
        order = table.c[self._col(self.spec.order_column)]
        status = table.c[self._col(self.spec.status_column)]
        keys = list(dict.fromkeys([*taken, *marks]))
        pending = conn.execute(sa.select(table).where(order.in_(keys), status == self.spec.pending)).mappings()
        decided: dict[RowKey, tuple[int | str, str | None]] = {}
        for row in pending:
            record = self._record(row)
            key = self._key_of(record)
            if key in marks:
                decided[key] = marks[key]
            else:  # this process never saw the page: decide again, as the gateway did when it stored it
                reason = self._judge(record)
                decided[key] = (self.spec.accepted if reason is None else self.spec.rejected, reason)
        self._write_marks(conn, table, decided)
        return len(decided)

    def _mark_sync(self, marks: dict[RowKey, tuple[int | str, str | None]]) -> None:
        with self._engine.begin() as conn:
            self._write_marks(conn, self._reflect(conn), marks)

    def _write_marks(
        self, conn: Connection, table: sa.Table, marks: Mapping[RowKey, tuple[int | str, str | None]]
    ) -> None:
        """One UPDATE per row, guarded by ``status = pending``: a row already marked is never overwritten."""
        if not marks:
            return
        order = table.c[self._col(self.spec.order_column)]
        status = table.c[self._col(self.spec.status_column)]
        guard = sa.and_(order == sa.bindparam("_key"), status == self.spec.pending)
        accepted = [{"_key": k, "_status": s} for k, (s, reason) in marks.items() if reason is None]
        rejected = [{"_key": k, "_status": s, "_reason": r} for k, (s, r) in marks.items() if r is not None]
        if accepted:
            conn.execute(sa.update(table).where(guard).values({status: sa.bindparam("_status")}), accepted)
        if rejected:
            values: dict[Any, Any] = {status: sa.bindparam("_status")}
            if self.spec.reason_column is not None:
                limit = self.spec.reason_max_length
                for mark in rejected:
                    mark["_reason"] = mark["_reason"][:limit]
                values[table.c[self._col(self.spec.reason_column)]] = sa.bindparam("_reason")
            conn.execute(sa.update(table).where(guard).values(values), rejected)

    def _reflect(self, conn: Connection) -> sa.Table:
        """The table's columns, read once; the mapping's column names must all exist (case-insensitively)."""
        if self._table is not None:
            return self._table
        table = sa.Table(self._table_name(conn), sa.MetaData(), schema=self.spec.db_schema, autoload_with=conn)
        by_upper = {column.name.upper(): column.name for column in table.columns}
        missing = [name for name in self._wanted if name.upper() not in by_upper]
        if missing:
            raise PermanentError(
                f"exchange table {self.spec.table} has no column(s) {', '.join(missing)} named by the mapping"
            )
        self._keys = {by_upper[name.upper()]: name for name in self._wanted}
        self._columns = {mapped: reflected for reflected, mapped in self._keys.items()}
        self._table = table
        return table

    def _table_name(self, conn: Connection) -> str:
        """The table's name as the database spells it: ``SPGL_XMSPSXBLXXB`` created unquoted in PostgreSQL is
        ``spgl_xmspsxblxxb``, and SQLAlchemy treats a name with capitals as case-sensitive."""
        names = sa.inspect(conn).get_table_names(schema=self.spec.db_schema)
        if self.spec.table in names:
            return self.spec.table
        matches = [name for name in names if name.upper() == self.spec.table.upper()]
        return matches[0] if len(matches) == 1 else self.spec.table

    def _col(self, mapped_name: str) -> str:
        """The reflected name of a column the mapping names."""
        return self._columns[mapped_name]

    def _record(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """A row as the mapping sees it: the columns it names under its spelling, the others as they are."""
        return {self._keys.get(name, name): value for name, value in row.items()}

    def _key_of(self, record: Mapping[str, Any]) -> RowKey:
        value = record[self.spec.order_column]
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise PermanentError(
                f"order column {self.spec.order_column} must hold integers or text, got {type(value).__name__}"
            )
        return value


def _cursor(keys: Sequence[RowKey]) -> str:
    return json.dumps({"taken": list(keys)}, separators=(",", ":"), ensure_ascii=False)


def _taken(cursor: str | None) -> list[RowKey]:
    """The row keys a stored cursor names; ``PermanentError`` for a cursor this source did not write."""
    if cursor is None:
        return []
    try:
        data = json.loads(cursor)
        keys = data["taken"]
        if not isinstance(keys, list) or not all(isinstance(k, int | str) and not isinstance(k, bool) for k in keys):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise PermanentError(
            "the stored cursor was not written by an exchange-table source (was the source's adapter changed?)"
        ) from None
    return keys


def _brief(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's statement dump (it may carry a reason being written)."""
    orig = getattr(exc, "orig", None)
    cause = orig if orig is not None else exc
    text = str(cause).splitlines()[0] if str(cause) else ""
    return f"{type(cause).__name__}: {text[:200]}"
