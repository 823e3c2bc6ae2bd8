"""Pub/sub across the border: a QA subsystem subscribes to and pulls from an MA room through
both gateways, trusted through the federation agreement, which must open the room's ``api``,
``pub`` and ``pull``; without it, or without the right, the call is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jisr.core import federation as agreements
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.demo import servers
from jisr.exchange import federation, provisioning, pubsub, server, service
from jisr.exchange.identifiers import MemberId, SubsystemId

from .conftest import BIRTHS, ExchangeWorld, build_world, free_port

pytestmark = [pytest.mark.db, pytest.mark.slow]

MOI = MemberId.parse("QA/GOV/MOI")
QA_SERVICES = SubsystemId.parse("QA/GOV/MOI/SERVICES")
ROOM = "/r1/MA/GOV/CIVIL-REGISTRY/BIRTHS"
OPENED = [f"{BIRTHS}/{code}" for code in ("api", "pull")]  # not "pub"
SCHEMA = {"type": "object", "required": ["mother"]}


@dataclass
class Border:
    ma: ExchangeWorld
    qa: Instance
    qa_registry: servers.RunningServer
    qa_gateway: server.RunningGateway

    def qa_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-GovStack-Client": str(QA_SERVICES)}
        return httpx.request(
            method, self.qa_gateway.url + ROOM + path, headers=headers, timeout=20, **kwargs
        )

    def manager(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-GovStack-Client": str(BIRTHS)}
        url = self.ma.provider_gateway.url + ROOM + path
        return httpx.request(method, url, headers=headers, timeout=20, **kwargs)


def _agree(ma: Instance, qa: Instance) -> None:
    ma_registry, qa_registry = ma.node(REGISTRY_NODE), qa.node(REGISTRY_NODE)
    with qa_registry.session() as session:
        qa_kid = agreements.registry_key_thumbprint(session, node=qa_registry)
    with ma_registry.session() as session:
        ma_kid = agreements.registry_key_thumbprint(session, node=ma_registry)
        offer = agreements.make_offer(
            session, node=ma_registry, peer="QA", peer_key_thumbprint=qa_kid, open_services=OPENED
        )
    with qa_registry.session() as session:
        document = agreements.countersign(
            session, node=qa_registry, offer=offer, peer_key_thumbprint=ma_kid
        )
    for instance in (ma, qa):
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            agreements.install_agreement(session, node=registry, document=document)


@pytest.fixture(scope="module")
def border(instance_factory: Any) -> Iterator[Border]:
    ma_world = build_world(instance_factory("MA"))
    qa = instance_factory("QA")
    qa_server = servers.start(qa)
    qa_gateway: server.RunningGateway | None = None
    try:
        ma_world.instance.settings.public_url = ma_world.registry.url
        qa.settings.public_url = qa_server.url
        _agree(ma_world.instance, qa)
        qa_registry = qa.node(REGISTRY_NODE)
        with qa_registry.session() as session:
            service.add_member(session, member=MOI, name="Ministry of Interior")
            service.add_subsystem(session, subsystem=QA_SERVICES)
        info = provisioning.create_gateway(
            qa, member=MOI, address=f"127.0.0.1:{free_port()}", registry_url=qa_server.url
        )
        qa_gateway = server.start_gateway(qa, info.name)
        assert federation.refresh_peer(ma_world.instance.node(REGISTRY_NODE), peer="QA")
        assert federation.refresh_peer(qa_registry, peer="MA")
        for running in [*ma_world.gateways.values(), qa_gateway]:
            assert running.refresh_now(), running.runtime.last_refresh_error
        yield Border(ma_world, qa, qa_server, qa_gateway)
    finally:
        if qa_gateway is not None:
            qa_gateway.stop()
        qa_server.stop()
        ma_world.close()


def test_a_qa_subsystem_subscribes_and_pulls_through_the_federation(border: Border) -> None:
    created = border.manager(
        "POST", "/api/v1/eventType", json={"eventType": "crossBirth", "schema": SCHEMA}
    )
    assert created.status_code == 200, created.text
    refused = border.qa_call("POST", "/api/v1/subs/crossBirth", json={"delivery": "PULL"})
    assert refused.headers["x-road-error"] == "Server.ServerProxy.AccessDenied"
    with border.ma.instance.node("gateway-civil-registry").session() as session:
        pubsub.grant(
            session, room=BIRTHS, name="crossBirth", subsystem=QA_SERVICES, action="subscribe"
        )
    subscribed = border.qa_call("POST", "/api/v1/subs/crossBirth", json={"delivery": "PULL"})
    assert subscribed.status_code == 200, subscribed.text
    assert subscribed.json()["subscriberId"]["instanceId"] == "QA"
    event_id = border.manager(
        "POST", "/pub/v1/crossBirth", json={"event": {"mother": "Aisha"}}
    ).json()["id"]
    pulled = border.qa_call("GET", "/pull/v1/crossBirth")
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["id"] == event_id and pulled.json()["event"] == {"mother": "Aisha"}
    assert border.qa_call("DELETE", f"/pull/v1/crossBirth/{event_id}").status_code == 204


def test_a_room_operation_outside_the_agreement_is_refused(border: Border) -> None:
    response = border.qa_call("POST", "/pub/v1/crossBirth", json={"event": {"mother": "X"}})
    assert response.headers["x-road-error"] == "Server.ClientProxy.ServiceNotFederated"


def test_push_to_a_subscriber_of_another_instance_is_refused(border: Border) -> None:
    border.manager("POST", "/api/v1/eventType", json={"eventType": "crossPush", "schema": SCHEMA})
    with border.ma.instance.node("gateway-civil-registry").session() as session:
        pubsub.grant(
            session, room=BIRTHS, name="crossPush", subsystem=QA_SERVICES, action="subscribe"
        )
    response = border.qa_call(
        "POST",
        "/api/v1/subs/crossPush",
        json={"delivery": "PUSH", "options": {"pushService": "events"}},
    )
    assert response.headers["x-road-error"] == "Server.ServerProxy.UnknownService"
