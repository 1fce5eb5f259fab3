"""What an operator can see and do, once, for both the admin API and the web console.

Each action is one store transaction that records the actor in the audit chain; this layer adds what only
the running gateway knows — which destinations are configured, whether a receiver honours idempotency keys,
the relay to wake so a retried delivery goes out now rather than at the next idle poll — and turns store
rows into the API's models. Errors are ``NotFoundError`` (404) and ``StateConflictError`` (409), with a
sentence that says what to do instead.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from gateway.admin.auth import Principal
from gateway.admin.models import (
    CST,
    CalendarStatus,
    CalendarYear,
    DeliveryDetail,
    DeliveryPage,
    DeliverySummary,
    DestinationOverview,
    MappingStatus,
    MappingVersion,
    MessageDetail,
    MessagePage,
    MessageSummary,
    Overview,
    PaperConfirm,
    PaperItem,
    PaperRendered,
    Trace,
    mask,
    when,
)
from gateway.calendar import WorkingDayCalendar
from gateway.runtime import Gateway
from gateway.store.base import MessageQuery, NotFoundError, OperatorStore, StateConflictError
from schemas import Envelope

__all__ = ["Operations"]


class Operations:
    """The gateway's operator surface. Read methods return API models; actions take the acting ``Principal``."""

    def __init__(self, gateway: Gateway, *, calendar_dir: Path | None = None) -> None:
        self.gateway = gateway
        self.calendar_dir = calendar_dir

    @property
    def store(self) -> OperatorStore:
        return cast(OperatorStore, self.gateway.store)

    # -- reading --------------------------------------------------------------------------------------------

    async def overview(self) -> Overview:
        status = await self.gateway.store.status()
        per_dest = await self.store.destination_overview()
        relay = self.gateway.relay
        names = sorted(set(self.gateway.config.destinations) | set(per_dest))
        destinations = []
        for name in names:
            cfg = self.gateway.config.destinations.get(name)
            adapter = self.gateway.destinations.get(name)
            live = relay.destinations.get(name) if relay else None
            empty = {"counts": dict.fromkeys(cast(dict, status["deliveries"]), 0), "oldest_pending": None}
            entry = per_dest.get(name, empty)
            oldest = entry["oldest_pending"]
            destinations.append(
                DestinationOverview(
                    name=name,
                    configured=cfg is not None,
                    adapter=cfg.adapter if cfg else None,
                    breaker=live.breaker.state.value if live else None,
                    idempotent_receiver=adapter.capabilities.idempotent_receiver if adapter else None,
                    status_query=adapter.capabilities.status_query if adapter else None,
                    counts=entry["counts"],
                    oldest_pending=DeliverySummary.from_row(oldest) if oldest else None,
                )
            )
        return Overview.model_validate(status | {"ready": self.ready(), "destinations": destinations})

    def ready(self) -> bool:
        return self.gateway.relay is not None and self.gateway.failed_task() is None

    async def find_messages(self, query: MessageQuery) -> MessagePage:
        rows, total = await self.store.find_messages(query)
        items = [MessageSummary.from_row(r) for r in rows]
        return MessagePage(total=total, limit=query.limit, offset=query.offset, items=items)

    async def message(self, message_id: str) -> MessageDetail:
        row = await self.store.message(message_id)
        if row is None:
            raise NotFoundError(f"there is no message {message_id}")
        return MessageDetail.from_row(row)

    async def trace(self, correlation_id: str) -> Trace:
        rows = await self.store.trace(correlation_id)
        if not rows:
            raise NotFoundError(f"no message has correlation id {correlation_id}")
        return Trace(correlation_id=correlation_id, messages=[MessageSummary.from_row(r) for r in rows])

    async def deliveries(self, *, state: str | None, destination: str | None, limit: int, offset: int) -> DeliveryPage:
        rows, total = await self.store.deliveries(state=state, destination=destination, limit=limit, offset=offset)
        items = [DeliverySummary.from_row(r) for r in rows]
        return DeliveryPage(total=total, limit=limit, offset=offset, items=items)

    async def delivery(self, delivery_id: int) -> DeliveryDetail:
        row = await self.store.delivery(delivery_id)
        if row is None:
            raise NotFoundError(f"there is no delivery {delivery_id}")
        # Any delivery may have paper history (a recalled fallback item keeps its events).
        paper_events = getattr(self.gateway.store, "paper_events", None)
        events = await paper_events(delivery_id) if paper_events is not None else []
        return DeliveryDetail.build(row, events)

    async def mapping(self) -> MappingStatus:
        versions = await self._paper().mapping_versions()
        items = [MappingVersion.model_validate(v | {"imported_at": when(v["imported_at"])}) for v in versions]
        active = next((v.version for v in items if v.active), None)
        return MappingStatus(active_version=active, versions=items)

    def calendar(self) -> CalendarStatus:
        from gateway.calendar_cli import default_calendar_dir

        directory = self.calendar_dir or default_calendar_dir()
        cal = WorkingDayCalendar.from_dir(directory)  # ScheduleError on a corrupt stored schedule: shown, not hidden
        loaded = cal.loaded_years()
        this_year = datetime.now(CST).year
        years = [
            CalendarYear(year=y, basis="loaded" if y in loaded else "packaged" if cal.covers(y) else "estimated")
            for y in range(this_year - 1, this_year + 3)
        ]
        return CalendarStatus(directory=str(directory), loaded_years=list(loaded), years=years)

    # -- acting ---------------------------------------------------------------------------------------------

    async def retry(self, delivery_id: int, who: Principal) -> DeliveryDetail:
        await self.store.retry_dead(delivery_id, actor=who.actor)
        self._wake()
        return await self.delivery(delivery_id)

    async def resolve(self, delivery_id: int, resolution: str, who: Principal) -> DeliveryDetail:
        await self.store.resolve_uncertain(delivery_id, resolution, actor=who.actor)
        self._wake()
        return await self.delivery(delivery_id)

    async def replay(self, message_id: str, destination: str, who: Principal, *, force: bool = False) -> DeliveryDetail:
        configured = self.gateway.config.destinations
        if destination not in configured:
            known = ", ".join(sorted(configured)) or "none"
            raise NotFoundError(f"destination {destination!r} is not configured (known: {known})")
        message = await self.store.message(message_id)
        if message is None:
            raise NotFoundError(f"there is no message {message_id}")
        adapter = self.gateway.destinations.get(destination)
        delivered = any(d["destination"] == destination and d["state"] == "delivered" for d in message["deliveries"])
        if delivered and adapter is not None and not adapter.capabilities.idempotent_receiver and not force:
            raise StateConflictError(
                f"{destination} already holds message {message_id} and does not honour idempotency keys: a replay "
                "may create a second record there; replay with force if that is what you want"
            )
        delivery_id = await self.store.replay(message_id, destination, actor=who.actor)
        self._wake()
        return await self.delivery(delivery_id)

    # -- paper (纸质送达) -------------------------------------------------------------------------------------

    async def paper_queue(self, state: str | None = "paper_pending", *, limit: int = 200) -> list[PaperItem]:
        rows = await self._paper().paper_deliveries(state=state, limit=limit)
        return [_paper_item(r) for r in rows]

    async def paper_item(self, delivery_id: int) -> PaperItem:
        rows = await self._paper().paper_deliveries(ids=[delivery_id])
        if not rows:
            raise NotFoundError(f"there is no paper delivery {delivery_id}")
        return _paper_item(rows[0])

    async def paper_render(self, ids: list[int] | None, who: Principal) -> PaperRendered:
        from gateway.paper.queue import render_queue
        from gateway.paper.render import safe_output_path

        name = f"paper-{datetime.now(CST):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}.pdf"
        path = safe_output_path(Path(self.gateway.config.paper.dir), name)
        rendered = await render_queue(self._paper(), self.gateway.config, path, ids=ids, actor=who.actor)
        if not rendered:  # nothing unprinted among them: no file with an empty page to confuse the print room
            path.unlink(missing_ok=True)
            return PaperRendered(file=None, rendered=[])
        return PaperRendered(file=name, rendered=rendered)

    def paper_file(self, name: str) -> Path:
        """A rendered PDF inside the paper directory; ``NotFoundError`` for anything else."""
        from gateway.paper.render import safe_output_path

        try:
            path = safe_output_path(Path(self.gateway.config.paper.dir), name)
        except ValueError:
            raise NotFoundError(f"there is no paper file {name!r}") from None
        if path.suffix != ".pdf" or path.parent != Path(self.gateway.config.paper.dir).resolve() or not path.is_file():
            raise NotFoundError(f"there is no paper file {name!r}")
        return path

    async def paper_confirm(self, delivery_id: int, body: PaperConfirm, who: Principal) -> PaperItem:
        await self._paper_exists(delivery_id)
        signed = body.signed_at if body.signed_at.tzinfo else body.signed_at.replace(tzinfo=CST)
        receipt = {
            "receiver": body.receiver,
            "signed_at": signed.isoformat(),
            "method": body.method,
            "note": body.note,
            "scan": None,
            "recorded_by": who.actor,
        }
        await self._paper_call("confirm_paper", delivery_id, receipt, signed.timestamp())
        return await self.paper_item(delivery_id)

    async def paper_recall(self, delivery_id: int, who: Principal) -> DeliveryDetail:
        """An unprinted fallback item goes back to electronic delivery: it is a delivery again, not a paper item."""
        await self._paper_exists(delivery_id)
        await self._paper_call("recall_paper", delivery_id, actor=who.actor)
        self._wake()
        return await self.delivery(delivery_id)

    async def paper_return(self, delivery_id: int, reason: str, who: Principal) -> PaperItem:
        await self._paper_exists(delivery_id)
        await self._paper_call("return_paper", delivery_id, reason, actor=who.actor)
        return await self.paper_item(delivery_id)

    # -- plumbing -------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self.gateway.relay is not None:
            self.gateway.relay.wake()

    def _paper(self) -> Any:
        """The store's paper-queue and mapping methods (SQLite has them; a backend without them cannot serve)."""
        store = self.gateway.store
        if not hasattr(store, "paper_deliveries"):
            raise StateConflictError(f"the {type(store).__name__} store has no paper queue")
        return store

    async def _paper_exists(self, delivery_id: int) -> None:
        if await self.store.delivery(delivery_id) is None:
            raise NotFoundError(f"there is no delivery {delivery_id}")

    async def _paper_call(self, method: str, *args: Any, **kwargs: Any) -> None:
        from gateway.store.sqlite import PaperStateError

        try:
            await getattr(self._paper(), method)(*args, **kwargs)
        except PaperStateError as exc:
            raise StateConflictError(str(exc)) from None


def _paper_item(row: dict[str, Any]) -> PaperItem:
    env = Envelope.from_stored(row["envelope"])
    return PaperItem(
        id=row["id"],
        message_id=row["message_id"],
        state=row["state"],
        destination=row["destination"],
        type=env.type,
        business_key=env.business_key,
        revision=env.revision,
        classification=env.classification.value,
        printed=row["printed_at"] is not None,
        fallback=row["channel"] != "paper",
        flagged=bool(row["flagged"]),
        reason=mask(row["last_error"]),
        created_at=when(row["created_at"]),
        delivered_at=when(row["delivered_at"]),
    )
