"""The declarative mapping adapter: a specialty system described by a mapping file (TOML or YAML), no Python.

- ``spec`` — the mapping file's model and ``load_mapping`` (every problem listed, led by its key).
- ``transforms`` — one field rule applied to one record (value maps, code tables, date formats, …).
- ``codec`` — a record → its canonical envelope, via the event type's payload model.
- ``table`` — a 前置库 table read through SQLAlchemy Core, rows marked once stored.
- ``jsonfeed`` — an HTTP JSON feed paged by a cursor.
- ``adapter`` — ``MappedAdapter``, registered as ``mapped``.
"""

from adapters.mapped.adapter import MappedAdapter
from adapters.mapped.codec import MappedCodec
from adapters.mapped.spec import MappingError, MappingSpec, load_mapping, parse_mapping

__all__ = ["MappedAdapter", "MappedCodec", "MappingError", "MappingSpec", "load_mapping", "parse_mapping"]
