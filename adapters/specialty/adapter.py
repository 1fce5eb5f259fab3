"""``SpecialtyAdapter``: the 工程建设项目审批管理系统 前置库, i.e. the mapping engine plus a packaged mapping.

There is no specialty-specific code here on purpose: the 工程建设 exchange table ``SPGL_XMSPSXBLXXB`` is
described by ``spgl_xmspsxblxxb.toml`` beside this module, and everything else — reading pending rows,
marking them 3 or 2 with ``SJWXYY`` once stored, never handing a row out twice after a crash — is the
``mapped`` engine's. A city whose exchange table differs (other column names, other codes) copies the file
and sets the ``mapping`` option; the event type must stay ``approval.decided``, which is what makes an
approval that also arrives from the 政务服务一体化平台 the same fact.

Config::

    [sources.gcjs]
    adapter = "specialty"
    url = "sqlite:///.shenguan/mock-specialty.db"   # any SQLAlchemy URL of the exchange database
    # mapping = "my-city-spgl.toml"                 # optional: a customised copy of the packaged mapping
    # engine_options = { pool_size = 2 }           # optional, passed to sqlalchemy.create_engine
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from adapters.base import Capabilities, Direction
from adapters.mapped import MappedAdapter, load_mapping
from adapters.mapped.spec import MappingSpec, TableSource

__all__ = ["PACKAGED_MAPPING", "SpecialtyAdapter", "packaged_mapping"]

PACKAGED_MAPPING = Path(__file__).with_name("spgl_xmspsxblxxb.toml")
EVENT_TYPE = "approval.decided"


def packaged_mapping() -> MappingSpec:
    """The 工程建设 ``SPGL_XMSPSXBLXXB`` mapping shipped with shenguan."""
    return load_mapping(PACKAGED_MAPPING)


class SpecialtyAdapter(MappedAdapter):
    """Source adapter for the 工程建设 前置库 (``specialty``)."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(direction=Direction.source, event_types=(EVENT_TYPE,))

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``url`` (SQLAlchemy URL of the exchange database), optional ``mapping`` and ``engine_options``."""
        adapter = f"specialty adapter {name!r}"
        mapping = options.get("mapping")
        if mapping is not None and (not isinstance(mapping, str) or not mapping.strip()):
            raise ValueError(f"{adapter}: option 'mapping' must be the path of a mapping file")
        spec = load_mapping(Path(mapping)) if mapping else packaged_mapping()
        if spec.mapping.event_type != EVENT_TYPE or not isinstance(spec.source, TableSource):
            raise ValueError(
                f"{adapter}: mapping {spec.origin} must read a table into {EVENT_TYPE} "
                "(for anything else use adapter = 'mapped')"
            )
        return cls._with_spec(name, spec, options, adapter=adapter)
