"""Pub/sub state survives a restart of the room's gateway: an unacknowledged event is still
pulled, and a push that kept failing is delivered by the restarted gateway."""

from __future__ import annotations

from typing import Any

import pytest

from jisr.exchange import pubsub, server

from .conftest import BIRTHS, PORTAL, build_world, serve_asgi
from .test_pubsub import BIRTH, PubSubWorld, Receiver, add_push_service, wait_until

pytestmark = [pytest.mark.db, pytest.mark.slow]


def test_unacknowledged_events_survive_a_gateway_restart(
    instance_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pubsub, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(pubsub, "RETRY_MAX_SECONDS", 0.2)
    monkeypatch.setattr(pubsub, "PUSH_POLL_SECONDS", 0.05)
    world = build_world(instance_factory("MA"))
    receiver = Receiver()
    receiver_server = serve_asgi(receiver)
    try:
        add_push_service(world, receiver_server.url)
        ps = PubSubWorld(world, receiver, receiver_server)
        for name in ("kept", "pushedLater"):
            ps.event_type(name)
            ps.grant(name, PORTAL, "subscribe")
        assert ps.portal("POST", "/api/v1/subs/kept", json={"delivery": "PULL"}).status_code == 200
        push = {"delivery": "PUSH", "options": {"pushService": "events"}}
        assert ps.portal("POST", "/api/v1/subs/pushedLater", json=push).status_code == 200
        assert ps.manager("POST", "/api/v1/subs/kept", json={"delivery": "PULL"}).status_code == 200

        receiver.failures = 10**6  # the subscriber's system is down
        pulled_id = ps.manager("POST", "/pub/v1/kept", json={"event": BIRTH}).json()["id"]
        pushed_id = ps.manager("POST", "/pub/v1/pushedLater", json={"event": BIRTH}).json()["id"]
        wait_until(lambda: receiver.refused >= 2, "failed pushes")
        # the manager pulled its copy before the restart but did not acknowledge it
        assert ps.manager("GET", "/pull/v1/kept").json()["id"] == pulled_id

        world.gateways["gateway-civil-registry"].stop()
        world.gateways["gateway-civil-registry"] = server.start_gateway(
            world.instance, "gateway-civil-registry"
        )
        receiver.failures = 0  # the subscriber's system is back

        arrived = wait_until(
            lambda: [r for r in receiver.received if r["item"]["id"] == pushed_id], "the push"
        )
        assert arrived[0]["item"]["event"] == BIRTH
        wait_until(
            lambda: (
                ps.manager("GET", f"/pub/v1/pushedLater/{pushed_id}").json()["status"]
                == {"acknowledged": 1}
            ),
            "the acknowledged push",
        )
        for pull in (ps.portal, ps.manager):
            response = pull("GET", "/pull/v1/kept")
            assert response.status_code == 200, response.text
            assert response.json()["id"] == pulled_id
            assert pull("DELETE", f"/pull/v1/kept/{pulled_id}").status_code == 204
        assert ps.manager("GET", "/pull/v1/kept").status_code == 404
        records = [d for e, d in ps.log() if e == "pubsub.deliver" and d["event"] == pushed_id]
        assert records[-1]["status"] == 200 and all(d["status"] == 503 for d in records[:-1])
        assert str(BIRTHS) in {d.get("client") for e, d in ps.log() if e == "pubsub.ack"}
    finally:
        receiver_server.stop()
        world.close()
