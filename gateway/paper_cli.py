"""``shenguan paper``: the operator's side of the paper queue (纸质送达).

``list`` what waits, ``render`` it for printing (after which electronic delivery of those items is over),
``confirm`` a signed 送达回证, ``recall`` an unprinted fallback item to electronic delivery, ``return`` an
item that could not be served. Files are written only inside the configured paper directory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from gateway.cli_support import ConfigOpt, DbOpt, JsonOpt, fail, load_or_exit, run_on_store
from gateway.config import Config
from gateway.paper.queue import render_queue
from gateway.paper.render import cli_progress, safe_output_path
from gateway.store.sqlite import PaperStateError
from schemas import Envelope

if TYPE_CHECKING:
    from gateway.store import Backend

__all__ = ["app"]

T = TypeVar("T")
CST = timezone(timedelta(hours=8))

app = typer.Typer(help="Paper delivery (纸质送达): list, render, confirm, recall, return.", no_args_is_help=True)


def _run(cfg: Config, fn: Callable[[Backend], Awaitable[T]]) -> T:
    try:
        return run_on_store(cfg, fn)
    except PaperStateError as exc:
        raise fail(str(exc)) from None


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    env = Envelope.from_stored(row["envelope"])
    return {
        "id": row["id"],
        "state": row["state"],
        "destination": row["destination"],
        "type": env.type,
        "business_key": env.business_key,
        "revision": env.revision,
        "classification": env.classification.value,
        "printed": row["printed_at"] is not None,
        "fallback": row["channel"] != "paper",
        "flagged": bool(row["flagged"]),  # the platform holds it after all: check before serving on paper
        "reason": row["last_error"],
    }


@app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(help="paper_pending or paper_delivered")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Paper deliveries and where each stands."""
    if state not in (None, "paper_pending", "paper_delivered"):
        raise fail("--state must be paper_pending or paper_delivered")
    cfg = load_or_exit(config, db)

    async def read(store: Backend) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        after = 0
        while page := await store.paper_deliveries(state=state, after_id=after):
            rows.extend(_summary(r) for r in page)
            after = int(page[-1]["id"])
        return rows

    rows = _run(cfg, read)
    if json_:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        printed = "printed" if r["printed"] else "not printed"
        typer.echo(
            f"{r['id']:>8}  {r['state']:<16} {printed:<12} {r['destination']:<12} {r['type']} {r['business_key']}"
        )


@app.command()
def render(
    ids: Annotated[list[int] | None, typer.Argument(help="delivery ids (omit with --all)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every unprinted paper_pending item")] = False,
    out: Annotated[str, typer.Option("--out", help="PDF file name inside the paper directory")] = "",
    config: ConfigOpt = None,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Render items into one PDF for printing; they are then marked printed (electronic retries end)."""
    if bool(ids) == all_:
        raise fail("give delivery ids or --all (not both)")
    cfg = load_or_exit(config, db)
    name = out or f"paper-{datetime.now(CST):%Y%m%d-%H%M%S}.pdf"
    try:
        path = safe_output_path(Path(cfg.paper.dir), name)
    except ValueError as exc:
        raise fail(str(exc)) from None
    with cli_progress(None) as progress:
        rendered = _run(cfg, lambda s: render_queue(s, cfg, path, ids=ids or None, progress=progress))
    report = {"file": str(path), "rendered": rendered}
    typer.echo(json.dumps(report, ensure_ascii=False) if json_ else f"{path}: {len(rendered)} item(s) to print")


def _signed_at(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--signed-at {text!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return value if value.tzinfo else value.replace(tzinfo=CST)


@app.command()
def confirm(
    delivery_id: Annotated[int, typer.Argument(help="the delivery id printed on the receipt")],
    receiver: Annotated[str, typer.Option(help="who signed (收件人)")],
    signed_at: Annotated[str, typer.Option(help="signing date, YYYY-MM-DD[THH:MM] (Beijing time)")],
    method: Annotated[str, typer.Option(help="送达方式, e.g. 直接送达, 邮寄送达")],
    note: Annotated[str | None, typer.Option(help="备注")] = None,
    scan: Annotated[
        Path | None, typer.Option(help="scan of the signed receipt, copied into the paper directory")
    ] = None,
    operator: Annotated[str | None, typer.Option(help="who records it (default: $USER)")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Record a signed 送达回证: the delivery becomes paper_delivered as of its signing date."""
    import getpass

    cfg = load_or_exit(config, db)
    when = _signed_at(signed_at)
    stored_scan = None
    if scan is not None:
        if not scan.is_file():
            raise fail(f"--scan {scan} is not a file")
        target = safe_output_path(Path(cfg.paper.dir), f"receipts/{delivery_id}-{scan.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scan, target)
        stored_scan = str(target)
    receipt = {
        "receiver": receiver,
        "signed_at": when.isoformat(),
        "method": method,
        "note": note,
        "scan": stored_scan,
        "recorded_by": operator or getpass.getuser(),
    }
    _run(cfg, lambda s: s.confirm_paper(delivery_id, receipt, when.timestamp()))
    typer.echo(f"delivery {delivery_id} is paper_delivered (signed {when:%Y-%m-%d} by {receiver})")


@app.command()
def recall(
    delivery_id: Annotated[int, typer.Argument()],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Send an unprinted fallback item back to electronic delivery (the channel has recovered)."""
    _run(load_or_exit(config, db), lambda s: s.recall_paper(delivery_id))
    typer.echo(f"delivery {delivery_id} returned to electronic delivery")


@app.command("return")
def return_(
    delivery_id: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option(help="why it could not be served")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Record an undeliverable item: it stays open for another attempt, and an alert is logged."""
    import structlog

    _run(load_or_exit(config, db), lambda s: s.return_paper(delivery_id, reason))
    structlog.get_logger("shenguan.paper").warning("paper.returned", delivery=delivery_id, reason=reason)
    typer.echo(f"delivery {delivery_id} returned undelivered; it stays open")
