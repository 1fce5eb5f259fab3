"""Routing: which destinations a message goes to, and by which channel.

For now routes come from the config, by event type. Classification wins over configuration: a
``secret`` (涉密) message is routed to the paper channel of every destination, so it never reaches a
network adapter whatever a route says.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config import RouteConfig
from gateway.store.base import Route
from schemas import Classification, Envelope

__all__ = ["ConfigRouter"]


class ConfigRouter:
    """Routes by event type from ``[[routes]]``; unknown types get no route (held as unrouted)."""

    def __init__(self, routes: Sequence[RouteConfig]) -> None:
        self._by_type: dict[str, list[Route]] = {}
        for rc in routes:
            bucket = self._by_type.setdefault(rc.type, [])
            for dest in rc.destinations:
                if all(r.destination != dest for r in bucket):
                    bucket.append(Route(dest, rc.channel))

    def __call__(self, envelope: Envelope) -> list[Route]:
        routes = self._by_type.get(envelope.type, [])
        if envelope.classification == Classification.secret:
            return [Route(r.destination, "paper") for r in routes]
        return list(routes)
