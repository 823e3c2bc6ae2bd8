"""The pusher over real HTTP through two gateways: each push is its own task, so a slow
subscriber does not hold back another's deliveries; a delivery is never pushed twice while its
push is in flight; a FIFO subscription still has one event on its way at a time; and the
pusher prunes delivered events past the retention.

PORTAL's push service ``events`` (through the e-services gateway) can be held: its requests
wait until the test releases them. BIRTHS' push service ``inbox`` (on the room's own gateway)
answers at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from jisr.core.clock import utcnow
from jisr.exchange import pubsub
from jisr.exchange.pubsub_models import PubSubDelivery, PubSubEvent

from .conftest import PORTAL, build_world, read_body, serve_asgi
from .test_pubsub import (
    BIRTH,
    LOCAL_PUSH_SERVICE,
    PUSH_SERVICE,
    PubSubWorld,
    Receiver,
    add_push_service,
    wait_until,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]


class HoldingReceiver(Receiver):
    """Both push services; requests to PORTAL's ``events`` wait while ``gate`` is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.arrived: list[tuple[str, str]] = []  # (service, event id) on arrival
        self.answered: list[tuple[str, str]] = []  # (service, event id) once answered

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        item = json.loads(body)
        who = headers.get("x-road-service", "")
        self.arrived.append((who, item["id"]))
        while who == str(PUSH_SERVICE) and not self.gate.is_set():
            await asyncio.sleep(0.02)
        self.received.append({"path": scope["path"], "headers": headers, "item": item})
        self.answered.append((who, item["id"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def got(self, service: Any, event_id: str, *, answered: bool = True) -> int:
        seen = self.answered if answered else self.arrived
        return seen.count((str(service), event_id))


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[tuple[PubSubWorld, HoldingReceiver]]:
    made = build_world(instance_factory("MA"))
    receiver = HoldingReceiver()
    server = serve_asgi(receiver)
    try:
        add_push_service(made, server.url)
        yield PubSubWorld(made, receiver, server), receiver
    finally:
        receiver.gate.set()
        server.stop()
        made.close()


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubsub, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(pubsub, "PUSH_POLL_SECONDS", 0.05)


def subscribe_both(ps: PubSubWorld, name: str, *, fifo: bool) -> None:
    ps.event_type(name)
    ps.grant(name, PORTAL, "subscribe")
    options = {"pushService": "events", "FIFO": fifo}
    assert (
        ps.portal(
            "POST", f"/api/v1/subs/{name}", json={"delivery": "PUSH", "options": options}
        ).status_code
        == 200
    )
    mine = {"delivery": "PUSH", "options": {"pushService": "inbox"}}
    assert ps.manager("POST", f"/api/v1/subs/{name}", json=mine).status_code == 200


def attempts(ps: PubSubWorld, event_id: str, subscriber: Any) -> list[int]:
    return [
        d["attempt"]
        for e, d in ps.log()
        if e == "pubsub.deliver" and d["event"] == event_id and d["subscriber"] == str(subscriber)
    ]


def test_a_slow_subscriber_does_not_hold_back_another(
    world: tuple[PubSubWorld, HoldingReceiver],
) -> None:
    ps, receiver = world
    subscribe_both(ps, "slowPush", fifo=False)
    receiver.gate.clear()  # PORTAL's service stops answering
    try:
        first = ps.manager("POST", "/pub/v1/slowPush", json={"event": BIRTH}).json()["id"]
        wait_until(lambda: receiver.got(PUSH_SERVICE, first, answered=False), "the held push")
        wait_until(lambda: receiver.got(LOCAL_PUSH_SERVICE, first), "the first push to BIRTHS")
        # published while PORTAL's push is still on its way: BIRTHS gets it all the same
        second = ps.manager("POST", "/pub/v1/slowPush", json={"event": BIRTH}).json()["id"]
        wait_until(
            lambda: receiver.got(LOCAL_PUSH_SERVICE, second), "the second push to BIRTHS", 20
        )
        assert receiver.got(PUSH_SERVICE, first) == 0  # PORTAL's first is still held
        wait_until(
            lambda: (
                ps.manager("GET", f"/pub/v1/slowPush/{second}").json()["status"]
                == {"acknowledged": 1, "pending": 1}
            ),
            "BIRTHS' acknowledgement",
        )
    finally:
        receiver.gate.set()
    for event_id in (first, second):
        wait_until(
            lambda e=event_id: (
                ps.manager("GET", f"/pub/v1/slowPush/{e}").json()["status"] == {"acknowledged": 2}
            ),
            "both acknowledged",
        )
        # pushed once each, although the pusher kept picking while it was in flight
        assert receiver.got(PUSH_SERVICE, event_id, answered=False) == 1
        assert attempts(ps, event_id, PORTAL) == [1]


def test_a_slow_fifo_subscriber_gets_one_event_at_a_time(
    world: tuple[PubSubWorld, HoldingReceiver],
) -> None:
    ps, receiver = world
    subscribe_both(ps, "slowFifo", fifo=True)
    receiver.gate.clear()
    try:
        ids = [
            ps.manager("POST", "/pub/v1/slowFifo", json={"event": BIRTH}).json()["id"]
            for _ in range(3)
        ]
        wait_until(lambda: receiver.got(PUSH_SERVICE, ids[0], answered=False), "the held push")
        wait_until(
            lambda: all(receiver.got(LOCAL_PUSH_SERVICE, e) for e in ids), "the pushes to BIRTHS"
        )
        # the later events wait for the first, held one
        assert [e for s, e in receiver.arrived if s == str(PUSH_SERVICE) and e in ids] == ids[:1]
    finally:
        receiver.gate.set()
    wait_until(lambda: all(receiver.got(PUSH_SERVICE, e) for e in ids), "the pushes to PORTAL")
    assert [e for s, e in receiver.answered if s == str(PUSH_SERVICE) and e in ids] == ids


def test_the_pusher_prunes_past_the_retention(
    world: tuple[PubSubWorld, HoldingReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    ps, receiver = world
    subscribe_both(ps, "pruned", fifo=False)
    delivered = ps.manager("POST", "/pub/v1/pruned", json={"event": BIRTH}).json()["id"]
    wait_until(
        lambda: (
            ps.manager("GET", f"/pub/v1/pruned/{delivered}").json()["status"] == {"acknowledged": 2}
        ),
        "the deliveries",
    )
    receiver.gate.clear()  # the next event stays pending for PORTAL
    try:
        pending = ps.manager("POST", "/pub/v1/pruned", json={"event": BIRTH}).json()["id"]
        wait_until(
            lambda: (
                ps.manager("GET", f"/pub/v1/pruned/{pending}").json()["status"]
                == {"acknowledged": 1, "pending": 1}
            ),
            "BIRTHS' acknowledged copy",
        )
        node = ps.world.instance.node("gateway-civil-registry")
        long_ago = utcnow() - dt.timedelta(days=31)
        with node.session() as session:
            ids = dict(
                session.execute(
                    sa.select(PubSubEvent.public_id, PubSubEvent.id).where(
                        PubSubEvent.public_id.in_([delivered, pending])
                    )
                ).all()
            )
            session.execute(
                sa.update(PubSubEvent)
                .where(PubSubEvent.id.in_(ids.values()))
                .values(published_at=long_ago)
            )
            session.execute(
                sa.update(PubSubDelivery)
                .where(PubSubDelivery.event_id.in_(ids.values()))
                .values(acknowledged_at=long_ago)
            )
        monkeypatch.setattr(pubsub, "PRUNE_EVERY_SECONDS", 0.0)

        def left() -> dict[str, int]:
            with node.session() as session:
                rows = session.execute(
                    sa.select(PubSubEvent.public_id, sa.func.count(PubSubDelivery.id))
                    .outerjoin(PubSubDelivery, PubSubDelivery.event_id == PubSubEvent.id)
                    .where(PubSubEvent.id.in_(ids.values()))
                    .group_by(PubSubEvent.public_id)
                ).all()
            return {public_id: int(count) for public_id, count in rows}

        # the delivered event goes with its deliveries; the other keeps PORTAL's pending one
        wait_until(lambda: left() == {pending: 1}, "the pruning")
    finally:
        receiver.gate.set()
    wait_until(lambda: receiver.got(PUSH_SERVICE, pending), "the pending push")
    assert receiver.got(PUSH_SERVICE, pending, answered=False) == 1
    assert ps.manager("GET", f"/pub/v1/pruned/{delivered}").status_code == 404
    # the message log keeps the records of the pruned event
    assert any(e == "pubsub.publish" and d["event"] == delivered for e, d in ps.log())
