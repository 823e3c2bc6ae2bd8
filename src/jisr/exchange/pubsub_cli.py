"""``jisr exchange pubsub``: administer the pub/sub rooms kept by a gateway.

A room is a subsystem; its event types, rights and subscriptions live in the database of the
gateway of the room's member (``jisr.exchange.pubsub``). Each command opens that gateway
node's database directly (the gateway may be running: SQLite serialises the writers) and
records the change on the node's audit chain.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from jisr.core.errors import InvalidInput
from jisr.core.i18n import _, gettext, operator_language
from jisr.core.instance import REGISTRY_NODE, Instance, Node
from jisr.exchange import pubsub, service
from jisr.exchange.errors import GatewayNotFound, SubsystemNotFound
from jisr.exchange.identifiers import SubsystemId, gateway_name


def say(message: str, **params: object) -> str:
    """``message`` (an English text marked with ``_()``) in the operator's language, with
    ``params`` filled in. Help texts are translated when the command is loaded."""
    text = gettext(message, operator_language())
    return text.format(**params) if params else text


app = typer.Typer(
    help=say(
        _(
            "Pub/sub rooms on the gateways: event types, publish and subscribe rights, "
            "subscriptions."
        )
    ),
    no_args_is_help=True,
)
type_app = typer.Typer(
    help=say(_("Event types of a room, with their JSON Schema.")), no_args_is_help=True
)
subscription_app = typer.Typer(
    help=say(_("Subscriptions to a room's event types.")), no_args_is_help=True
)
app.add_typer(type_app, name="type")
app.add_typer(subscription_app, name="subscription")

out = Console(highlight=False, soft_wrap=True)
T = TypeVar("T")
DirOption = typer.Option(
    ..., "--dir", "-d", help=say(_("The instance directory (made by `jisr init`)."))
)
JsonOption = typer.Option(False, "--json", help=say(_("Print JSON.")))
RoomArgument = typer.Argument(
    ..., help=say(_("The room: a subsystem, INSTANCE/CLASS/MEMBER/CODE."))
)
TypeArgument = typer.Argument(..., help=say(_("The event type, e.g. newBirth.")))
SchemaOption = typer.Option(
    ..., "--schema", exists=True, dir_okay=False, help=say(_("A JSON Schema file."))
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


@type_app.command(
    "add", help=say(_("Create an event type in a room; its events must satisfy the JSON Schema."))
)
def type_add(
    room: str = RoomArgument,
    name: str = TypeArgument,
    schema: Path = SchemaOption,
    directory: Path = DirOption,
) -> None:
    try:
        document = json.loads(schema.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(_("{path} is not a JSON file."), path=str(schema)) from error
    with _room(directory, room) as (node, parsed), node.session() as session:
        info = pubsub.create_event_type(
            session, room=parsed, name=name, schema=document, created_by="cli"
        )
        node.record(session, "exchange.pubsub.event-type.created", {"room": room, "name": name})
    out.print(say(_("Event type {name} created in room {room}."), name=info.name, room=info.room))


@type_app.command("list", help=say(_("List a room's event types.")))
def type_list(
    room: str = RoomArgument, directory: Path = DirOption, as_json: bool = JsonOption
) -> None:
    with _room(directory, room) as (node, parsed), node.session() as session:
        items = pubsub.list_event_types(session, room=parsed)
    _emit(
        items,
        as_json,
        lambda i: say(
            _("{name}  (created {at} by {by})"), name=i.name, at=i.created_at, by=i.created_by
        ),
        json_of=lambda i: i.to_api(),
    )


@type_app.command("show", help=say(_("Print an event type and its JSON Schema.")))
def type_show(
    room: str = RoomArgument, name: str = TypeArgument, directory: Path = DirOption
) -> None:
    with _room(directory, room) as (node, parsed), node.session() as session:
        info = pubsub.get_event_type(session, room=parsed, name=name)
    out.print_json(json.dumps(info.to_api()))


@type_app.command(
    "remove", help=say(_("Delete an event type with its rights, subscriptions and events."))
)
def type_remove(
    room: str = RoomArgument, name: str = TypeArgument, directory: Path = DirOption
) -> None:
    with _room(directory, room) as (node, parsed), node.session() as session:
        pubsub.delete_event_type(session, room=parsed, name=name)
        node.record(session, "exchange.pubsub.event-type.deleted", {"room": room, "name": name})
    out.print(say(_("Event type {name} deleted from room {room}."), name=name, room=room))


@app.command("allow", help=say(_("Let a subsystem publish and/or subscribe to an event type.")))
def allow(
    room: str = RoomArgument,
    name: str = TypeArgument,
    subsystem: str = typer.Argument(..., help=say(_("The subsystem given the right."))),
    publish: bool = typer.Option(False, "--publish", help=say(_("It may publish."))),
    subscribe: bool = typer.Option(False, "--subscribe", help=say(_("It may subscribe."))),
    directory: Path = DirOption,
) -> None:
    grantee, actions = _change_rights(
        directory, room, name, subsystem, publish, subscribe, pubsub.grant, "granted"
    )
    if len(actions) == 2:
        done = _("{subsystem} may publish and subscribe to {name} of room {room}.")
    elif actions == ["publish"]:
        done = _("{subsystem} may publish {name} of room {room}.")
    else:
        done = _("{subsystem} may subscribe to {name} of room {room}.")
    out.print(say(done, subsystem=grantee, name=name, room=room))


@app.command(
    "deny",
    help=say(_("Withdraw a subsystem's right; withdrawing --subscribe cancels its subscription.")),
)
def deny(
    room: str = RoomArgument,
    name: str = TypeArgument,
    subsystem: str = typer.Argument(..., help=say(_("The subsystem losing the right."))),
    publish: bool = typer.Option(False, "--publish", help=say(_("Withdraw publishing."))),
    subscribe: bool = typer.Option(
        False, "--subscribe", help=say(_("Withdraw subscribing (and its subscription)."))
    ),
    directory: Path = DirOption,
) -> None:
    grantee, actions = _change_rights(
        directory, room, name, subsystem, publish, subscribe, pubsub.revoke, "revoked"
    )
    if len(actions) == 2:
        done = _("{subsystem} may no longer publish or subscribe to {name} of room {room}.")
    elif actions == ["publish"]:
        done = _("{subsystem} may no longer publish {name} of room {room}.")
    else:
        done = _("{subsystem} may no longer subscribe to {name} of room {room}.")
    out.print(say(done, subsystem=grantee, name=name, room=room))


@app.command("rights", help=say(_("List who may publish and subscribe to a room's event types.")))
def rights(
    room: str = RoomArgument,
    name: str | None = typer.Argument(None, help=say(_("Only this event type."))),
    directory: Path = DirOption,
    as_json: bool = JsonOption,
) -> None:
    with _room(directory, room) as (node, parsed), node.session() as session:
        if name is not None:
            pubsub.get_event_type(session, room=parsed, name=name)  # EventTypeNotFound
        items = pubsub.list_rights(session, room=parsed, name=name)
    _emit(
        [{"eventType": i.event_type, "subsystem": i.subsystem, "right": i.action} for i in items],
        as_json,
        lambda i: f"{i['eventType']}  {i['right']}  {i['subsystem']}",
    )


@subscription_app.command("list", help=say(_("List the subscriptions to a room's event types.")))
def subscription_list(
    room: str = RoomArgument,
    subscriber: str | None = typer.Option(
        None, "--subscriber", help=say(_("Only this subscriber."))
    ),
    directory: Path = DirOption,
    as_json: bool = JsonOption,
) -> None:
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


@subscription_app.command(
    "remove", help=say(_("Cancel a subscription (its undelivered events are dropped)."))
)
def subscription_remove(
    room: str = RoomArgument,
    name: str = TypeArgument,
    subscriber: str = typer.Argument(..., help=say(_("The subscriber."))),
    directory: Path = DirOption,
) -> None:
    who = SubsystemId.parse(subscriber)
    with _room(directory, room) as (node, parsed), node.session() as session:
        pubsub.cancel_subscription(session, room=parsed, name=name, subscriber=who)
        node.record(
            session,
            "exchange.pubsub.subscription.cancelled",
            {"room": room, "name": name, "subscriber": str(who)},
        )
    out.print(
        say(_("Subscription of {subscriber} to {name} cancelled."), subscriber=who, name=name)
    )


MOST_DAYS = 3650


def _days(value: str | None) -> int | None:
    """``--older-than-days``: a whole number of days from 0 to ``MOST_DAYS`` (``None`` when not
    given); otherwise a usage error (exit 2) saying so."""
    if value is None:
        return None
    try:
        days = int(value.strip())
    except ValueError:
        days = -1
    if not 0 <= days <= MOST_DAYS:
        raise typer.BadParameter(
            say(
                _(
                    "--older-than-days must be a whole number of days from 0 to {most}, "
                    "not {value}."
                ),
                most=MOST_DAYS,
                value=value[:40],
            )
        )
    return days


@app.command(
    "prune",
    help=say(
        _(
            "Delete, on every gateway of the instance, the pub/sub deliveries that are over "
            "(acknowledged, expired or cancelled) and older than the retention, and the events "
            "left without deliveries; pending ones are kept, and so is the message log."
        )
    ),
)
def prune(
    directory: Path = DirOption,
    older_than_days: str | None = typer.Option(
        None,
        "--older-than-days",
        metavar="N",
        help=say(
            _(
                "Prune what is older than N days (default: the setting "
                "exchange_pubsub_retention_days)."
            )
        ),
    ),
    as_json: bool = JsonOption,
) -> None:
    wanted = _days(older_than_days)
    instance = Instance.open(directory)
    try:
        days = instance.settings.exchange_pubsub_retention_days if wanted is None else wanted
        results: list[dict[str, Any]] = []
        for node in instance.nodes.values():
            if not node.name.startswith("gateway-"):
                continue
            # in short transactions: a gateway serving meanwhile keeps writing its log
            pruned = pubsub.prune_in_chunks(node, older_than=dt.timedelta(days=days))
            facts = pruned.to_dict() | {"older_than_days": days}
            with node.session() as session:
                node.record(session, "exchange.pubsub.pruned", facts)
            results.append({"gateway": node.name} | facts)
    finally:
        instance.close()
    if as_json:
        out.print_json(json.dumps(results))
        return
    for r in results:
        out.print(
            say(
                _(
                    "{gateway}: {deliveries} deliveries and {events} events older than "
                    "{days} days pruned."
                ),
                gateway=r["gateway"],
                deliveries=r["deliveries"],
                events=r["events"],
                days=days,
            )
        )
    if not results:
        out.print(say(_("The instance has no gateway.")))


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
        out.print(say(_("(none)")))


__all__ = ["app", "say"]
