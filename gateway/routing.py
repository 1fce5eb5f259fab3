"""Routing: which destinations a message goes to, and by which channel.

Routes come from the config, by event type. A route may require the 审管事项关联映射清单 (mapping list):
then an approval is routed only when the active mapping knows its approval item in its region — an
approval nobody is mapped to supervise must not vanish into a default, it is held as ``unrouted`` (and
routed as soon as an import covers it). The mapping's channel also matters: an item mapped only to the
``paper`` channel gets paper deliveries.

A route may also name the ``sources`` it takes messages from: claims the gateway records itself (默认认领,
source ``shenguan``) go back to the supervision platform, while claims read from that platform must not.

And a route may set ``where`` conditions on the payload (dotted path → accepted values): the credit route
takes ``approval.decided`` only ``where = {result = ["granted"]}``, because a refusal has no 行政许可 to
publish. A message that no route takes counts as unrouted, like one of a type nobody routes.

Classification wins over everything: a ``secret`` (涉密) message is routed to the paper channel of every
destination, so it never reaches a network adapter whatever a route says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from gateway.config import RouteConfig
from gateway.mapping import Channel, MappingList, MappingRow
from gateway.store.base import Route, Store
from schemas import Classification, Envelope

__all__ = ["ConfigRouter", "MappingFollower", "mapping_from_rows"]

log = structlog.get_logger("shenguan.routing")

Where = tuple[tuple[str, frozenset[str]], ...]  # (dotted payload path, accepted values), all must hold


def mapping_from_rows(rows: Iterable[Mapping[str, Any]], *, source: str = "store", digest: str = "") -> MappingList:
    """Rebuild a ``MappingList`` from the row dicts the store keeps for the active version."""
    parsed = tuple(MappingRow(**{**row, "channel": Channel(row["channel"])}) for row in rows)
    return MappingList(rows=parsed, problems=(), source=source, digest=digest)


class ConfigRouter:
    """Routes by event type from ``[[routes]]``; unknown types and unmapped approvals get no route."""

    def __init__(self, routes: Sequence[RouteConfig], mapping: MappingList | None = None) -> None:
        # Per type: (route, the sources it is limited to or None for every source, payload conditions);
        # the first matching route per destination wins.
        self._by_type: dict[str, list[tuple[Route, frozenset[str] | None, Where]]] = {}
        self._mapped_types: set[str] = set()
        for rc in routes:
            bucket = self._by_type.setdefault(rc.type, [])
            sources = frozenset(rc.sources) if rc.sources is not None else None
            where: Where = tuple(sorted((path, frozenset(values)) for path, values in rc.where.items()))
            for dest in rc.destinations:
                if all(r.destination != dest or s != sources or w != where for r, s, w in bucket):
                    bucket.append((Route(dest, rc.channel), sources, where))
            if rc.require_mapping:
                self._mapped_types.add(rc.type)
        self.mapping = mapping

    def __call__(self, envelope: Envelope) -> list[Route]:
        routes: list[Route] = []
        for route, sources, where in self._by_type.get(envelope.type, []):
            taken = any(r.destination == route.destination for r in routes)
            if (sources is None or envelope.source in sources) and _holds(where, envelope.data) and not taken:
                routes.append(route)
        if routes and envelope.type in self._mapped_types:
            routes = self._mapped(envelope, routes)
        if envelope.classification == Classification.secret:
            return [Route(r.destination, "paper") for r in routes]
        return list(routes)

    def _mapped(self, envelope: Envelope, routes: list[Route]) -> list[Route]:
        item = envelope.data.get("item") or {}
        region = envelope.data.get("region") or envelope.region
        if self.mapping is None or not item.get("code") or not region:
            return []
        rows = self.mapping.lookup(str(item["code"]), str(region))
        if not rows:
            return []
        if all(row.channel == Channel.paper for row in rows):
            return [Route(r.destination, "paper") for r in routes]
        return routes


def _holds(where: Where, data: Mapping[str, Any]) -> bool:
    """Every condition holds: the payload value at the dotted path is one of the accepted values (as text)."""
    for path, accepted in where:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or isinstance(value, Mapping | list):
            return False
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text not in accepted:
            return False
    return True


class MappingFollower:
    """Keeps a router's mapping at the store's active version, and routes what a new version covers.

    Imports happen in another process (``shenguan mapping import``), so every process that routes — the
    gateway for pushes, its intake process for polled pages — looks for a new active version periodically.
    Each one also routes the held (unrouted) messages the new version covers: a message its own router
    held a moment before it saw the version must not wait for the next import. Rerouting is one
    transaction per batch and finds nothing left to do when another process got there first.
    """

    def __init__(self, store: Store, router: ConfigRouter) -> None:
        self._store = store
        self._router = router
        self.version: int | None = None  # the version the router has; None: no mapping (none imported yet)

    async def refresh(self) -> int:
        """Load the active version if it changed, then route what it covers; returns how many were routed."""
        version = await self._store.active_mapping_version()
        if version == self.version:
            return 0
        rows = await self._store.active_mapping() if version is not None else []
        self._router.mapping = mapping_from_rows(rows, source=f"store v{version}") if version is not None else None
        self.version = version
        routed = await self._store.reroute_unrouted(self._router)
        log.info("mapping.activated", version=version, rows=len(rows), rerouted=routed)
        return routed
