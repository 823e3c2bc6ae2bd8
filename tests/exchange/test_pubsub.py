"""Pub/sub (GovStack IM PubSub API) on two gateways over real HTTP and mutual TLS.

The room is ``MA/GOV/CIVIL-REGISTRY/BIRTHS`` (kept by the civil registry's gateway). Its
manager calls its own gateway; ``MA/GOV/ESERVICES/PORTAL`` calls the e-services gateway, so
its calls travel signed to the room's gateway. PORTAL's push service ``events`` is a small
receiver that can be told to fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from jisr.core.audit import service as audit
from jisr.core.crypto import jws
from jisr.core.instance import REGISTRY_NODE
from jisr.exchange import pubsub, service
from jisr.exchange.gateway import MESSAGE_LOG
from jisr.exchange.identifiers import ServiceId, SubsystemId

from .conftest import (
    BIRTHS,
    OTHER,
    PORTAL,
    AsgiServer,
    ExchangeWorld,
    build_world,
    gateway_log,
    read_body,
    serve_asgi,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]

ROOM = "/r1/MA/GOV/CIVIL-REGISTRY/BIRTHS"
PUSH_SERVICE = ServiceId.parse("MA/GOV/ESERVICES/PORTAL/events")
LOCAL_PUSH_SERVICE = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/inbox")  # the room's gateway
REAL_PUB = ServiceId.parse("MA/GOV/ESERVICES/OTHER/pub")  # a registered service named "pub"
SPEC = (
    Path(__file__).resolve().parents[2].parent
    / "shared/specs/govstack/information-mediator/GovStack_IM_PubSub_API.yaml"
)
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "dateTime": {"type": "string", "format": "date-time"},
        "gender": {"type": "string", "enum": ["M", "F"]},
        "mother": {"type": "string"},
        "place": {"type": "string"},
        "details": {
            "type": "object",
            "properties": {"weight": {"type": "number"}, "length": {"type": "number"}},
            "required": ["weight", "length"],
        },
    },
    "required": ["dateTime", "gender", "mother", "place"],
}
BIRTH = {
    "dateTime": "2026-05-01T11:25:00+01:00",
    "gender": "M",
    "mother": "Fatima Zahra",
    "place": "CHU Rabat",
    "details": {"weight": 3200, "length": 49},
}


class Receiver:
    """PORTAL's push service: records what arrives; answers 503 while ``failures`` > 0."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures = 0
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if self.failures > 0:
            self.failures -= 1
            self.refused += 1
            status = 503
        else:
            status = 200
            self.received.append(
                {"path": scope["path"], "headers": headers, "item": json.loads(body)}
            )
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


class PubSubWorld:
    def __init__(self, world: ExchangeWorld, receiver: Receiver, server: AsgiServer) -> None:
        self.world = world
        self.receiver = receiver
        self.server = server

    @property
    def room_url(self) -> str:  # the room manager's own gateway
        return self.world.provider_gateway.url + ROOM

    @property
    def remote_url(self) -> str:  # PORTAL's gateway: calls travel to the room's gateway
        return self.world.consumer_gateway.url + ROOM

    def manager(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-GovStack-Client": str(BIRTHS), **kwargs.pop("headers", {})}
        return httpx.request(method, self.room_url + path, headers=headers, timeout=20, **kwargs)

    def portal(
        self, method: str, path: str, client: SubsystemId = PORTAL, **kwargs: Any
    ) -> httpx.Response:
        headers = {"X-GovStack-Client": str(client), **kwargs.pop("headers", {})}
        return httpx.request(method, self.remote_url + path, headers=headers, timeout=20, **kwargs)

    def event_type(self, name: str, schema: dict[str, Any] | None = None) -> None:
        response = self.manager(
            "POST", "/api/v1/eventType", json={"eventType": name, "schema": schema or SCHEMA}
        )
        assert response.status_code == 200, response.text

    def ensure(self, name: str) -> None:
        """The event type ``name``, made unless it exists (for parametrised tests)."""
        if self.manager("GET", f"/api/v1/eventType/{name}").status_code == 204:
            self.event_type(name)

    def grant(self, name: str, subsystem: SubsystemId, action: str) -> None:
        node = self.world.instance.node("gateway-civil-registry")
        with node.session() as session:
            pubsub.grant(session, room=BIRTHS, name=name, subsystem=subsystem, action=action)

    def log(self, gateway: str = "gateway-civil-registry") -> list[tuple[str, dict[str, Any]]]:
        return gateway_log(self.world.instance, gateway)


def add_push_service(world: ExchangeWorld, receiver_url: str) -> None:
    registry = world.instance.node(REGISTRY_NODE)
    with registry.session() as session:
        signer = registry.checkpoint_signer(session)
        for push in (PUSH_SERVICE, LOCAL_PUSH_SERVICE):
            service.add_service(session, service=push, base_url=receiver_url, signer=signer)
            service.grant_access(session, service=push, client=BIRTHS, method="POST", path="*")
        service.add_service(session, service=REAL_PUB, base_url=world.provider.url, signer=signer)
        service.grant_access(session, service=REAL_PUB, client=PORTAL, method="*", path="*")
    for running in world.gateways.values():
        assert running.refresh_now(), running.runtime.last_refresh_error


@pytest.fixture(scope="module")
def ps(instance_factory: Any) -> Iterator[PubSubWorld]:
    world = build_world(instance_factory("MA"))
    receiver = Receiver()
    server = serve_asgi(receiver)
    try:
        add_push_service(world, server.url)
        yield PubSubWorld(world, receiver, server)
    finally:
        server.stop()
        world.close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubsub, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(pubsub, "PUSH_POLL_SECONDS", 0.05)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something true (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def xroad_error(response: httpx.Response) -> str:
    assert "x-road-error" in response.headers, (response.status_code, response.text)
    body = response.json()
    assert body["type"] == response.headers["x-road-error"]
    return str(response.headers["x-road-error"])


# --- event types ----------------------------------------------------------------------------


class TestEventTypes:
    def test_create_list_read_delete(self, ps: PubSubWorld) -> None:
        ps.event_type("typeCrud")
        listed = ps.manager("GET", "/api/v1/eventType")
        assert listed.status_code == 200 and "typeCrud" in listed.json()
        read = ps.manager("GET", "/api/v1/eventType/typeCrud")
        assert read.json() == {"eventType": "typeCrud", "schema": SCHEMA}
        again = ps.manager(
            "POST", "/api/v1/eventType", json={"eventType": "typeCrud", "schema": SCHEMA}
        )
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["code"] == "event-type-exists"
        assert ps.manager("DELETE", "/api/v1/eventType/typeCrud").status_code == 204
        assert ps.manager("GET", "/api/v1/eventType/typeCrud").status_code == 204
        assert ps.manager("DELETE", "/api/v1/eventType/typeCrud").status_code == 404

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"eventType": "bad name!", "schema": SCHEMA}, "pubsub-invalid-request"),
            ({"eventType": "noSchema"}, "pubsub-invalid-request"),
            ({"eventType": "badSchema", "schema": {"type": "nonsense"}}, "pubsub-invalid-request"),
            ({"eventType": "listSchema", "schema": [1]}, "pubsub-invalid-request"),
        ],
    )
    def test_bad_event_types_are_refused(
        self, ps: PubSubWorld, body: dict[str, Any], code: str
    ) -> None:
        response = ps.manager("POST", "/api/v1/eventType", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == code
        names = ps.manager("GET", "/api/v1/eventType")
        assert names.status_code == 204 or body["eventType"] not in names.json()

    def test_only_the_room_manages_its_event_types(self, ps: PubSubWorld) -> None:
        response = ps.portal(
            "POST", "/api/v1/eventType", json={"eventType": "intruder", "schema": SCHEMA}
        )
        assert response.status_code == 403
        assert xroad_error(response) == "Server.ServerProxy.AccessDenied"
        assert any(
            e == "refused" and d["type"] == "Server.ServerProxy.AccessDenied" for e, d in ps.log()
        )
        ps.event_type("notYours")
        deleted = ps.portal("DELETE", "/api/v1/eventType/notYours")
        assert xroad_error(deleted) == "Server.ServerProxy.AccessDenied"
        assert ps.manager("GET", "/api/v1/eventType/notYours").status_code == 200

    def test_others_see_only_event_types_they_have_a_right_to(self, ps: PubSubWorld) -> None:
        ps.event_type("seenByPortal")
        ps.event_type("hiddenFromPortal")
        ps.grant("seenByPortal", PORTAL, "subscribe")
        listed = ps.portal("GET", "/api/v1/eventType")
        assert listed.status_code == 200
        assert "seenByPortal" in listed.json() and "hiddenFromPortal" not in listed.json()
        hidden = ps.portal("GET", "/api/v1/eventType/hiddenFromPortal")
        assert xroad_error(hidden) == "Server.ServerProxy.AccessDenied"
        assert ps.portal("GET", "/api/v1/eventType/seenByPortal").json()["eventType"] == (
            "seenByPortal"
        )

    def test_unknown_operations_and_methods(self, ps: PubSubWorld) -> None:
        assert ps.manager("GET", "/api/v1/nothing").status_code == 404
        wrong = ps.manager("PUT", "/pub/v1/whatever")
        assert wrong.status_code == 405 and "POST" in wrong.json()["detail"]

    def test_a_room_that_is_not_a_subsystem_is_unknown(self, ps: PubSubWorld) -> None:
        response = httpx.get(
            ps.world.consumer_gateway.url + "/r1/MA/GOV/CIVIL-REGISTRY/NOPE/api/v1/eventType",
            headers={"X-GovStack-Client": str(PORTAL)},
            timeout=20,
        )
        assert xroad_error(response) == "Server.ServerProxy.UnknownService"


# --- publishing -----------------------------------------------------------------------------


class TestPublish:
    def test_manager_publishes_and_reads_the_status(self, ps: PubSubWorld) -> None:
        ps.event_type("pubLocal")
        response = ps.manager(
            "POST", "/pub/v1/pubLocal", json={"eventType": "pubLocal", "event": BIRTH}
        )
        assert response.status_code == 201, response.text
        event_id = response.json()["id"]
        status = ps.manager("GET", f"/pub/v1/pubLocal/{event_id}")
        assert status.status_code == 200
        item = status.json()
        assert item["id"] == event_id and item["sequence"] == 1 and item["event"] == BIRTH
        assert item["publisherId"] == {
            "instanceId": "MA",
            "memberClass": "GOV",
            "memberCode": "CIVIL-REGISTRY",
            "applicationCode": "BIRTHS",
        }
        second = ps.manager("POST", "/pub/v1/pubLocal", json={"event": BIRTH})
        assert ps.manager("GET", f"/pub/v1/pubLocal/{second.json()['id']}").json()["sequence"] == 2
        records = [d for e, d in ps.log() if e == "pubsub.publish" and d["event"] == event_id]
        assert len(records) == 1 and records[0]["client"] == str(BIRTHS)
        assert records[0]["status"] == 201 and len(records[0]["event_sha256"]) == 64

    def test_event_not_matching_the_schema_is_refused(self, ps: PubSubWorld) -> None:
        ps.event_type("pubInvalid")
        bad = dict(BIRTH, gender="X", dateTime="yesterday")
        del bad["mother"]
        response = ps.manager("POST", "/pub/v1/pubInvalid", json={"event": bad})
        assert response.status_code == 400
        problem = response.json()
        assert problem["code"] == "event-refused"
        assert "mother" in problem["detail"] and "gender" in problem["detail"]
        assert "dateTime" in problem["detail"]  # formats are checked
        failed = [d for e, d in ps.log() if e == "pubsub.failed"]
        assert [d["error"] for d in failed if d["path"] == "/pub/v1/pubInvalid"] == [
            "event-refused"
        ]

    @pytest.mark.parametrize(
        ("body", "status"),
        [(b"not json", 400), (b"", 400), (json.dumps({"eventType": "pubBody"}).encode(), 400)],
    )
    def test_bad_publication_bodies(self, ps: PubSubWorld, body: bytes, status: int) -> None:
        ps.ensure("pubBody")
        response = ps.manager("POST", "/pub/v1/pubBody", content=body)
        assert response.status_code == status, response.text

    def test_unknown_event_type(self, ps: PubSubWorld) -> None:
        response = ps.manager("POST", "/pub/v1/neverMade", json={"event": BIRTH})
        assert response.status_code == 404
        assert response.json()["code"] == "event-type-not-found"

    def test_publishing_needs_the_right_and_travels_signed(self, ps: PubSubWorld) -> None:
        ps.event_type("pubRemote")
        refused = ps.portal("POST", "/pub/v1/pubRemote", json={"event": BIRTH})
        assert refused.status_code == 403
        assert xroad_error(refused) == "Server.ServerProxy.AccessDenied"
        ps.grant("pubRemote", PORTAL, "subscribe")  # subscribing is not publishing
        assert ps.portal("POST", "/pub/v1/pubRemote", json={"event": BIRTH}).status_code == 403
        ps.grant("pubRemote", PORTAL, "publish")
        accepted = ps.portal(
            "POST", "/pub/v1/pubRemote", json={"event": BIRTH}, headers={"X-Road-Id": "pub-r-1"}
        )
        assert accepted.status_code == 201, accepted.text
        assert "x-road-request-hash" in accepted.headers  # a signed answer, verified
        # both gateways logged the signed exchange; the room's gateway the publication
        consumer = [e for e, d in ps.log("gateway-eservices") if d.get("id") == "pub-r-1"]
        assert consumer == ["request.out", "response.in"]
        provider = [e for e, d in ps.log() if d.get("id") == "pub-r-1"]
        assert provider == ["request.in", "pubsub.publish", "response.out"]
        # the publisher reads its event's status; another subsystem may not
        event_id = accepted.json()["id"]
        assert ps.portal("GET", f"/pub/v1/pubRemote/{event_id}").status_code == 200
        other = ps.portal("GET", f"/pub/v1/pubRemote/{event_id}", client=OTHER)
        assert xroad_error(other) == "Server.ServerProxy.AccessDenied"
        assert ps.manager("GET", f"/pub/v1/pubRemote/{event_id}").status_code == 200

    def test_unknown_event_id(self, ps: PubSubWorld) -> None:
        ps.event_type("pubNoEvent")
        assert ps.manager("GET", "/pub/v1/pubNoEvent/nope").status_code == 404
        assert ps.manager("DELETE", "/pub/v1/pubNoEvent/nope").status_code == 404


# --- pull subscriptions ----------------------------------------------------------------------


class TestPull:
    def test_subscribe_pull_acknowledge_through_two_gateways(self, ps: PubSubWorld) -> None:
        ps.event_type("pullFlow")
        body = {"eventType": "pullFlow", "delivery": "PULL", "options": {"TTL": 600}}
        refused = ps.portal("POST", "/api/v1/subs/pullFlow", json=body)
        assert xroad_error(refused) == "Server.ServerProxy.AccessDenied"
        ps.grant("pullFlow", PORTAL, "subscribe")
        created = ps.portal("POST", "/api/v1/subs/pullFlow", json=body)
        assert created.status_code == 200, created.text
        item = created.json()
        assert item["delivery"] == "PULL" and item["options"] == {"TTL": 600, "FIFO": False}
        assert item["subscriberId"]["applicationCode"] == "PORTAL"
        assert ps.portal("POST", "/api/v1/subs/pullFlow", json=body).status_code == 409
        assert ps.portal("GET", "/api/v1/subs/pullFlow").json()["id"] == item["id"]
        assert item["id"] in [s["id"] for s in ps.portal("GET", "/api/v1/subs").json()]

        nothing = ps.portal("GET", "/pull/v1/pullFlow")
        assert nothing.status_code == 404 and nothing.json()["code"] == "no-event-available"
        first = ps.manager("POST", "/pub/v1/pullFlow", json={"event": BIRTH}).json()["id"]
        second = ps.manager(
            "POST", "/pub/v1/pullFlow", json={"event": dict(BIRTH, gender="F")}
        ).json()["id"]
        pulled = ps.portal("GET", "/pull/v1/pullFlow")
        assert pulled.status_code == 200 and pulled.json()["id"] == first
        assert pulled.json()["event"] == BIRTH and pulled.json()["eventType"] == "pullFlow"
        assert ps.portal("GET", "/pull/v1/pullFlow").json()["id"] == first  # until acknowledged
        assert ps.portal("DELETE", f"/pull/v1/pullFlow/{first}").status_code == 204
        assert ps.portal("DELETE", f"/pull/v1/pullFlow/{first}").status_code == 404
        assert ps.portal("GET", "/pull/v1/pullFlow").json()["id"] == second
        assert ps.portal("DELETE", f"/pull/v1/pullFlow/{second}").status_code == 204
        assert ps.portal("GET", "/pull/v1/pullFlow").status_code == 404
        status = ps.manager("GET", f"/pub/v1/pullFlow/{first}").json()
        assert status["status"] == {"acknowledged": 1}

        records = ps.log()
        delivered = [d for e, d in records if e == "pubsub.deliver" and d.get("event") == first]
        acked = [d for e, d in records if e == "pubsub.ack" and d.get("event") == first]
        assert len(delivered) == 2 and len(acked) == 1
        assert acked[0]["client"] == str(PORTAL) and acked[0]["from"] == "gateway-eservices"

    def test_pull_needs_a_pull_subscription(self, ps: PubSubWorld) -> None:
        ps.event_type("pullNone")
        ps.grant("pullNone", PORTAL, "subscribe")
        response = ps.portal("GET", "/pull/v1/pullNone")
        assert response.status_code == 409 and response.json()["code"] == "not-pull-subscribed"
        other = ps.portal("GET", "/pull/v1/pullNone", client=OTHER)
        assert xroad_error(other) == "Server.ServerProxy.AccessDenied"

    def test_events_before_the_subscription_are_not_delivered(self, ps: PubSubWorld) -> None:
        ps.event_type("pullLate")
        ps.manager("POST", "/pub/v1/pullLate", json={"event": BIRTH})
        ps.grant("pullLate", PORTAL, "subscribe")
        ps.portal("POST", "/api/v1/subs/pullLate", json={"delivery": "PULL"})
        assert ps.portal("GET", "/pull/v1/pullLate").status_code == 404

    def test_cancelled_and_expired_events_are_not_delivered(self, ps: PubSubWorld) -> None:
        ps.event_type("pullGone")
        ps.grant("pullGone", PORTAL, "subscribe")
        ps.portal("POST", "/api/v1/subs/pullGone", json={"delivery": "PULL"})
        cancelled = ps.manager("POST", "/pub/v1/pullGone", json={"event": BIRTH}).json()["id"]
        assert ps.manager("DELETE", f"/pub/v1/pullGone/{cancelled}").status_code == 204
        assert ps.portal("GET", "/pull/v1/pullGone").status_code == 404
        expiring = ps.manager("POST", "/pub/v1/pullGone", json={"event": BIRTH}).json()["id"]
        node = ps.world.instance.node("gateway-civil-registry")
        with node.session() as session:  # its TTL has run out
            session.execute(
                sa.text(
                    "UPDATE pubsub_deliveries SET expires_at = '2000-01-01 00:00:00.000000' "
                    "WHERE event_id = (SELECT id FROM pubsub_events WHERE public_id = :e)"
                ),
                {"e": expiring},
            )
        assert ps.portal("GET", "/pull/v1/pullGone").status_code == 404
        assert ps.manager("GET", f"/pub/v1/pullGone/{expiring}").json()["status"] == {"expired": 1}
        assert ps.manager("GET", f"/pub/v1/pullGone/{cancelled}").json()["status"] == {
            "cancelled": 1
        }

    def test_change_and_cancel_a_subscription(self, ps: PubSubWorld) -> None:
        ps.event_type("subChange")
        ps.grant("subChange", PORTAL, "subscribe")
        ps.portal("POST", "/api/v1/subs/subChange", json={"delivery": "PULL"})
        changed = ps.portal("PATCH", "/api/v1/subs/subChange", json={"options": {"FIFO": True}})
        assert changed.status_code == 201
        assert changed.json()["options"] == {"TTL": 3600, "FIFO": True}
        bad = ps.portal("PATCH", "/api/v1/subs/subChange", json={"options": {"TTL": -1}})
        assert bad.status_code == 400
        assert ps.portal("DELETE", "/api/v1/subs/subChange").status_code == 204
        assert ps.portal("GET", "/api/v1/subs/subChange").status_code == 404
        assert ps.portal("DELETE", "/api/v1/subs/subChange").status_code == 404
        assert ps.portal("PATCH", "/api/v1/subs/subChange", json={}).status_code == 404

    @pytest.mark.parametrize(
        "body",
        [
            {"delivery": "EMAIL"},
            {"delivery": "PULL", "options": {"FIFO": "yes"}},
            {"delivery": "PULL", "options": {"TTL": 0}},
            {"delivery": "PULL", "eventType": "somethingElse"},
            {"delivery": "PUSH"},  # no pushService
            {"delivery": "PULL", "subscriberId": {"instanceId": "MA", "memberClass": "GOV"}},
        ],
    )
    def test_bad_subscriptions_are_refused(self, ps: PubSubWorld, body: dict[str, Any]) -> None:
        ps.ensure("subBad")
        ps.grant("subBad", PORTAL, "subscribe")
        response = ps.portal("POST", "/api/v1/subs/subBad", json=body)
        assert response.status_code == 400, response.text
        assert ps.portal("GET", "/api/v1/subs/subBad").status_code == 404

    def test_withdrawing_the_right_cancels_the_subscription(self, ps: PubSubWorld) -> None:
        ps.event_type("subRevoked")
        ps.grant("subRevoked", PORTAL, "subscribe")
        ps.portal("POST", "/api/v1/subs/subRevoked", json={"delivery": "PULL"})
        ps.manager("POST", "/pub/v1/subRevoked", json={"event": BIRTH})
        node = ps.world.instance.node("gateway-civil-registry")
        with node.session() as session:
            pubsub.revoke(
                session, room=BIRTHS, name="subRevoked", subsystem=PORTAL, action="subscribe"
            )
        pulled = ps.portal("GET", "/pull/v1/subRevoked")
        assert xroad_error(pulled) == "Server.ServerProxy.AccessDenied"
        node_subs = ps.world.instance.node("gateway-civil-registry")
        with node_subs.session() as session:
            left = pubsub.list_subscriptions(session, room=BIRTHS, subscriber=PORTAL)
        assert "subRevoked" not in [s.event_type for s in left]


# --- push subscriptions ----------------------------------------------------------------------


class TestPush:
    def test_push_reaches_the_subscribers_service(
        self, ps: PubSubWorld, fast_retries: None
    ) -> None:
        ps.event_type("pushFlow")
        ps.grant("pushFlow", PORTAL, "subscribe")
        body = {"delivery": "PUSH", "options": {"pushService": "events"}}
        created = ps.portal("POST", "/api/v1/subs/pushFlow", json=body)
        assert created.status_code == 200, created.text
        assert created.json()["options"]["pushService"] == "events"
        event_id = ps.manager("POST", "/pub/v1/pushFlow", json={"event": BIRTH}).json()["id"]
        arrived = wait_until(
            lambda: [r for r in ps.receiver.received if r["item"]["id"] == event_id], "the push"
        )
        assert arrived[0]["path"] == "/pushFlow"
        assert arrived[0]["item"]["event"] == BIRTH
        assert arrived[0]["headers"]["x-road-client"] == str(BIRTHS)
        wait_until(
            lambda: (
                ps.manager("GET", f"/pub/v1/pushFlow/{event_id}").json()["status"]
                == {"acknowledged": 1}
            ),
            "the acknowledgement",
        )
        records = ps.log()
        assert [
            d["status"] for e, d in records if e == "pubsub.deliver" and d["event"] == event_id
        ] == [200]
        assert [
            d["subscriber"] for e, d in records if e == "pubsub.ack" and d["event"] == event_id
        ] == [str(PORTAL)]
        # the push itself is an X-Road call, logged by both gateways
        consumer = ps.log("gateway-eservices")
        assert any(
            e == "response.out" and d.get("to") == "gateway-civil-registry" for e, d in consumer
        )

    def test_push_to_a_subscriber_on_the_rooms_own_gateway(
        self, ps: PubSubWorld, fast_retries: None
    ) -> None:
        ps.event_type("pushSelf")
        body = {"delivery": "PUSH", "options": {"pushService": "inbox"}}
        assert ps.manager("POST", "/api/v1/subs/pushSelf", json=body).status_code == 200
        event_id = ps.manager("POST", "/pub/v1/pushSelf", json={"event": BIRTH}).json()["id"]
        arrived = wait_until(
            lambda: [r for r in ps.receiver.received if r["item"]["id"] == event_id], "the push"
        )
        assert arrived[0]["headers"]["x-road-service"] == str(LOCAL_PUSH_SERVICE)

    def test_push_is_retried_with_back_off(self, ps: PubSubWorld, fast_retries: None) -> None:
        ps.event_type("pushRetry")
        ps.grant("pushRetry", PORTAL, "subscribe")
        ps.portal(
            "POST",
            "/api/v1/subs/pushRetry",
            json={"delivery": "PUSH", "options": {"pushService": "events"}},
        )
        ps.receiver.failures = 3
        event_id = ps.manager("POST", "/pub/v1/pushRetry", json={"event": BIRTH}).json()["id"]
        wait_until(
            lambda: (
                ps.manager("GET", f"/pub/v1/pushRetry/{event_id}").json()["status"]
                == {"acknowledged": 1}
            ),
            "the acknowledged push",
        )
        assert len([r for r in ps.receiver.received if r["item"]["id"] == event_id]) == 1
        attempts = [d for e, d in ps.log() if e == "pubsub.deliver" and d["event"] == event_id]
        assert [d["attempt"] for d in attempts] == [1, 2, 3, 4]
        assert [d["status"] for d in attempts] == [503, 503, 503, 200]
        assert all("retry_at" in d for d in attempts[:3])

    def test_fifo_push_keeps_the_order(self, ps: PubSubWorld, fast_retries: None) -> None:
        ps.event_type("pushFifo")
        ps.grant("pushFifo", PORTAL, "subscribe")
        ps.portal(
            "POST",
            "/api/v1/subs/pushFifo",
            json={"delivery": "PUSH", "options": {"pushService": "events", "FIFO": True}},
        )
        ps.receiver.failures = 2  # the first event fails twice; the second must wait for it
        ids = [
            ps.manager("POST", "/pub/v1/pushFifo", json={"event": BIRTH}).json()["id"]
            for _ in range(3)
        ]
        wait_until(
            lambda: len([r for r in ps.receiver.received if r["path"] == "/pushFifo"]) == 3,
            "three pushes",
        )
        got = [r["item"]["id"] for r in ps.receiver.received if r["path"] == "/pushFifo"]
        assert got == ids

    def test_push_service_must_be_a_registered_service_of_the_subscriber(
        self, ps: PubSubWorld
    ) -> None:
        ps.event_type("pushBad")
        ps.grant("pushBad", PORTAL, "subscribe")
        response = ps.portal(
            "POST",
            "/api/v1/subs/pushBad",
            json={"delivery": "PUSH", "options": {"pushService": "nowhere"}},
        )
        assert xroad_error(response) == "Server.ServerProxy.UnknownService"
        assert ps.portal("GET", "/api/v1/subs/pushBad").status_code == 404


def test_message_log_stays_intact(ps: PubSubWorld) -> None:
    ps.event_type("logged")
    ps.manager("POST", "/pub/v1/logged", json={"event": BIRTH})
    for name in ("gateway-eservices", "gateway-civil-registry"):
        node = ps.world.instance.node(name)
        with node.session() as session:
            report = audit.verify_chain(
                session, MESSAGE_LOG, verifier=jws.keystore_verifier(session)
            )
        assert report.ok, report.findings


def test_a_registered_service_keeps_its_code(ps: PubSubWorld) -> None:
    """``pub`` of a subsystem that registered a service ``pub`` is that service, not pub/sub."""
    response = httpx.post(
        ps.world.consumer_gateway.url + "/r1/MA/GOV/ESERVICES/OTHER/pub/v1/anything",
        headers={"X-GovStack-Client": str(PORTAL)},
        json={"event": BIRTH},
        timeout=20,
    )
    assert response.status_code == 404  # the provider system's own answer
    assert response.headers["x-provider"] == "yes"


def test_answers_have_the_shapes_of_the_govstack_spec(ps: PubSubWorld) -> None:
    if not SPEC.is_file():
        pytest.skip(f"the GovStack PubSub spec {SPEC} is absent (../shared is not here)")
    schemas = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]

    def check(value: Any, name: str) -> None:
        jsonschema.Draft202012Validator(schemas[name]).validate(value)

    ps.event_type("shapes")
    check(ps.manager("GET", "/api/v1/eventType/shapes").json(), "EventType")
    ps.grant("shapes", PORTAL, "subscribe")
    sub = ps.portal("POST", "/api/v1/subs/shapes", json={"delivery": "PULL"}).json()
    check(sub, "SubscriptionItem")
    for item in ps.portal("GET", "/api/v1/subs").json():
        check(item, "SubscriptionItem")
    published = ps.manager("POST", "/pub/v1/shapes", json={"eventType": "shapes", "event": BIRTH})
    check(published.json(), "PublishEventResult")
    check(ps.manager("GET", f"/pub/v1/shapes/{published.json()['id']}").json(), "EventItem")
    check(ps.portal("GET", "/pull/v1/shapes").json(), "EventItem")
