"""examples/shenguan.toml runs the whole closed loop across the five families: it loads, every adapter it names
builds, it is the loop ``shenguan demo`` runs, and each event type goes where DESIGN §1 says."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopkit import sample

from adapters.registry import load
from factories import envelope
from gateway.config import Config, load_config
from gateway.demo import demo_config
from gateway.routing import ConfigRouter
from gateway.store import Route
from schemas import ClaimMode, Envelope, SupervisionTaskClaimed, correlation_id_of, event_types

EXAMPLE = Path(__file__).parents[2] / "examples" / "shenguan.toml"


def example() -> Config:
    return load_config(EXAMPLE, environ={})


def test_every_adapter_of_the_example_builds() -> None:
    config = example()

    async def build() -> None:
        for kind, sections in (("sources", config.sources), ("destinations", config.destinations)):
            for name, section in sections.items():
                adapter = load(section.adapter).from_config(name, section.adapter_options())
                assert adapter.name == name, (kind, name)
                await adapter.aclose()

    asyncio.run(build())
    assert {s.adapter for s in config.sources.values()} == {"zwfw", "specialty", "zwfw-linkage", "hlwjg-events"}
    assert {d.adapter for d in config.destinations.values()} == {"hlwjg", "zwfw", "credit", "soap"}


def _routes(config: Config) -> set[tuple[Any, ...]]:
    def where(conditions: dict[str, list[str]]) -> tuple[Any, ...]:
        return tuple(sorted((path, tuple(values)) for path, values in conditions.items()))

    return {(r.type, tuple(r.destinations), r.channel, tuple(r.sources or ()), where(r.where)) for r in config.routes}


def test_the_example_is_the_loop_the_demo_runs(tmp_path: Path) -> None:
    assert _routes(example()) == _routes(demo_config("http://127.0.0.1:8700", tmp_path / "x.db"))


def at(event_type: str, source: str) -> Envelope:
    payload = sample(event_type)
    return Envelope.wrap(payload, source=source, correlation_id=correlation_id_of(payload))


def test_each_event_type_goes_where_the_loop_needs_it() -> None:
    route = ConfigRouter(example().routes)
    assert route(envelope("A")) == [Route("hlwjg"), Route("soap"), Route("credit")]
    assert Route("credit") not in route(envelope("B", result="rejected"))
    for event_type in (
        "supervision.inspection.reported",
        "supervision.result.reported",
        "commitment.breach.reported",
        "preapproval.confirmation.answered",
        "site_inspection.reported",
    ):
        assert route(at(event_type, "hlwjg-events")) == [Route("zwfw")], event_type
    assert route(at("license.revocation.advised", "hlwjg-events")) == [Route("zwfw"), Route("fazhi", "paper")]
    claim = SupervisionTaskClaimed(
        task_no="JGRW32070000000001", approval_case_no="320700261121000012345", claimed_at=datetime.now(UTC),
        mode=ClaimMode.default, auto=True,
    )  # fmt: skip
    assert route(Envelope.wrap(claim, source="shenguan")) == [Route("hlwjg"), Route("zwfw")], "默认认领 to both"
    assert route(Envelope.wrap(claim, source="hlwjg-events")) == [Route("zwfw")], "never back to its platform"
    for event_type in ("approval.feedback.sent", "preapproval.confirmation.requested", "site_inspection.requested"):
        assert route(at(event_type, "zwfw-linkage")) == [Route("hlwjg")], event_type
    for event_type in ("guidance.requested", "guidance.answered"):
        assert route(at(event_type, "hlwjg-events")) == [Route("zwfw")], "guidance goes to the other side"
        assert route(at(event_type, "zwfw-linkage")) == [Route("hlwjg")]
    routed = {r.type for r in example().routes}
    loop_types = {t for t in event_types() if not t.startswith("credit.") and t != "supervision.task.created"}
    assert loop_types <= routed, "every message of the loop has somewhere to go"
    assert "credit.penalty.published" in routed
