"""Routing by config, by the mapping list, and the secret-goes-to-paper rule."""

from __future__ import annotations

from factories import envelope
from gateway.config import RouteConfig
from gateway.mapping import Channel, MappingList, MappingRow
from gateway.routing import ConfigRouter
from gateway.store import Route
from schemas import Classification

ITEM = "11320700MB123456794000117001"


def mapping(channel: Channel, region: str = "320700") -> MappingList:
    row = MappingRow(ITEM, "食品经营许可", None, "32070000100001", "后监管", "市场监管局", "X1", region, channel, 3)
    return MappingList(rows=(row,), problems=(), source="t", digest="d")


def router(require_mapping: bool, m: MappingList | None = None) -> ConfigRouter:
    route = RouteConfig(type="approval.decided", destinations=["hlwjg"], require_mapping=require_mapping)
    return ConfigRouter([route], m)


def test_plain_routes_by_type() -> None:
    assert router(False)(envelope("A")) == [Route("hlwjg")]


def test_secret_goes_to_paper_whatever_the_route() -> None:
    assert router(False)(envelope("S", classification=Classification.secret)) == [Route("hlwjg", "paper")]


def test_unmapped_approval_gets_no_route() -> None:
    assert router(True)(envelope("A")) == []
    assert router(True, mapping(Channel.platform, region="110000"))(envelope("A")) == []


def test_mapped_approval_is_routed_and_a_city_row_covers_its_counties() -> None:
    assert router(True, mapping(Channel.platform))(envelope("A")) == [Route("hlwjg")]
    county = envelope("A", region="320706")
    assert router(True, mapping(Channel.platform))(county) == [Route("hlwjg")]


def test_paper_only_mapping_routes_to_paper() -> None:
    assert router(True, mapping(Channel.paper))(envelope("A")) == [Route("hlwjg", "paper")]


def test_a_route_limited_to_sources_takes_only_their_messages() -> None:
    routes = [
        RouteConfig(type="approval.decided", destinations=["hlwjg"], sources=["shenguan"]),
        RouteConfig(type="approval.decided", destinations=["credit"]),
    ]
    r = ConfigRouter(routes)
    assert r(envelope("A", source="zwfw")) == [Route("credit")]
    assert r(envelope("A", source="shenguan")) == [Route("hlwjg"), Route("credit")]
