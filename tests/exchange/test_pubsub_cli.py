"""``jisr exchange pubsub``: event types, rights and subscriptions of a room, from the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.exchange import provisioning, pubsub, service
from jisr.exchange.identifiers import MemberId, SubsystemId

pytestmark = [pytest.mark.db]
runner = CliRunner()
ROOM = "MA/GOV/CIVIL-REGISTRY/BIRTHS"
PORTAL = "MA/GOV/ESERVICES/PORTAL"


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
        for subsystem in (ROOM, PORTAL):
            service.add_subsystem(session, subsystem=SubsystemId.parse(subsystem), signer=signer)
    provisioning.create_gateway(
        made, member=MemberId.parse("MA/GOV/CIVIL-REGISTRY"), address=f"127.0.0.1:{free_port()}"
    )
    return made


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "birth.json"
    path.write_text(json.dumps({"type": "object", "required": ["mother"]}), encoding="utf-8")
    return path


def test_event_types(instance: Instance, schema_file: Path, tmp_path: Path) -> None:
    d = str(instance.path)
    code, output = invoke("type", "add", ROOM, "cliBirth", "--schema", str(schema_file), "--dir", d)
    assert code == 0, output
    assert "cliBirth" in output
    code, output = invoke("type", "add", ROOM, "cliBirth", "--schema", str(schema_file), "--dir", d)
    assert code == 1 and "already has event type cliBirth" in output
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": 12}', encoding="utf-8")
    code, output = invoke("type", "add", ROOM, "cliBad", "--schema", str(bad), "--dir", d)
    assert code == 1 and "not a valid JSON Schema" in output
    bad.write_text("not json", encoding="utf-8")
    code, output = invoke("type", "add", ROOM, "cliBad", "--schema", str(bad), "--dir", d)
    assert code == 1 and "is not a JSON file" in output
    code, output = invoke("type", "list", ROOM, "--dir", d, "--json")
    assert code == 0 and "cliBirth" in [t["eventType"] for t in json.loads(output)]
    assert "cliBad" not in output
    code, output = invoke("type", "show", ROOM, "cliBirth", "--dir", d)
    assert code == 0 and json.loads(output)["schema"]["required"] == ["mother"]
    assert invoke("type", "remove", ROOM, "cliBirth", "--dir", d)[0] == 0
    code, output = invoke("type", "show", ROOM, "cliBirth", "--dir", d)
    assert code == 1 and "has no event type cliBirth" in output
    node = instance.node("gateway-civil-registry")
    with node.session() as session:
        events = (
            session.execute(
                sa.text("SELECT event FROM audit_records WHERE event LIKE 'exchange.pubsub.%'")
            )
            .scalars()
            .all()
        )
    assert "exchange.pubsub.event-type.created" in events
    assert "exchange.pubsub.event-type.deleted" in events


def test_rights(instance: Instance, schema_file: Path) -> None:
    d = str(instance.path)
    invoke("type", "add", ROOM, "cliRights", "--schema", str(schema_file), "--dir", d)
    code, output = invoke("allow", ROOM, "cliRights", PORTAL, "--dir", d)
    assert code == 1 and "--publish, --subscribe" in output
    code, output = invoke(
        "allow", ROOM, "cliRights", PORTAL, "--publish", "--subscribe", "--dir", d
    )
    assert code == 0, output
    code, output = invoke("rights", ROOM, "cliRights", "--dir", d, "--json")
    assert json.loads(output) == [
        {"eventType": "cliRights", "subsystem": PORTAL, "right": "publish"},
        {"eventType": "cliRights", "subsystem": PORTAL, "right": "subscribe"},
    ]
    assert invoke("deny", ROOM, "cliRights", PORTAL, "--publish", "--dir", d)[0] == 0
    code, output = invoke("deny", ROOM, "cliRights", PORTAL, "--publish", "--dir", d)
    assert code == 1 and "has no right to publish" in output
    code, output = invoke("rights", ROOM, "nothing", "--dir", d)
    assert code == 1 and "has no event type nothing" in output


def test_subscriptions(instance: Instance, schema_file: Path) -> None:
    d = str(instance.path)
    invoke("type", "add", ROOM, "cliSubs", "--schema", str(schema_file), "--dir", d)
    invoke("allow", ROOM, "cliSubs", PORTAL, "--subscribe", "--dir", d)
    node = instance.node("gateway-civil-registry")
    portal = SubsystemId.parse(PORTAL)
    with node.session() as session:
        options = pubsub.parse_subscription({"delivery": "PULL"}, name="cliSubs", subscriber=portal)
        pubsub.subscribe(
            session,
            room=SubsystemId.parse(ROOM),
            name="cliSubs",
            subscriber=portal,
            options=options,
        )
    code, output = invoke("subscription", "list", ROOM, "--subscriber", PORTAL, "--dir", d)
    assert code == 0 and "cliSubs" in output and "PULL" in output
    assert invoke("subscription", "remove", ROOM, "cliSubs", PORTAL, "--dir", d)[0] == 0
    code, output = invoke("subscription", "remove", ROOM, "cliSubs", PORTAL, "--dir", d)
    assert code == 1 and "has no subscription" in output
    code, output = invoke("subscription", "list", ROOM, "--dir", d, "--json")
    assert code == 0 and "cliSubs" not in output
    # withdrawing the right to subscribe cancels a subscription
    with node.session() as session:
        pubsub.subscribe(
            session,
            room=SubsystemId.parse(ROOM),
            name="cliSubs",
            subscriber=portal,
            options=options,
        )
    assert invoke("deny", ROOM, "cliSubs", PORTAL, "--subscribe", "--dir", d)[0] == 0
    assert "cliSubs" not in invoke("subscription", "list", ROOM, "--dir", d)[1]


def test_refusals_of_the_room(instance: Instance, schema_file: Path) -> None:
    d = str(instance.path)
    code, output = invoke("type", "list", "MA/GOV/CIVIL-REGISTRY/NOPE", "--dir", d)
    assert code == 1 and "No subsystem MA/GOV/CIVIL-REGISTRY/NOPE" in output
    code, output = invoke("type", "list", PORTAL, "--dir", d)  # e-services has no gateway
    assert code == 1 and "has no gateway" in output
    code, output = invoke("type", "list", "MA/GOV/BROKEN", "--dir", d)
    assert code == 1
    code, output = invoke("type", "add", ROOM, "bad name", "--schema", str(schema_file), "--dir", d)
    assert code == 1 and "must be 1 to 100" in output
