"""``MappedAdapter``: a source adapter whose whole knowledge of the platform is one mapping file.

It is the engine behind "a new specialty system is a new mapping file, no Python": the file says where the
records are (a 前置库 table, or a JSON feed) and how each field becomes canonical; this class only wires the
file's parts together — ``spec`` (the checked file), ``codec`` (record → envelope), ``table`` / ``jsonfeed``
(the I/O) — behind the ``SourceAdapter`` protocol, plus ``acknowledge`` so a table's rows are marked once the
gateway has stored them.

Config (a ``[sources.NAME]`` section with ``adapter = "mapped"``)::

    mapping = "mappings/my_system.toml"      # TOML or YAML; relative paths from the working directory
    url = "postgresql+psycopg://reader@exchange-db/qzk"   # table sources: a SQLAlchemy URL
    engine_options = { pool_size = 2 }       # optional, passed to sqlalchemy.create_engine
    base_url = "https://licences.example/api" # JSON sources
    headers = { Authorization = "Bearer …" }  # optional, JSON sources
    timeout_s = 10                           # optional, JSON sources
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
import structlog
from sqlalchemy.engine import make_url

from adapters.base import Capabilities, Direction, PollPage, RawRecord, RecordOutcome
from adapters.errors import DecodeError
from adapters.mapped.codec import MappedCodec
from adapters.mapped.jsonfeed import JsonFeed
from adapters.mapped.spec import JsonSource, MappingSpec, TableSource, load_mapping
from adapters.mapped.table import ExchangeTable
from adapters.options import base_url_option, positive_float_option, str_option
from schemas import Envelope

__all__ = ["MappedAdapter"]

log = structlog.get_logger(__name__)


class MappedAdapter:
    """Source adapter driven by a mapping file (``adapters.mapped.spec``)."""

    version: ClassVar[str] = "0.1.0"
    # The event type depends on the mapping file; ``event_types`` on the instance says which.
    capabilities: ClassVar[Capabilities] = Capabilities(direction=Direction.source)

    def __init__(
        self,
        name: str,
        spec: MappingSpec,
        *,
        url: str | None = None,
        engine_options: Mapping[str, Any] | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.event_types: tuple[str, ...] = (spec.mapping.event_type,)
        self.codec = MappedCodec(spec)
        self._table: ExchangeTable | None = None
        self._feed: JsonFeed | None = None
        if isinstance(spec.source, TableSource):
            if not url:
                raise ValueError(f"adapter {name!r}: mapping {spec.mapping.name} reads a table; give option 'url'")
            self._table = ExchangeTable(
                name, spec.source, url, columns=spec.native_fields(), judge=self._judge, engine_options=engine_options
            )
        else:
            if not base_url:
                raise ValueError(f"adapter {name!r}: mapping {spec.mapping.name} reads a JSON feed; give 'base_url'")
            self._feed = JsonFeed(
                name, spec.source, base_url=base_url, headers=headers, timeout_s=timeout_s, transport=transport
            )

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``mapping`` (file), then ``url`` / ``engine_options`` for a table source, or
        ``base_url`` / ``headers`` / ``timeout_s`` for a JSON one. Raises ``ValueError`` naming the problem."""
        adapter = f"mapped adapter {name!r}"
        spec = load_mapping(Path(str_option(options, "mapping", adapter=adapter)))
        return cls._with_spec(name, spec, options, adapter=adapter)

    @classmethod
    def _with_spec(cls, name: str, spec: MappingSpec, options: Mapping[str, Any], *, adapter: str) -> Self:
        if isinstance(spec.source, JsonSource):
            return cls(
                name,
                spec,
                base_url=base_url_option(options, adapter=adapter),
                headers=_str_table(options, "headers", adapter=adapter),
                timeout_s=positive_float_option(options, "timeout_s", 10.0, adapter=adapter),
            )
        engine_options = options.get("engine_options", {})
        if not isinstance(engine_options, Mapping):
            raise ValueError(f"{adapter}: option 'engine_options' must be a table")
        url = str_option(options, "url", adapter=adapter)
        try:
            return cls(name, spec, url=url, engine_options=engine_options)
        except ImportError as exc:  # the URL names a DB driver that is not installed
            raise ValueError(f"{adapter}: option 'url': the database driver is not installed ({exc})") from None
        except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends: a URL it cannot use
            detail = str(exc).replace(url, _shown_url(url))  # never echo a password from the URL
            raise ValueError(f"{adapter}: option 'url' cannot be used: {type(exc).__name__}: {detail}") from None

    async def aclose(self) -> None:
        if self._table is not None:
            await self._table.aclose()
        if self._feed is not None:
            await self._feed.aclose()

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        """One page: pending rows of the table (after marking what ``cursor`` took), or the feed after it."""
        if self._table is not None:
            return await self._table.poll(cursor, limit)
        assert self._feed is not None
        return await self._feed.poll(cursor, limit)

    def decode(self, record: RawRecord) -> list[Envelope]:
        """One record → one envelope of the mapping's event type (``adapters.mapped.codec``)."""
        try:
            envelope = self.codec.decode(record.payload, source=self.name)
        except DecodeError as exc:
            log.info("mapped.decode_rejected", source=self.name, position=record.position, reason=exc.reason)
            raise
        return [envelope]

    async def acknowledge(self, page: PollPage, outcomes: Sequence[RecordOutcome]) -> None:
        """Mark a stored page's rows (table sources); a JSON feed has nothing to mark."""
        if self._table is None:
            return
        table = self._table
        marks = [(table.key_of(outcome.record.payload), outcome.rejected) for outcome in outcomes]
        await table.acknowledge(page.next_cursor, marks)

    def _judge(self, record: dict[str, Any]) -> str | None:
        """What the poller decided for this row when it stored it (decode is pure, so it decides the same)."""
        try:
            self.codec.decode(record, source=self.name)
        except DecodeError as exc:
            return exc.reason
        except Exception as exc:  # the poller's wording for an adapter bug, so both marks read alike
            return f"adapter {self.name!r} failed to decode: {type(exc).__name__}: {exc}"
        return None


def _shown_url(url: str) -> str:
    """The URL with its password hidden, for messages; a string that is no URL at all is not shown."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<not a database URL>"


def _str_table(options: Mapping[str, Any], key: str, *, adapter: str) -> dict[str, str]:
    value = options.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{adapter}: option {key!r} must be a table of text values")
    return dict(value)
