"""The gateway runtime: config, store, dedup, routing, polling, relay, HTTP side and CLI."""
