"""``shenguan``: the peer adapter that carries canonical envelopes between gateways (city ↔ province)."""

from adapters.peer.adapter import MAX_BATCH, PeerAdapter, PeerLink

__all__ = ["MAX_BATCH", "PeerAdapter", "PeerLink"]
