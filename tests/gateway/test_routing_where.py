"""Routes with ``where`` conditions on the payload: how granted approvals alone reach the credit platform."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from factories import envelope
from gateway.config import Config, RouteConfig
from gateway.routing import ConfigRouter
from gateway.store import Route

APPROVALS_TO_SUPERVISION = RouteConfig(type="approval.decided", destinations=["hlwjg"])
GRANTED_TO_CREDIT = RouteConfig(type="approval.decided", destinations=["credit"], where={"result": ["granted"]})


def test_only_granted_approvals_go_to_credit_and_every_approval_to_supervision() -> None:
    route = ConfigRouter([APPROVALS_TO_SUPERVISION, GRANTED_TO_CREDIT])
    assert route(envelope("A")) == [Route("hlwjg"), Route("credit")]
    for result in ("rejected", "voided", "forwarded"):
        assert route(envelope("B", result=result)) == [Route("hlwjg")]


def test_a_message_no_route_takes_is_unrouted() -> None:
    assert ConfigRouter([GRANTED_TO_CREDIT])(envelope("B", result="rejected")) == []


def test_dotted_paths_several_values_and_every_condition_must_hold() -> None:
    legal_or_other = RouteConfig(
        type="approval.decided",
        destinations=["credit"],
        where={"applicant.kind": ["legal", "other"], "result": ["granted"]},
    )
    route = ConfigRouter([legal_or_other])
    assert route(envelope("A")) == [Route("credit")]
    person = {"kind": "natural", "name": "张三", "id_type": "resident_id", "id_number": "320706199003071237"}
    assert route(envelope("B", applicant=person)) == []
    assert route(envelope("C", result="rejected")) == []
    missing = RouteConfig(type="approval.decided", destinations=["credit"], where={"certificate.nope": ["x"]})
    assert ConfigRouter([missing])(envelope("A")) == [], "a path the payload lacks never matches"
    structured = RouteConfig(type="approval.decided", destinations=["credit"], where={"certificate": ["x"]})
    assert ConfigRouter([structured])(envelope("A")) == [], "an object is not a value"


def test_first_matching_route_per_destination_wins() -> None:
    paper_if_refused = RouteConfig(
        type="approval.decided", destinations=["credit"], channel="paper", where={"result": ["rejected"]}
    )
    route = ConfigRouter([GRANTED_TO_CREDIT, paper_if_refused])
    assert route(envelope("A")) == [Route("credit")]
    assert route(envelope("B", result="rejected")) == [Route("credit", "paper")]


def test_where_is_read_from_toml_config() -> None:
    config = Config.model_validate(
        {
            "destinations": {"credit": {"adapter": "credit"}},
            "routes": [{"type": "approval.decided", "destinations": ["credit"], "where": {"result": ["granted"]}}],
        }
    )
    assert config.routes[0].where == {"result": ["granted"]}
    with pytest.raises(ValidationError):
        RouteConfig(type="approval.decided", destinations=["credit"], where={"result": "granted"})
