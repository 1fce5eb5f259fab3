"""``shenguan trace <correlation id or 办件编号> [--json]``: one approval's closed loop, in order, from the store.

An operator asked "what happened to case 320700261121000012345?" should get the whole conversation in one view:
the decision and where it went, the claim, the inspection, the result and its penalty, the advice and the
bureau's feedback — each message with its type, source and revision, and each of its deliveries with the
destination, state and attempts spent — followed by the loop's statutory deadlines and how they stand.

What the argument may be, tried in this order (the first that finds messages wins):

1. a correlation id as stored;
2. a 办件编号 as someone typed it: the correlation id is derived from it exactly as every adapter derives it
   (``schemas.correlation.loop_id``: blanks, 全角 digits and case do not matter);
3. the business key of any message of a loop (a task number, a 撤销意见书编号, a penalty decision number): its loop.

It reads through ``OperatorStore.trace`` — the same query as the console's trace page — so it works on both store
backends, and it opens the store non-exclusively (``cli_support.run_on_store``): it can run beside ``serve``.
Errors shown are masked (身份证号, 手机号), like everything the gateway prints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import typer

from adapters.masking import mask_text
from gateway.cli_support import ConfigOpt, DbOpt, JsonOpt, fail, load_or_exit, run_on_store
from gateway.store.base import MessageQuery
from schemas import loop_id

__all__ = ["find_loop", "render_trace", "trace"]

_BEIJING = timezone(timedelta(hours=8))


def _when(value: Any) -> str | None:
    """A store time (epoch seconds or ISO text) as Beijing ``YYYY-MM-DD HH:MM:SS``."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "destination": row["destination"],
        "channel": row.get("channel"),
        "state": row["state"],
        "attempts": int(row.get("attempts") or 0),
        "remote_id": row.get("remote_id"),
        "delivered_at": _when(row.get("delivered_at")),
        "last_error": mask_text(str(row["last_error"])) if row.get("last_error") else None,
    }


def _message(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "time": _when(row.get("business_time")),
        "type": row["type"],
        "source": row["source"],
        "business_key": row["business_key"],
        "revision": int(row["revision"]),
        "classification": row.get("classification"),
        "received_at": _when(row.get("received_at")),
        "routed": bool(row.get("routed")),
        "deliveries": [_delivery(d) for d in row.get("deliveries", [])],
    }


def _deadline(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "subject": row.get("subject") or None,
        "state": row.get("state"),
        "outcome": row.get("outcome"),
        "due_on": row.get("due_on"),
        "estimated": bool(row.get("estimated")),
    }


async def find_loop(store: Any, wanted: str) -> dict[str, Any]:
    """The loop ``wanted`` names (see the module docstring): ``{"correlation_id", "messages", "deadlines"}``.

    ``messages`` is empty when nothing matches. ``store`` is any backend offering ``trace`` and ``find_messages``.
    """
    candidates = [wanted.strip()]
    try:
        derived = loop_id(wanted)
    except ValueError:
        derived = None
    if derived is not None and derived not in candidates:
        candidates.append(derived)
    for candidate in candidates:
        rows = await store.trace(candidate)
        if rows:
            return await _loop(store, candidate, rows)
    found, _total = await store.find_messages(MessageQuery(business_key=wanted.strip(), limit=1))
    if found:
        correlation = str(found[0]["correlation_id"])
        return await _loop(store, correlation, await store.trace(correlation))
    return {"correlation_id": derived or wanted.strip(), "messages": [], "deadlines": []}


async def _loop(store: Any, correlation_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    reader = getattr(store, "deadlines", None)
    deadlines = await reader(correlation_id=correlation_id) if reader is not None else []
    return {
        "correlation_id": correlation_id,
        "messages": [_message(r) for r in rows],
        "deadlines": [_deadline(d) for d in deadlines],
    }


def render_trace(loop: dict[str, Any]) -> str:
    """The loop as readable lines: each message, its deliveries under it, then the deadlines."""
    messages = loop["messages"]
    lines = [f"closed loop {loop['correlation_id']}: {len(messages)} message{'s' * (len(messages) != 1)}"]
    for m in messages:
        revision = f"r{m['revision']}"
        lines.append(f"  {m['time'] or '?':<19}  {m['type']:<36} {m['source']:<14} {revision:<4} {m['business_key']}")
        if not m["deliveries"]:
            lines.append("      (no destination: " + ("routed nowhere" if m["routed"] else "held as unrouted") + ")")
        for d in m["deliveries"]:
            channel = " (paper)" if d["channel"] == "paper" else ""
            tail = f"  remote {d['remote_id']}" if d["remote_id"] else ""
            if d["last_error"] and d["state"] != "delivered":
                tail += f"  last error: {d['last_error'][:120]}"
            lines.append(
                f"      → {d['destination']}{channel:<8} {d['state']:<15} attempts {d['attempts']:<3}{tail}".rstrip()
            )
    if loop["deadlines"]:
        lines.append("  deadlines (时限):")
        for dl in loop["deadlines"]:
            subject = f" {dl['subject']}" if dl["subject"] else ""
            outcome = dl["outcome"] or dl["state"]
            estimated = " (estimated)" if dl["estimated"] else ""
            lines.append(f"    {dl['kind']:<18} due {dl['due_on']}{estimated}  {outcome}{subject}")
    return "\n".join(lines)


def trace(
    loop: Annotated[str, typer.Argument(help="correlation id, 办件编号, or any message's business key")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one approval's closed loop in order: every message, its deliveries, and the loop's deadlines."""
    if not loop.strip():
        raise fail("give a correlation id or 办件编号")
    cfg = load_or_exit(config, db)
    found = run_on_store(cfg, lambda store: find_loop(store, loop))
    if not found["messages"]:
        raise fail(f"no message belongs to the loop {found['correlation_id']!r} (nor has that business key)", code=1)
    typer.echo(json.dumps(found, ensure_ascii=False) if json_ else render_trace(found))
