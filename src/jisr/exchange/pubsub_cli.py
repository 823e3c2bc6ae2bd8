"""``jisr exchange pubsub``: administer the pub/sub rooms kept by a gateway.

A room is a subsystem; its event types, rights and subscriptions live in the database of the
gateway of the room's member (``jisr.exchange.pubsub``). Each command opens that gateway
node's database directly (the gateway may be running: SQLite serialises the writers) and
records the change on the node's audit chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from jisr.core.errors import InvalidInput
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Instance, Node
from jisr.exchange import pubsub, service
from jisr.exchange.errors import GatewayNotFound, SubsystemNotFound
from jisr.exchange.identifiers import SubsystemId, gateway_name

app = typer.Typer(
    help="Pub/sub rooms on the gateways: event types, publish and subscribe rights, subscriptions.",
    no_args_is_help=True,
)
type_app = typer.Typer(help="Event types of a room, with their JSON Schema.", no_args_is_help=True)
subscription_app = typer.Typer(help="Subscriptions to a room's event types.", no_args_is_help=True)
app.add_typer(type_app, name="type")
app.add_typer(subscription_app, name="subscription")

out = Console(highlight=False, soft_wrap=True)
T = TypeVar("T")
DirOption = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")
JsonOption = typer.Option(False, "--json", help="Print JSON.")
RoomArgument = typer.Argument(..., help="The room: a subsystem, INSTANCE/CLASS/MEMBER/CODE.")
TypeArgument = typer.Argument(..., help="The event type, e.g. newBirth.")
SchemaOption = typer.Option(
    ..., "--schema", exists=True, dir_okay=False, help="A JSON Schema file."
)


@contextmanager
def _room(directory: Path, room: str) -> Iterator[tuple[Node, SubsystemId]]:
    """The node of the gateway keeping ``room``, once the room is a registered subsystem."""
    parsed = SubsystemId.parse(room)
    instance = Instance.open(directory)
    try:
        with instance.node(REGISTRY_NODE).session() as session:
            if str(parsed) not in service.list_subsystems(session):
                raise SubsystemNotFound(
                    _("No subsystem {subsystem} is registered."), subsystem=str(parsed)
                )
        name = gateway_name(parsed.member)
        if name not in instance.nodes:
            raise GatewayNotFound(
                _("Member {member} has no gateway yet (jisr exchange gateway add)."),
                member=str(parsed.member),
            )
        yield instance.node(name), parsed
    finally:
        instance.close()


def _action(publish: bool, subscribe: bool) -> list[str]:
    actions = [a for a, wanted in (("publish", publish), ("subscribe", subscribe)) if wanted]
    if not actions:
        raise InvalidInput(_("Name a right: --publish, --subscribe or both."))
    return actions


def _change_rights(
    directory: Path,
    room: str,
    name: str,
    subsystem: str,
    publish: bool,
    subscribe: bool,
    change: Callable[..., object],
    done: str,
) -> tuple[SubsystemId, list[str]]:
    """Grant or revoke (``change``) the rights named, recorded as ``exchange.pubsub.right.
    <done>`` on the gateway's chain; the subsystem and the actions changed."""
    actions = _action(publish, subscribe)
    grantee = SubsystemId.parse(subsystem)
    with _room(directory, room) as (node, parsed), node.session() as session:
        for action in actions:
            change(session, room=parsed, name=name, subsystem=grantee, action=action)
        node.record(
            session,
            f"exchange.pubsub.right.{done}",
            {"room": room, "name": name, "subsystem": str(grantee), "actions": actions},
        )
    return grantee, actions


@type_app.command("add")
def type_add(
    room: str = RoomArgument,
    name: str = TypeArgument,
    schema: Path = SchemaOption,
    directory: Path = DirOption,
) -> None:
    """Create an event type in a room; its events must satisfy the JSON Schema."""
    try:
        document = json.loads(schema.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(_("{path} is not a JSON file."), path=str(schema)) from error
    with _room(directory, room) as (node, parsed), node.session() as session:
        info = pubsub.create_event_type(
            session, room=parsed, name=name, schema=document, created_by="cli"
        )
        node.record(session, "exchange.pubsub.event-type.created", {"room": room, "name": name})
    out.print(f"Event type {info.name} created in room {info.room}.")


@type_app.command("list")
def type_list(
    room: str = RoomArgument, directory: Path = DirOption, as_json: bool = JsonOption
) -> None:
    """List a room's event types."""
    with _room(directory, room) as (node, parsed), node.session() as session:
        items = pubsub.list_event_types(session, room=parsed)
    _emit(
        items,
        as_json,
        lambda i: f"{i.name}  (created {i.created_at} by {i.created_by})",
        json_of=lambda i: i.to_api(),
    )


@type_app.command("show")
def type_show(
    room: str = RoomArgument, name: str = TypeArgument, directory: Path = DirOption
) -> None:
    """Print an event type and its JSON Schema."""
    with _room(directory, room) as (node, parsed), node.session() as session:
        info = pubsub.get_event_type(session, room=parsed, name=name)
    out.print_json(json.dumps(info.to_api()))


@type_app.command("remove")
def type_remove(
    room: str = RoomArgument, name: str = TypeArgument, directory: Path = DirOption
) -> None:
    """Delete an event type with its rights, subscriptions and events."""
    with _room(directory, room) as (node, parsed), node.session() as session:
        pubsub.delete_event_type(session, room=parsed, name=name)
        node.record(session, "exchange.pubsub.event-type.deleted", {"room": room, "name": name})
    out.print(f"Event type {name} deleted from room {room}.")


@app.command("allow")
def allow(
    room: str = RoomArgument,
    name: str = TypeArgument,
    subsystem: str = typer.Argument(..., help="The subsystem given the right."),
    publish: bool = typer.Option(False, "--publish", help="It may publish."),
    subscribe: bool = typer.Option(False, "--subscribe", help="It may subscribe."),
    directory: Path = DirOption,
) -> None:
    """Let a subsystem publish and/or subscribe to an event type."""
    grantee, actions = _change_rights(
        directory, room, name, subsystem, publish, subscribe, pubsub.grant, "granted"
    )
    out.print(f"{grantee} may {' and '.join(actions)} {name} of room {room}.")


@app.command("deny")
def deny(
    room: str = RoomArgument,
    name: str = TypeArgument,
    subsystem: str = typer.Argument(..., help="The subsystem losing the right."),
    publish: bool = typer.Option(False, "--publish", help="Withdraw publishing."),
    subscribe: bool = typer.Option(
        False, "--subscribe", help="Withdraw subscribing (and its subscription)."
    ),
    directory: Path = DirOption,
) -> None:
    """Withdraw a subsystem's right; withdrawing --subscribe cancels its subscription."""
    grantee, actions = _change_rights(
        directory, room, name, subsystem, publish, subscribe, pubsub.revoke, "revoked"
    )
    out.print(f"{grantee} may no longer {' or '.join(actions)} {name} of room {room}.")


@app.command("rights")
def rights(
    room: str = RoomArgument,
    name: str | None = typer.Argument(None, help="Only this event type."),
    directory: Path = DirOption,
    as_json: bool = JsonOption,
) -> None:
    """List who may publish and subscribe to a room's event types."""
    with _room(directory, room) as (node, parsed), node.session() as session:
        if name is not None:
            pubsub.get_event_type(session, room=parsed, name=name)  # EventTypeNotFound
        items = pubsub.list_rights(session, room=parsed, name=name)
    _emit(
        [{"eventType": i.event_type, "subsystem": i.subsystem, "right": i.action} for i in items],
        as_json,
        lambda i: f"{i['eventType']}  {i['right']}  {i['subsystem']}",
    )


@subscription_app.command("list")
def subscription_list(
    room: str = RoomArgument,
    subscriber: str | None = typer.Option(None, "--subscriber", help="Only this subscriber."),
    directory: Path = DirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the subscriptions to a room's event types."""
    who = SubsystemId.parse(subscriber) if subscriber else None
    with _room(directory, room) as (node, parsed), node.session() as session:
        items = pubsub.list_subscriptions(session, room=parsed, subscriber=who)
    _emit(
        [i.to_api() | {"subscriber": i.subscriber} for i in items],
        as_json,
        lambda i: (
            f"{i['eventType']}  {i['subscriber']}  {i['delivery']}"
            + (f" -> {i['options']['pushService']}" if i["options"].get("pushService") else "")
            + f"  TTL {i['options']['TTL']}s{'  FIFO' if i['options']['FIFO'] else ''}"
        ),
    )


@subscription_app.command("remove")
def subscription_remove(
    room: str = RoomArgument,
    name: str = TypeArgument,
    subscriber: str = typer.Argument(..., help="The subscriber."),
    directory: Path = DirOption,
) -> None:
    """Cancel a subscription (its undelivered events are dropped)."""
    who = SubsystemId.parse(subscriber)
    with _room(directory, room) as (node, parsed), node.session() as session:
        pubsub.cancel_subscription(session, room=parsed, name=name, subscriber=who)
        node.record(
            session,
            "exchange.pubsub.subscription.cancelled",
            {"room": room, "name": name, "subscriber": str(who)},
        )
    out.print(f"Subscription of {who} to {name} cancelled.")


def _emit(
    items: Sequence[T],
    as_json: bool,
    line: Callable[[T], str],
    json_of: Callable[[T], Any] = lambda item: item,
) -> None:
    """Print ``items`` as a JSON array (each ``json_of(item)``) or one ``line`` each."""
    if as_json:
        out.print_json(json.dumps([json_of(item) for item in items]))
        return
    for item in items:
        out.print(line(item))
    if not items:
        out.print("(none)")


__all__ = ["app"]
