"""Pub/sub retention: ``pubsub.prune`` and ``jisr exchange pubsub prune`` delete deliveries
that are over and older than the retention, then events left without deliveries; pending
deliveries, recent ones and the message log are kept."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.clock import utcnow
from jisr.core.instance import REGISTRY_NODE, Instance, Node
from jisr.core.net import free_port
from jisr.exchange import provisioning, pubsub, service
from jisr.exchange.identifiers import MemberId, SubsystemId
from jisr.exchange.pubsub_models import PubSubDelivery, PubSubEvent

pytestmark = [pytest.mark.db]
runner = CliRunner()
ROOM = SubsystemId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS")
PORTAL = SubsystemId.parse("MA/GOV/ESERVICES/PORTAL")
OTHER = SubsystemId.parse("MA/GOV/ESERVICES/OTHER")
GATEWAY = "gateway-civil-registry"
LONG_AGO = dt.timedelta(days=40)


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["exchange", "pubsub", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def instance(instance_factory: Any) -> Instance:
    made: Instance = instance_factory("MA")
    registry = made.node(REGISTRY_NODE)
    with registry.session() as session:
        signer = registry.checkpoint_signer(session)
        for member in ("MA/GOV/CIVIL-REGISTRY", "MA/GOV/ESERVICES"):
            service.add_member(session, member=MemberId.parse(member), name=member, signer=signer)
        for subsystem in (ROOM, PORTAL, OTHER):
            service.add_subsystem(session, subsystem=subsystem, signer=signer)
    provisioning.create_gateway(
        made, member=MemberId.parse("MA/GOV/CIVIL-REGISTRY"), address=f"127.0.0.1:{free_port()}"
    )
    return made


def make_type(node: Node, name: str) -> None:
    """An event type with PULL subscriptions of PORTAL and OTHER (TTL 30 days)."""
    pull = {"delivery": "PULL", "options": {"TTL": pubsub.MAX_TTL_SECONDS}}
    with node.session() as session:
        pubsub.create_event_type(
            session, room=ROOM, name=name, schema={"type": "object"}, created_by="test"
        )
        for who in (PORTAL, OTHER):
            pubsub.grant(session, room=ROOM, name=name, subsystem=who, action="subscribe")
            options = pubsub.parse_subscription(pull, name=name, subscriber=who)
            pubsub.subscribe(session, room=ROOM, name=name, subscriber=who, options=options)


def row_of(event_id: str) -> Any:
    """The database id of the event ``event_id`` (a subquery)."""
    return sa.select(PubSubEvent.id).where(PubSubEvent.public_id == event_id).scalar_subquery()


def publish(node: Node, name: str, *, ago: dt.timedelta = dt.timedelta(0)) -> str:
    with node.session() as session:
        event_id = pubsub.publish(session, room=ROOM, name=name, publisher=ROOM, event={}).id
        session.execute(
            sa.update(PubSubEvent)
            .where(PubSubEvent.public_id == event_id)
            .values(published_at=utcnow() - ago)
        )
    return event_id


def ack(node: Node, name: str, who: SubsystemId, event_id: str, *, ago: dt.timedelta) -> None:
    with node.session() as session:
        pubsub.acknowledge(session, room=ROOM, name=name, subscriber=who, event_id=event_id)
        session.flush()
        session.execute(
            sa.update(PubSubDelivery)
            .where(
                PubSubDelivery.event_id == row_of(event_id),
                PubSubDelivery.state == "acknowledged",
            )
            .values(acknowledged_at=utcnow() - ago)
        )


def left(node: Node, *event_ids: str) -> dict[str, dict[str, int]]:
    """For each event still there: its deliveries per state."""
    with node.session() as session:
        rows = session.execute(
            sa.select(PubSubEvent.public_id, PubSubDelivery.state)
            .outerjoin(PubSubDelivery, PubSubDelivery.event_id == PubSubEvent.id)
            .where(PubSubEvent.public_id.in_(event_ids))
        ).all()
    found: dict[str, dict[str, int]] = {}
    for public_id, state in rows:
        states = found.setdefault(public_id, {})
        if state is not None:
            states[state] = states.get(state, 0) + 1
    return found


def log_size(node: Node) -> int:
    with node.session() as session:
        return int(session.scalar(sa.text("SELECT count(*) FROM audit_records")) or 0)


def test_prune_keeps_what_is_pending_or_recent(instance: Instance) -> None:
    node = instance.node(GATEWAY)
    make_type(node, "retained")
    done = publish(node, "retained", ago=LONG_AGO)  # delivered to both long ago: goes
    for who in (PORTAL, OTHER):
        ack(node, "retained", who, done, ago=LONG_AGO)
    half = publish(node, "retained", ago=LONG_AGO)  # OTHER has not acknowledged it yet
    ack(node, "retained", PORTAL, half, ago=LONG_AGO)
    recent = publish(node, "retained", ago=LONG_AGO)  # acknowledged yesterday: stays
    for who in (PORTAL, OTHER):
        ack(node, "retained", who, recent, ago=dt.timedelta(days=1))
    expired = publish(node, "retained", ago=LONG_AGO)  # its TTL ran out long ago: goes
    cancelled = publish(node, "retained", ago=LONG_AGO)  # stopped long ago: goes
    fresh = publish(node, "retained")  # pending, new: stays
    with node.session() as session:
        session.execute(
            sa.update(PubSubDelivery)
            .where(PubSubDelivery.event_id == row_of(expired))
            .values(expires_at=utcnow() - dt.timedelta(days=35))
        )
        pubsub.cancel_event(
            session, room=ROOM, name="retained", event_id=cancelled, publisher=str(ROOM)
        )
        session.execute(
            sa.update(PubSubEvent)
            .where(PubSubEvent.public_id == cancelled)
            .values(cancelled_at=utcnow() - dt.timedelta(days=35))
        )
    records = log_size(node)
    everything = (done, half, recent, expired, cancelled, fresh)

    with node.session() as session:
        pruned = pubsub.prune(session, older_than=dt.timedelta(days=30))
    assert pruned == pubsub.Pruned(deliveries=2 + 1 + 2 + 2, events=3)
    assert left(node, *everything) == {
        half: {"pending": 1},
        recent: {"acknowledged": 2},
        fresh: {"pending": 2},
    }
    assert log_size(node) == records  # the message log and audit chain keep everything
    # what is pending can still be pulled and acknowledged
    with node.session() as session:
        assert pubsub.pull(session, room=ROOM, name="retained", subscriber=OTHER).id == half
        pubsub.acknowledge(session, room=ROOM, name="retained", subscriber=OTHER, event_id=half)
    # a shorter retention reaches the recent ones; pending ones never go
    with node.session() as session:
        again = pubsub.prune(session, older_than=dt.timedelta(hours=1))
    assert again == pubsub.Pruned(deliveries=2, events=1)  # recent; half waits an hour more
    assert left(node, *everything) == {half: {"acknowledged": 1}, fresh: {"pending": 2}}
    with node.session() as session:
        assert pubsub.prune(session, older_than=dt.timedelta(0)) == pubsub.Pruned(1, 1)
    assert left(node, *everything) == {fresh: {"pending": 2}}


def test_prune_in_chunks_takes_short_transactions_until_nothing_is_left(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = instance.node(GATEWAY)
    make_type(node, "chunked")
    done = [publish(node, "chunked", ago=LONG_AGO) for _ in range(7)]
    for event_id in done:
        for who in (PORTAL, OTHER):
            ack(node, "chunked", who, event_id, ago=LONG_AGO)
    pending = publish(node, "chunked", ago=LONG_AGO)  # never acknowledged: stays
    # ``limit`` caps each table's rows in one transaction
    with node.session() as session:
        first = pubsub.prune(session, older_than=dt.timedelta(days=30), limit=3)
        session.rollback()
    # three deliveries; an event goes only once both of its own have gone
    assert first.deliveries == 3 and first.events <= 1
    calls: list[pubsub.Pruned] = []
    one = pubsub.prune

    def counted(session: Any, **options: Any) -> pubsub.Pruned:
        assert options["limit"] == 3
        calls.append(one(session, **options))
        return calls[-1]

    monkeypatch.setattr(pubsub, "prune", counted)
    pruned = pubsub.prune_in_chunks(node, older_than=dt.timedelta(days=30), chunk=3, pause=0)
    assert pruned == pubsub.Pruned(deliveries=14, events=7)
    assert sum(c.deliveries for c in calls) == 14 and len(calls) >= 5  # 14 rows, 3 a time
    assert all(c.deliveries <= 3 and c.events <= 3 for c in calls)
    assert calls[-1].deliveries < 3 and calls[-1].events < 3  # the last found less: done
    assert left(node, *done, pending) == {pending: {"pending": 2}}


def test_prune_command(instance: Instance) -> None:
    node = instance.node(GATEWAY)
    make_type(node, "cliPrune")
    old = publish(node, "cliPrune", ago=LONG_AGO)
    for who in (PORTAL, OTHER):
        ack(node, "cliPrune", who, old, ago=dt.timedelta(days=10))
    d = str(instance.path)
    code, output = invoke("prune", "--dir", d, "--json")  # 30 days by default: kept
    assert code == 0, output
    assert [r["gateway"] for r in json.loads(output)] == [GATEWAY]
    assert old in left(node, old)
    code, output = invoke("prune", "--dir", d, "--older-than-days", "7")
    assert code == 0, output
    assert f"{GATEWAY}: 2 deliveries and 1 events older than 7 days pruned." in output
    assert left(node, old) == {}
    with node.session() as session:
        recorded = (
            session.execute(
                sa.text("SELECT data FROM audit_records WHERE event = 'exchange.pubsub.pruned'")
            )
            .scalars()
            .all()
        )
    assert {"deliveries": 2, "events": 1, "older_than_days": 7} in [json.loads(r) for r in recorded]


@pytest.mark.parametrize("days", ["abc", "-1", "3651", "1.5", ""])
def test_prune_command_refuses_a_bad_number(instance: Instance, days: str) -> None:
    node = instance.node(GATEWAY)
    with node.session() as session:
        before = session.scalar(sa.select(sa.func.count(PubSubDelivery.id)))
    records = log_size(node)
    code, output = invoke("prune", "--dir", str(instance.path), "--older-than-days", days)
    assert code == 2, output
    assert "--older-than-days must be a whole number of days from 0 to 3650" in output
    assert "Traceback" not in output
    with node.session() as session:
        assert session.scalar(sa.select(sa.func.count(PubSubDelivery.id))) == before
    assert log_size(node) == records


def test_prune_command_on_a_missing_instance(tmp_path: Any) -> None:
    code, output = invoke("prune", "--dir", str(tmp_path / "nowhere"))
    assert code == 1 and "No Jisr instance" in output and "Traceback" not in output
    code, output = invoke("prune", "--dir", str(tmp_path / "nowhere"), "--older-than-days", "x")
    assert code == 2 and "whole number of days" in output  # the number is checked first
