"""Adapter discovery through the ``shenguan.adapters`` entry-point group.

Built-in adapters register the same way third parties do, so there is one path to test. A broken
third-party adapter is reported by name and does not stop the others from loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from adapters.base import Adapter

__all__ = ["ENTRY_POINT_GROUP", "AdapterLoadError", "LoadedAdapter", "available", "load"]

ENTRY_POINT_GROUP = "shenguan.adapters"


class AdapterLoadError(RuntimeError):
    """An adapter named in config is unknown or failed to import."""


@dataclass(frozen=True, slots=True)
class LoadedAdapter:
    name: str
    origin: str  # distribution name and version, or the module path
    adapter: type[Adapter] | None
    error: str | None = None


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def _load_one(ep: EntryPoint) -> LoadedAdapter:
    try:
        obj = ep.load()
    except Exception as exc:  # any import-time failure of third-party code
        return LoadedAdapter(ep.name, _origin(ep), None, f"{type(exc).__name__}: {exc}")
    missing = [attr for attr in ("from_config", "capabilities", "version") if not hasattr(obj, attr)]
    if missing:
        return LoadedAdapter(ep.name, _origin(ep), None, f"{ep.value} lacks {', '.join(missing)}")
    return LoadedAdapter(ep.name, _origin(ep), obj)


def available() -> list[LoadedAdapter]:
    """Every registered adapter, loaded or with the reason it could not be."""
    return [_load_one(ep) for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)]


def load(name: str) -> type[Adapter]:
    """The adapter class registered as ``name``; ``AdapterLoadError`` saying why when it cannot be had."""
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})) or "none"
        raise AdapterLoadError(f"no adapter named {name!r} is installed (known: {known})")
    loaded = _load_one(matches[0])
    if loaded.adapter is None:
        raise AdapterLoadError(f"adapter {name!r} from {loaded.origin} failed to load: {loaded.error}")
    return loaded.adapter
