"""Pub/sub on the gateways, per the GovStack IM PubSub API (``GovStack_IM_PubSub_API.yaml``).

A *room* is a subsystem, ``INSTANCE/CLASS/MEMBER/APPLICATION``; its broker is the gateway of
the room's member, whose database holds the room's event types (each with a JSON Schema),
the rights to publish and subscribe, the subscriptions, the events and their deliveries
(``jisr.exchange.pubsub_models``). Information systems call their *own* gateway's client
proxy, as for any service::

    /r1/ROOM/api/v1/eventType[/{eventType}]   create, list, read, delete event types
    /r1/ROOM/api/v1/subs[/{eventType}]        list, add, read, change, cancel subscriptions
    /r1/ROOM/pub/v1/{eventType}[/{eventId}]   publish; a publication's status; stop it
    /r1/ROOM/pull/v1/{eventType}[/{eventId}]  the next unacknowledged event; acknowledge it

``api``, ``pub`` and ``pull`` are read as the pub/sub API when no registered service of the
room has that code. When the room is of the gateway's own member, the client proxy answers
(``answer_local``); otherwise the call travels like any other, signed over mutual TLS, to the
room's gateway, whose server proxy verifies it and answers from the broker
(``answer_signed``) instead of forwarding it, the answer signed back.

Who may do what: the room subsystem (the room manager) everything; another subsystem
publishes or subscribes to an event type only with that right (``grant``, from
``jisr exchange pubsub allow``); a publication's status and cancellation belong to its
publisher, a subscription to its subscriber. A refusal is the X-Road error
``Server.ServerProxy.AccessDenied`` (403), logged as ``refused``. Other outcomes (unknown
event type, an event that does not match the schema…) are the broker's answers, RFC 9457
problems with the status the GovStack API gives, as a provider system's errors would be.

Events and delivery state live in the database: ``publish`` commits the event, one delivery
row per subscription and its message-log record in one transaction before it answers 201,
so an acknowledged publication survives a restart. PULL subscribers read the oldest
unacknowledged event (the same one until it is acknowledged); PUSH deliveries are sent by
the room's gateway (``start_pusher``) as an ordinary X-Road call from the room subsystem to
the subscriber's own service named in the subscription (``options.pushService``): ``POST
/r1/SUBSCRIBER/PUSHSERVICE/{eventType}`` with the event, through the subscriber's gateway,
signed and logged on both sides; a 2xx answer acknowledges it, anything else is retried
with exponential back-off (``RETRY_FIRST_SECONDS`` doubling up to ``RETRY_MAX_SECONDS``)
until the subscription's TTL runs out. Each push is a task of its own (``PUSH_BATCH`` in
flight at most, ``PUSH_PER_SUBSCRIPTION`` to one subscription), and the pusher goes on
picking due deliveries while slow ones are under way, so a slow subscriber holds back only
its own. A FIFO subscription receives its events one at a time in sequence order. Deliveries
that are over (acknowledged, expired, cancelled) and events left without any are deleted
once older than ``exchange_pubsub_retention_days`` (``prune``: by the pusher hourly, or
``jisr exchange pubsub prune``; both in short transactions, ``prune_in_chunks``); the message
log keeps their records. Every publish,
delivery, acknowledgement and administrative change is a record of the gateway's
``message-log`` chain, written in the transaction that makes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp
import jsonschema
import sqlalchemy as sa
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable
from sqlalchemy.orm import Session

from jisr.core.audit import service as audit
from jisr.core.clock import utcnow
from jisr.core.errors import PROBLEM_CONTENT_TYPE
from jisr.core.i18n import _
from jisr.core.instance import Node
from jisr.core.logging import get_logger
from jisr.exchange.errors import ExchangeError, InvalidIdentifier, XRoadFault
from jisr.exchange.gateway import MESSAGE_LOG, GatewayRuntime
from jisr.exchange.globalconf import GlobalConf
from jisr.exchange.http1 import Request, Response
from jisr.exchange.identifiers import ServiceId, SubsystemId
from jisr.exchange.proxy import JSON_TYPE, Call, read_body
from jisr.exchange.pubsub_models import (
    PubSubDelivery,
    PubSubEvent,
    PubSubEventType,
    PubSubRight,
    PubSubSubscription,
)

ROOM_SERVICES = ("api", "pub", "pull")
ACTIONS = ("publish", "subscribe")
DELIVERIES = ("PUSH", "PULL")
DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 30 * 24 * 3600
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
PUSH_POLL_SECONDS = 1.0
PUSH_BATCH = 64  # pushes in flight at once, per gateway
PUSH_PER_SUBSCRIPTION = 8  # of them, to one subscription that is not FIFO
PRUNE_EVERY_SECONDS = 3600.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
log = get_logger("jisr.exchange.pubsub")


# --- errors (the broker's answers; English on the wire, translated in the CLI) -------------


class PubSubError(ExchangeError):
    code = "pubsub-error"
    title = _("The pub/sub request cannot be completed")


class InvalidPubSubRequest(PubSubError):
    code = "pubsub-invalid-request"
    title = _("The pub/sub request is not valid")


class EventTypeNotFound(PubSubError):
    status_code = 404
    code = "event-type-not-found"
    title = _("No such event type")


class EventTypeAlreadyExists(PubSubError):
    status_code = 409
    code = "event-type-exists"
    title = _("The event type already exists")


class SubscriptionNotFound(PubSubError):
    status_code = 404
    code = "subscription-not-found"
    title = _("No such subscription")


class SubscriptionAlreadyExists(PubSubError):
    status_code = 409
    code = "subscription-exists"
    title = _("The subscription already exists")


class NotPullSubscribed(PubSubError):
    status_code = 409
    code = "not-pull-subscribed"
    title = _("There is no pull subscription to this event type")


class EventNotFound(PubSubError):
    status_code = 404
    code = "event-not-found"
    title = _("No such event")


class NoEventAvailable(PubSubError):
    status_code = 404
    code = "no-event-available"
    title = _("No event is waiting")


class EventRefused(PubSubError):
    code = "event-refused"
    title = _("The event does not match the schema of its event type")


class RightNotFound(PubSubError):
    status_code = 404
    code = "pubsub-right-not-found"
    title = _("No such pub/sub right")


class PubSubForbidden(PubSubError):
    status_code = 403
    code = "pubsub-forbidden"
    title = _("The subsystem has no right to do this")


# --- what the service functions return ------------------------------------------------------


@dataclass(frozen=True)
class EventTypeInfo:
    room: str
    name: str
    schema: dict[str, Any]
    created_by: str
    created_at: str

    def to_api(self) -> dict[str, Any]:
        return {"eventType": self.name, "schema": self.schema}


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    room: str
    event_type: str
    subscriber: str
    delivery: str
    push_service: str | None
    ttl_seconds: int
    fifo: bool

    def to_api(self) -> dict[str, Any]:
        options: dict[str, Any] = {"TTL": self.ttl_seconds, "FIFO": self.fifo}
        if self.push_service:
            options["pushService"] = self.push_service
        return {
            "id": self.id,
            "subscriberId": _party(self.subscriber),
            "eventType": self.event_type,
            "delivery": self.delivery,
            "options": options,
        }


@dataclass(frozen=True)
class EventInfo:
    id: str
    room: str
    event_type: str
    sequence: int
    publisher: str
    event: Any
    published_at: str
    status: dict[str, int] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.id,
            "sequence": self.sequence,
            "publisherId": _party(self.publisher),
            "eventType": self.event_type,
            "event": self.event,
            "publishedAt": self.published_at,
        }
        if self.status:
            item["status"] = self.status
        return item


@dataclass(frozen=True)
class RightInfo:
    room: str
    event_type: str
    subsystem: str
    action: str


def _party(subsystem: str) -> dict[str, str]:
    parsed = SubsystemId.parse(subsystem)
    return {
        "instanceId": parsed.instance,
        "memberClass": parsed.member_class,
        "memberCode": parsed.member_code,
        "applicationCode": parsed.code,
    }


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- service functions (one session each; the caller commits) -------------------------------


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidPubSubRequest(
            _("Event type name {name!r} must be 1 to 100 of A-Z a-z 0-9 . _ - ."), name=name[:120]
        )
    return name


def _validator_class(schema: dict[str, Any]) -> Any:
    return validator_for(schema, default=jsonschema.Draft202012Validator)


def check_schema(schema: Any) -> dict[str, Any]:
    """``schema`` if it is a JSON object and a valid JSON Schema (its ``$schema`` dialect,
    2020-12 by default); else ``InvalidPubSubRequest``."""
    if not isinstance(schema, dict):
        raise InvalidPubSubRequest(_("The schema must be a JSON object."))
    try:
        _validator_class(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise InvalidPubSubRequest(
            _("The schema is not a valid JSON Schema: {reason}"), reason=error.message[:300]
        ) from error
    return schema


def _event_type(
    session: Session, room: SubsystemId, name: str, *, lock: bool = False
) -> PubSubEventType:
    query = sa.select(PubSubEventType).where(
        PubSubEventType.room == str(room), PubSubEventType.name == name
    )
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise EventTypeNotFound(
            _("Room {room} has no event type {name}."), room=str(room), name=name[:120]
        )
    return row


def _type_info(row: PubSubEventType) -> EventTypeInfo:
    return EventTypeInfo(
        room=row.room,
        name=row.name,
        schema=json.loads(row.schema),
        created_by=row.created_by,
        created_at=_iso(row.created_at),
    )


def create_event_type(
    session: Session, *, room: SubsystemId, name: str, schema: Any, created_by: str
) -> EventTypeInfo:
    check_name(name)
    check_schema(schema)
    exists = session.scalar(
        sa.select(PubSubEventType.id).where(
            PubSubEventType.room == str(room), PubSubEventType.name == name
        )
    )
    if exists is not None:
        raise EventTypeAlreadyExists(
            _("Room {room} already has event type {name}."), room=str(room), name=name
        )
    row = PubSubEventType(
        room=str(room),
        name=name,
        schema=json.dumps(schema, sort_keys=True, ensure_ascii=False),
        created_by=created_by,
        created_at=utcnow(),
        next_sequence=1,
    )
    session.add(row)
    session.flush()
    return _type_info(row)


def list_event_types(session: Session, *, room: SubsystemId) -> list[EventTypeInfo]:
    rows = session.scalars(
        sa.select(PubSubEventType)
        .where(PubSubEventType.room == str(room))
        .order_by(PubSubEventType.name)
    ).all()
    return [_type_info(row) for row in rows]


def get_event_type(session: Session, *, room: SubsystemId, name: str) -> EventTypeInfo:
    return _type_info(_event_type(session, room, name))


def delete_event_type(session: Session, *, room: SubsystemId, name: str) -> None:
    """Delete an event type with its rights, subscriptions, events and deliveries."""
    row = _event_type(session, room, name)
    subscriptions = sa.select(PubSubSubscription.id).where(
        PubSubSubscription.event_type_id == row.id
    )
    session.execute(
        sa.delete(PubSubDelivery).where(PubSubDelivery.subscription_id.in_(subscriptions))
    )
    for model in (PubSubSubscription, PubSubEvent, PubSubRight):
        session.execute(sa.delete(model).where(model.event_type_id == row.id))
    session.delete(row)
    session.flush()


def _check_action(action: str) -> str:
    if action not in ACTIONS:
        raise InvalidPubSubRequest(
            _("The right must be one of {actions}."), actions=", ".join(ACTIONS)
        )
    return action


def grant(
    session: Session, *, room: SubsystemId, name: str, subsystem: SubsystemId, action: str
) -> RightInfo:
    """Let ``subsystem`` publish or subscribe to an event type (granting twice is harmless)."""
    row = _event_type(session, room, name)
    _check_action(action)
    exists = session.scalar(
        sa.select(PubSubRight.id).where(
            PubSubRight.event_type_id == row.id,
            PubSubRight.subsystem == str(subsystem),
            PubSubRight.action == action,
        )
    )
    if exists is None:
        session.add(
            PubSubRight(
                event_type_id=row.id, subsystem=str(subsystem), action=action, granted_at=utcnow()
            )
        )
        session.flush()
    return RightInfo(str(room), name, str(subsystem), action)


def revoke(
    session: Session, *, room: SubsystemId, name: str, subsystem: SubsystemId, action: str
) -> None:
    """Withdraw a right; withdrawing ``subscribe`` cancels the subsystem's subscription."""
    row = _event_type(session, room, name)
    _check_action(action)
    deleted = session.execute(
        sa.delete(PubSubRight).where(
            PubSubRight.event_type_id == row.id,
            PubSubRight.subsystem == str(subsystem),
            PubSubRight.action == action,
        )
    )
    if not getattr(deleted, "rowcount", 0):
        raise RightNotFound(
            _("{subsystem} has no right to {action} {name}."),
            subsystem=str(subsystem),
            action=action,
            name=name,
        )
    if action == "subscribe":
        subscription = session.scalar(
            sa.select(PubSubSubscription).where(
                PubSubSubscription.event_type_id == row.id,
                PubSubSubscription.subscriber == str(subsystem),
            )
        )
        if subscription is not None:
            _drop_subscription(session, subscription)
    session.flush()


def list_rights(session: Session, *, room: SubsystemId, name: str | None = None) -> list[RightInfo]:
    query = (
        sa.select(PubSubEventType.name, PubSubRight.subsystem, PubSubRight.action)
        .join(PubSubRight, PubSubRight.event_type_id == PubSubEventType.id)
        .where(PubSubEventType.room == str(room))
        .order_by(PubSubEventType.name, PubSubRight.action, PubSubRight.subsystem)
    )
    if name is not None:
        query = query.where(PubSubEventType.name == name)
    return [RightInfo(str(room), n, s, a) for n, s, a in session.execute(query).all()]


def may(session: Session, *, room: SubsystemId, name: str, subsystem: str, action: str) -> bool:
    """The room manager may do anything; another subsystem needs the right."""
    if subsystem == str(room):
        return True
    found = session.scalar(
        sa.select(PubSubRight.id)
        .join(PubSubEventType, PubSubEventType.id == PubSubRight.event_type_id)
        .where(
            PubSubEventType.room == str(room),
            PubSubEventType.name == name,
            PubSubRight.subsystem == subsystem,
            PubSubRight.action == action,
        )
    )
    return found is not None


def _require(session: Session, room: SubsystemId, name: str, subsystem: str, action: str) -> None:
    if not may(session, room=room, name=name, subsystem=subsystem, action=action):
        raise PubSubForbidden(
            _("{subsystem} has no right to {action} {name} of room {room}."),
            subsystem=subsystem,
            action=action,
            name=name,
            room=str(room),
        )


# subscriptions


def _subscription_info(row: PubSubSubscription, room: str, name: str) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=row.public_id,
        room=room,
        event_type=name,
        subscriber=row.subscriber,
        delivery=row.delivery,
        push_service=row.push_service,
        ttl_seconds=row.ttl_seconds,
        fifo=row.fifo,
    )


def _subscription(
    session: Session, row: PubSubEventType, subscriber: str
) -> PubSubSubscription | None:
    return session.scalar(
        sa.select(PubSubSubscription).where(
            PubSubSubscription.event_type_id == row.id,
            PubSubSubscription.subscriber == subscriber,
        )
    )


def _subscription_or_404(
    session: Session, row: PubSubEventType, subscriber: str
) -> PubSubSubscription:
    found = _subscription(session, row, subscriber)
    if found is None:
        raise SubscriptionNotFound(
            _("{subscriber} has no subscription to {name}."), subscriber=subscriber, name=row.name
        )
    return found


@dataclass(frozen=True)
class SubscriptionOptions:
    delivery: str
    push_service: str | None
    ttl_seconds: int
    fifo: bool


def parse_subscription(
    item: Any, *, name: str, subscriber: SubsystemId, base: SubscriptionInfo | None = None
) -> SubscriptionOptions:
    """Read a GovStack ``SubscriptionItem`` (defaults: PUSH, TTL 3600, no FIFO; for a change,
    the current values). PUSH needs ``options.pushService``, the code of a service of the
    subscriber itself."""
    if not isinstance(item, dict):
        raise InvalidPubSubRequest(_("The subscription must be a JSON object."))
    if item.get("eventType", name) != name:
        raise InvalidPubSubRequest(_("The body's eventType differs from the path's."))
    if "subscriberId" in item and item["subscriberId"] != _party(str(subscriber)):
        raise InvalidPubSubRequest(_("subscriberId must be the calling subsystem."))
    delivery = item.get("delivery", base.delivery if base else "PUSH")
    if delivery not in DELIVERIES:
        raise InvalidPubSubRequest(_("delivery must be PUSH or PULL."))
    options = item.get("options", {})
    if not isinstance(options, dict):
        raise InvalidPubSubRequest(_("options must be a JSON object."))
    ttl = options.get("TTL", base.ttl_seconds if base else DEFAULT_TTL_SECONDS)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidPubSubRequest(
            _("options.TTL must be a whole number of seconds from 1 to {most}."),
            most=MAX_TTL_SECONDS,
        )
    fifo = options.get("FIFO", base.fifo if base else False)
    if not isinstance(fifo, bool):
        raise InvalidPubSubRequest(_("options.FIFO must be true or false."))
    push = options.get("pushService", base.push_service if base else None)
    if delivery == "PUSH":
        if not isinstance(push, str) or not push:
            raise InvalidPubSubRequest(
                _("A PUSH subscription needs options.pushService: a service of the subscriber.")
            )
        try:
            ServiceId.parse(f"{subscriber}/{push}")
        except InvalidIdentifier as error:
            raise InvalidPubSubRequest(
                _("options.pushService {service!r} is not a service code."), service=push[:100]
            ) from error
    else:
        push = None
    return SubscriptionOptions(delivery, push, ttl, fifo)


def subscribe(
    session: Session,
    *,
    room: SubsystemId,
    name: str,
    subscriber: SubsystemId,
    options: SubscriptionOptions,
) -> SubscriptionInfo:
    row = _event_type(session, room, name)
    _require(session, room, name, str(subscriber), "subscribe")
    if _subscription(session, row, str(subscriber)) is not None:
        raise SubscriptionAlreadyExists(
            _("{subscriber} is already subscribed to {name}."),
            subscriber=str(subscriber),
            name=name,
        )
    subscription = PubSubSubscription(
        public_id=str(uuid.uuid4()),
        event_type_id=row.id,
        subscriber=str(subscriber),
        delivery=options.delivery,
        push_service=options.push_service,
        ttl_seconds=options.ttl_seconds,
        fifo=options.fifo,
        created_at=utcnow(),
    )
    session.add(subscription)
    session.flush()
    return _subscription_info(subscription, str(room), name)


def get_subscription(
    session: Session, *, room: SubsystemId, name: str, subscriber: SubsystemId
) -> SubscriptionInfo:
    row = _event_type(session, room, name)
    return _subscription_info(_subscription_or_404(session, row, str(subscriber)), str(room), name)


def update_subscription(
    session: Session,
    *,
    room: SubsystemId,
    name: str,
    subscriber: SubsystemId,
    options: SubscriptionOptions,
) -> SubscriptionInfo:
    row = _event_type(session, room, name)
    found = _subscription_or_404(session, row, str(subscriber))
    found.delivery = options.delivery
    found.push_service = options.push_service
    found.ttl_seconds = options.ttl_seconds
    found.fifo = options.fifo
    session.flush()
    return _subscription_info(found, str(room), name)


def _drop_subscription(session: Session, subscription: PubSubSubscription) -> None:
    session.execute(
        sa.delete(PubSubDelivery).where(PubSubDelivery.subscription_id == subscription.id)
    )
    session.delete(subscription)


def cancel_subscription(
    session: Session, *, room: SubsystemId, name: str, subscriber: SubsystemId
) -> None:
    row = _event_type(session, room, name)
    _drop_subscription(session, _subscription_or_404(session, row, str(subscriber)))
    session.flush()


def list_subscriptions(
    session: Session, *, room: SubsystemId, subscriber: SubsystemId | None = None
) -> list[SubscriptionInfo]:
    query = (
        sa.select(PubSubSubscription, PubSubEventType.name)
        .join(PubSubEventType, PubSubEventType.id == PubSubSubscription.event_type_id)
        .where(PubSubEventType.room == str(room))
        .order_by(PubSubEventType.name, PubSubSubscription.subscriber)
    )
    if subscriber is not None:
        query = query.where(PubSubSubscription.subscriber == str(subscriber))
    return [_subscription_info(s, str(room), n) for s, n in session.execute(query).all()]


# events


def _event_info(
    event: PubSubEvent, room: str, name: str, status: dict[str, int] | None = None
) -> EventInfo:
    return EventInfo(
        id=event.public_id,
        room=room,
        event_type=name,
        sequence=event.sequence,
        publisher=event.publisher,
        event=json.loads(event.payload),
        published_at=_iso(event.published_at),
        status=status or {},
    )


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
FORMATS = jsonschema.FormatChecker()  # every format jsonschema checks, and date-time:


def _date_time(value: object) -> bool:
    """RFC 3339 date-time, with the standard library (jsonschema would need an extra
    package for it and otherwise accepts anything)."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


FORMATS.checks("date-time", raises=ValueError)(_date_time)


def check_event(schema: dict[str, Any], event: Any) -> None:
    """``EventRefused`` naming the first problems when ``event`` does not match ``schema``
    (formats checked; references outside the schema are never fetched)."""
    cls = _validator_class(schema)
    try:
        errors = sorted(
            cls(schema, format_checker=FORMATS).iter_errors(event),
            key=lambda e: list(e.absolute_path),
        )
    except Unresolvable as error:
        raise EventRefused(
            _("The schema refers to {ref}, which is not in it."), ref=str(error)[:200]
        ) from error
    if errors:
        reasons = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(event)'}: {e.message[:150]}"
            for e in errors[:5]
        )
        raise EventRefused(_("The event does not match the schema: {reasons}"), reasons=reasons)


def publish(
    session: Session, *, room: SubsystemId, name: str, publisher: SubsystemId, event: Any
) -> EventInfo:
    """Accept an event: checked against the schema, numbered, and one pending delivery made
    for every subscription, all in the caller's transaction."""
    row = _event_type(session, room, name, lock=True)  # one sequence number each
    _require(session, room, name, str(publisher), "publish")
    check_event(json.loads(row.schema), event)
    now = utcnow()
    sequence = row.next_sequence
    row.next_sequence = sequence + 1
    published = PubSubEvent(
        public_id=str(uuid.uuid4()),
        event_type_id=row.id,
        sequence=sequence,
        publisher=str(publisher),
        payload=json.dumps(event, ensure_ascii=False, separators=(",", ":")),
        published_at=now,
    )
    session.add(published)
    session.flush()
    subscriptions = session.scalars(
        sa.select(PubSubSubscription).where(PubSubSubscription.event_type_id == row.id)
    ).all()
    for subscription in subscriptions:
        session.add(
            PubSubDelivery(
                event_id=published.id,
                subscription_id=subscription.id,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                expires_at=now + dt.timedelta(seconds=subscription.ttl_seconds),
            )
        )
    session.flush()
    return _event_info(published, str(room), name)


def _event(session: Session, row: PubSubEventType, event_id: str) -> PubSubEvent:
    found = session.scalar(
        sa.select(PubSubEvent).where(
            PubSubEvent.event_type_id == row.id, PubSubEvent.public_id == event_id
        )
    )
    if found is None:
        raise EventNotFound(
            _("Event type {name} has no event {event}."), name=row.name, event=event_id[:64]
        )
    return found


def _own_event(
    session: Session, room: SubsystemId, name: str, event_id: str, publisher: str
) -> tuple[PubSubEventType, PubSubEvent]:
    row = _event_type(session, room, name)
    found = _event(session, row, event_id)
    if publisher not in (found.publisher, str(room)):
        raise PubSubForbidden(
            _("Event {event} was published by another subsystem."), event=event_id[:64]
        )
    return row, found


def event_status(
    session: Session, *, room: SubsystemId, name: str, event_id: str, publisher: str
) -> EventInfo:
    """The event and how many of its deliveries are in each state (to its publisher)."""
    row, found = _own_event(session, room, name, event_id, publisher)
    _expire(session, utcnow())
    counts = dict(
        session.execute(
            sa.select(PubSubDelivery.state, sa.func.count())
            .where(PubSubDelivery.event_id == found.id)
            .group_by(PubSubDelivery.state)
        ).all()
    )
    return _event_info(found, str(room), name, {k: int(v) for k, v in counts.items()} or {})


def cancel_event(
    session: Session, *, room: SubsystemId, name: str, event_id: str, publisher: str
) -> int:
    """Stop delivering an event; returns how many pending deliveries were cancelled."""
    _row, found = _own_event(session, room, name, event_id, publisher)
    if found.cancelled_at is None:
        found.cancelled_at = utcnow()
    result = session.execute(
        sa.update(PubSubDelivery)
        .where(PubSubDelivery.event_id == found.id, PubSubDelivery.state == "pending")
        .values(state="cancelled")
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def _expire(session: Session, now: dt.datetime) -> int:
    result = session.execute(
        sa.update(PubSubDelivery)
        .where(PubSubDelivery.state == "pending", PubSubDelivery.expires_at <= now)
        .values(state="expired")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _pull_subscription(
    session: Session, room: SubsystemId, name: str, subscriber: str
) -> tuple[PubSubEventType, PubSubSubscription]:
    row = _event_type(session, room, name)
    _require(session, room, name, subscriber, "subscribe")
    subscription = _subscription(session, row, subscriber)
    if subscription is None or subscription.delivery != "PULL":
        raise NotPullSubscribed(
            _("{subscriber} has no PULL subscription to {name}."),
            subscriber=subscriber,
            name=name,
        )
    return row, subscription


def pull(session: Session, *, room: SubsystemId, name: str, subscriber: SubsystemId) -> EventInfo:
    """The subscriber's oldest unacknowledged event (the same until it is acknowledged)."""
    _row, subscription = _pull_subscription(session, room, name, str(subscriber))
    now = utcnow()
    _expire(session, now)
    found = session.execute(
        sa.select(PubSubDelivery, PubSubEvent)
        .join(PubSubEvent, PubSubEvent.id == PubSubDelivery.event_id)
        .where(PubSubDelivery.subscription_id == subscription.id, PubSubDelivery.state == "pending")
        .order_by(PubSubEvent.sequence)
        .limit(1)
    ).first()
    if found is None:
        raise NoEventAvailable(_("No event of {name} is waiting."), name=name)
    delivery, event = found
    delivery.attempts += 1
    session.flush()
    return _event_info(event, str(room), name)


def acknowledge(
    session: Session, *, room: SubsystemId, name: str, subscriber: SubsystemId, event_id: str
) -> None:
    row, subscription = _pull_subscription(session, room, name, str(subscriber))
    event = _event(session, row, event_id)
    delivery = session.scalar(
        sa.select(PubSubDelivery).where(
            PubSubDelivery.event_id == event.id,
            PubSubDelivery.subscription_id == subscription.id,
            PubSubDelivery.state == "pending",
        )
    )
    if delivery is None:
        raise NoEventAvailable(
            _("Event {event} is not waiting for {subscriber}."),
            event=event_id[:64],
            subscriber=str(subscriber),
        )
    delivery.state = "acknowledged"
    delivery.acknowledged_at = utcnow()
    session.flush()


# --- the message log, in the caller's transaction -------------------------------------------


def _log(
    runtime: GatewayRuntime, session: Session, event: str, data: dict[str, Any], actor: str | None
) -> None:
    audit.write_many(
        session,
        MESSAGE_LOG,
        [
            audit.AuditEntry(
                event=event,
                data=data,
                actor=actor[:255] if actor else None,
                subject=str(data.get("room", ""))[:255] or None,
            )
        ],
        signer=runtime.checkpoint_signer,
        checkpoint_every=runtime.settings.audit_checkpoint_every,
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ).hexdigest()


# --- the wire: routing one call to the broker ------------------------------------------------


def is_room_call(conf: GlobalConf, service: ServiceId, path: str) -> bool:
    """A call of the pub/sub API (``/r1/ROOM/api|pub|pull/v1/…``), not of a real service."""
    return (
        service.code in ROOM_SERVICES
        and (path == "/v1" or path.startswith("/v1/"))
        and str(service) not in conf.services
    )


def is_local(runtime: GatewayRuntime, conf: GlobalConf, service: ServiceId) -> bool:
    """The room is of this gateway's member (so this gateway is its broker)."""
    return service.member == runtime.member


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None


@dataclass
class _Op:
    name: str  # what the message log calls it
    run: Callable[[Session], tuple[Reply, dict[str, Any]]]


def _json_reply(status: int, value: Any) -> Reply:
    return Reply(status, json.dumps(value, ensure_ascii=False).encode("utf-8"), JSON_TYPE)


def _problem(error: PubSubError, call_id: str) -> Reply:
    problem = error.to_problem(instance=call_id or None)
    return Reply(
        error.status_code,
        json.dumps(problem, ensure_ascii=False).encode("utf-8"),
        PROBLEM_CONTENT_TYPE,
    )


def _json_body(body: bytes, *, empty: Any = None) -> Any:
    if not body.strip():
        if empty is not None:
            return empty
        raise InvalidPubSubRequest(_("The request needs a JSON body."))
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidPubSubRequest(_("The body is not JSON.")) from error


def _route(
    room: SubsystemId, kind: str, method: str, path: str, client: SubsystemId, body: bytes
) -> _Op:
    """The operation named by ``kind`` (api, pub, pull), method and path; raises
    ``InvalidPubSubRequest`` (or a 404/405 one) otherwise."""
    parts = [unquote(p) for p in path.split("/")[2:]]  # after "/v1"
    who = str(client)
    manager = who == str(room)

    def refuse_unless_manager() -> None:
        if not manager:
            raise PubSubForbidden(
                _("Only the room {room} manages its event types."), room=str(room)
            )

    def base(name: str) -> dict[str, Any]:
        return {"room": str(room), "eventType": name, "client": who}

    match kind, parts, method:
        case "api", ["eventType"], "POST":

            def create(session: Session) -> tuple[Reply, dict[str, Any]]:
                refuse_unless_manager()
                item = _json_body(body)
                if not isinstance(item, dict):
                    raise InvalidPubSubRequest(_("The event type must be a JSON object."))
                name = str(item.get("eventType") or "")
                info = create_event_type(
                    session, room=room, name=name, schema=item.get("schema"), created_by=who
                )
                return _json_reply(200, info.to_api()), base(name) | {
                    "schema_sha256": _digest(info.schema)
                }

            return _Op("pubsub.event-type.created", create)
        case "api", ["eventType"], "GET":

            def listing(session: Session) -> tuple[Reply, dict[str, Any]]:
                names = [
                    t.name
                    for t in list_event_types(session, room=room)
                    if manager
                    or any(
                        may(session, room=room, name=t.name, subsystem=who, action=a)
                        for a in ACTIONS
                    )
                ]
                reply = _json_reply(200, names) if names else Reply(204)
                return reply, {"room": str(room), "client": who, "count": len(names)}

            return _Op("pubsub.event-type.listed", listing)
        case "api", ["eventType", name], "GET":

            def read(session: Session) -> tuple[Reply, dict[str, Any]]:
                try:
                    info = get_event_type(session, room=room, name=name)
                except EventTypeNotFound:
                    return Reply(204), base(name) | {"found": False}
                if not manager and not any(
                    may(session, room=room, name=name, subsystem=who, action=a) for a in ACTIONS
                ):
                    raise PubSubForbidden(
                        _("{subsystem} has no right to {name}."), subsystem=who, name=name
                    )
                return _json_reply(200, info.to_api()), base(name)

            return _Op("pubsub.event-type.read", read)
        case "api", ["eventType", name], "DELETE":

            def delete(session: Session) -> tuple[Reply, dict[str, Any]]:
                refuse_unless_manager()
                delete_event_type(session, room=room, name=name)
                return Reply(204), base(name)

            return _Op("pubsub.event-type.deleted", delete)
        case "api", ["subs"], "GET":

            def mine(session: Session) -> tuple[Reply, dict[str, Any]]:
                found = list_subscriptions(session, room=room, subscriber=client)
                return _json_reply(200, [s.to_api() for s in found]), {
                    "room": str(room),
                    "client": who,
                    "count": len(found),
                }

            return _Op("pubsub.subscription.listed", mine)
        case "api", ["subs", name], "POST":

            def add(session: Session) -> tuple[Reply, dict[str, Any]]:
                check_name(name)
                options = parse_subscription(
                    _json_body(body, empty={}), name=name, subscriber=client
                )
                info = subscribe(session, room=room, name=name, subscriber=client, options=options)
                return _json_reply(200, info.to_api()), base(name) | {
                    "subscription": info.id,
                    "delivery": info.delivery,
                    "push_service": info.push_service,
                }

            return _Op("pubsub.subscription.created", add)
        case "api", ["subs", name], "GET":

            def get(session: Session) -> tuple[Reply, dict[str, Any]]:
                info = get_subscription(session, room=room, name=name, subscriber=client)
                return _json_reply(200, info.to_api()), base(name)

            return _Op("pubsub.subscription.read", get)
        case "api", ["subs", name], "PATCH":

            def change(session: Session) -> tuple[Reply, dict[str, Any]]:
                current = get_subscription(session, room=room, name=name, subscriber=client)
                options = parse_subscription(
                    _json_body(body), name=name, subscriber=client, base=current
                )
                info = update_subscription(
                    session, room=room, name=name, subscriber=client, options=options
                )
                return _json_reply(201, info.to_api()), base(name) | {
                    "subscription": info.id,
                    "delivery": info.delivery,
                    "push_service": info.push_service,
                }

            return _Op("pubsub.subscription.changed", change)
        case "api", ["subs", name], "DELETE":

            def cancel(session: Session) -> tuple[Reply, dict[str, Any]]:
                cancel_subscription(session, room=room, name=name, subscriber=client)
                return Reply(204), base(name)

            return _Op("pubsub.subscription.cancelled", cancel)
        case "pub", [name], "POST":

            def publishing(session: Session) -> tuple[Reply, dict[str, Any]]:
                item = _json_body(body)
                if not isinstance(item, dict) or "event" not in item:
                    raise InvalidPubSubRequest(_('The body must be {{"eventType", "event"}}.'))
                if item.get("eventType", name) != name:
                    raise InvalidPubSubRequest(_("The body's eventType differs from the path's."))
                info = publish(session, room=room, name=name, publisher=client, event=item["event"])
                return _json_reply(201, {"id": info.id}), base(name) | {
                    "event": info.id,
                    "sequence": info.sequence,
                    "event_sha256": _digest(info.event),
                }

            return _Op("pubsub.publish", publishing)
        case "pub", [name, event_id], "GET":

            def status(session: Session) -> tuple[Reply, dict[str, Any]]:
                info = event_status(session, room=room, name=name, event_id=event_id, publisher=who)
                return _json_reply(200, info.to_api()), base(name) | {"event": event_id}

            return _Op("pubsub.event.read", status)
        case "pub", [name, event_id], "DELETE":

            def stop(session: Session) -> tuple[Reply, dict[str, Any]]:
                cancelled = cancel_event(
                    session, room=room, name=name, event_id=event_id, publisher=who
                )
                return Reply(204), base(name) | {"event": event_id, "cancelled": cancelled}

            return _Op("pubsub.event.cancelled", stop)
        case "pull", [name], "GET":

            def pulling(session: Session) -> tuple[Reply, dict[str, Any]]:
                info = pull(session, room=room, name=name, subscriber=client)
                return _json_reply(200, info.to_api()), base(name) | {
                    "event": info.id,
                    "sequence": info.sequence,
                    "mode": "pull",
                }

            return _Op("pubsub.deliver", pulling)
        case "pull", [name, event_id], "DELETE":

            def ack(session: Session) -> tuple[Reply, dict[str, Any]]:
                acknowledge(session, room=room, name=name, subscriber=client, event_id=event_id)
                return Reply(204), base(name) | {"event": event_id, "mode": "pull"}

            return _Op("pubsub.ack", ack)
    known = {
        ("api", 1): ("GET", "POST"),
        ("api", 2): ("GET", "POST", "PATCH", "DELETE"),
        ("pub", 1): ("POST",),
        ("pub", 2): ("GET", "DELETE"),
        ("pull", 1): ("GET",),
        ("pull", 2): ("DELETE",),
    }
    allowed = known.get((kind, len(parts)))
    if allowed and (kind != "api" or parts[0] in ("eventType", "subs")):
        raise _MethodNotAllowed(allowed)
    raise _NoSuchPath(_("No pub/sub operation at {path}."), path=f"{kind}{path}"[:200])


class _NoSuchPath(PubSubError):
    status_code = 404
    code = "pubsub-no-such-operation"
    title = _("No such pub/sub operation")


class _MethodNotAllowed(PubSubError):
    status_code = 405
    code = "pubsub-method-not-allowed"
    title = _("The pub/sub operation does not take this method")

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(_("Allowed: {allowed}."), allowed=", ".join(allowed))


def _run(
    runtime: GatewayRuntime,
    *,
    call_id: str,
    client: SubsystemId,
    room: SubsystemId,
    kind: str,
    method: str,
    path: str,
    body: bytes,
    peer: str | None,
) -> Reply:
    """Run one call in one transaction with its message-log record (in a worker thread)."""
    facts: dict[str, Any] = {"id": call_id, "method": method, "path": f"/{kind}{path}"}
    if peer:
        facts["from"] = peer
    facts.update(runtime.body_fields(body, f"pubsub:{call_id}"))
    try:
        op = _route(room, kind, method, path, client, body)
        with runtime.node.session() as session:
            reply, data = op.run(session)
            _log(runtime, session, op.name, facts | data | {"status": reply.status}, str(client))
        return reply
    except PubSubForbidden as refused:
        raise XRoadFault(
            "Server.ServerProxy.AccessDenied", refused.detail, room=str(room)
        ) from refused
    except PubSubError as error:
        with runtime.node.session() as session:
            _log(
                runtime,
                session,
                "pubsub.failed",
                facts
                | {"room": str(room), "client": str(client)}
                | {"status": error.status_code, "error": error.code},
                str(client),
            )
        return _problem(error, call_id)


def _room_of(conf: GlobalConf, runtime: GatewayRuntime, service: ServiceId) -> SubsystemId:
    room = service.subsystem
    if str(room) not in conf.subsystems or room.member != runtime.member:
        raise XRoadFault(
            "Server.ServerProxy.UnknownService",
            f"This gateway keeps no pub/sub room {room}.",
        )
    return room


async def _answer(
    runtime: GatewayRuntime,
    conf: GlobalConf,
    *,
    call_id: str,
    client: SubsystemId,
    service: ServiceId,
    method: str,
    path: str,
    body: bytes,
    peer: str | None,
) -> Reply:
    room = _room_of(conf, runtime, service)
    if service.code == "api" and method in ("POST", "PATCH") and "/subs/" in path:
        _check_push_service(conf, client, body)
    reply = await asyncio.to_thread(
        _run,
        runtime,
        call_id=call_id,
        client=client,
        room=room,
        kind=service.code,
        method=method,
        path=path,
        body=body,
        peer=peer,
    )
    if method == "POST" and service.code == "pub" and reply.status == 201:
        wake(runtime)
    return reply


def _check_push_service(conf: GlobalConf, client: SubsystemId, body: bytes) -> None:
    """A push service must be a registered service of the subscriber itself."""
    try:
        item = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return  # the broker answers that the body is not JSON
    options = item.get("options") if isinstance(item, dict) else None
    push = options.get("pushService") if isinstance(options, dict) else None
    if isinstance(push, str) and push and f"{client}/{push}" not in conf.services:
        raise XRoadFault(
            "Server.ServerProxy.UnknownService",
            f"The push service {client}/{push} is not a registered service of {client}.",
        )


async def answer_local(
    request: Request,
    runtime: GatewayRuntime,
    conf: GlobalConf,
    call: Call,
    *,
    client: SubsystemId,
    service: ServiceId,
    path: str,
) -> Response:
    """A pub/sub call of a room of this gateway's member, answered by its client proxy."""
    body = read_body(request, runtime.settings.exchange_max_body_bytes, "Client.MessageTooLarge")
    try:
        reply = await _answer(
            runtime,
            conf,
            call_id=call.id,
            client=client,
            service=service,
            method=request.method,
            path=path,
            body=body,
            peer=None,
        )
    except XRoadFault as fault:
        fault.facts.setdefault("room", str(service.subsystem))
        raise
    headers = {
        "X-Road-Client": str(client),
        "X-Road-Service": str(service),
        "X-Road-Id": call.id,
    }
    if reply.content_type:
        headers["Content-Type"] = reply.content_type
    return Response(reply.status, body=reply.body or b"", headers=headers)


async def answer_signed(
    runtime: GatewayRuntime,
    conf: GlobalConf,
    *,
    call_id: str,
    client: SubsystemId,
    service: ServiceId,
    method: str,
    path: str,
    body: bytes,
    peer: str,
) -> tuple[int, list[list[str]], bytes]:
    """A verified pub/sub call from another gateway (its server proxy signs the answer)."""
    reply = await _answer(
        runtime,
        conf,
        call_id=call_id,
        client=client,
        service=service,
        method=method,
        path=path,
        body=body,
        peer=peer,
    )
    headers = [["content-type", reply.content_type]] if reply.content_type else []
    return reply.status, headers, reply.body


# --- push delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Push:
    delivery_id: int
    subscription_id: int
    fifo: bool
    room: str
    event_type: str
    subscriber: str
    target: str  # the subscriber's push service
    item: dict[str, Any]
    attempts: int


@dataclass
class _InFlight:
    """The pushes a gateway's pusher has under way: their deliveries, and how many per
    subscription (a FIFO subscription has at most one, another at most
    ``PUSH_PER_SUBSCRIPTION``)."""

    deliveries: set[int] = field(default_factory=set)
    per_subscription: dict[int, int] = field(default_factory=dict)

    def add(self, job: _Push) -> None:
        self.deliveries.add(job.delivery_id)
        self.per_subscription[job.subscription_id] = (
            self.per_subscription.get(job.subscription_id, 0) + 1
        )

    def discard(self, job: _Push) -> None:
        if job.delivery_id not in self.deliveries:
            return
        self.deliveries.discard(job.delivery_id)
        left = self.per_subscription.get(job.subscription_id, 1) - 1
        if left > 0:
            self.per_subscription[job.subscription_id] = left
        else:
            self.per_subscription.pop(job.subscription_id, None)


_pushers: weakref.WeakKeyDictionary[GatewayRuntime, asyncio.Event] = weakref.WeakKeyDictionary()


def wake(runtime: GatewayRuntime) -> None:
    """Tell the gateway's pusher there is something to deliver (on its loop)."""
    event = _pushers.get(runtime)
    if event is not None:
        event.set()


def backoff_seconds(attempts: int) -> float:
    """The wait before attempt ``attempts + 1``: doubling from the first, up to the most."""
    return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** max(0, attempts - 1)))


def _due(
    runtime: GatewayRuntime,
    busy: frozenset[int] = frozenset(),
    per_subscription: dict[int, int] | None = None,
    room: int = PUSH_BATCH,
) -> list[_Push]:
    """Pending PUSH deliveries whose time has come, at most ``room``, none of ``busy`` (the
    deliveries being pushed): of a FIFO subscription its oldest only, and only when none of
    its deliveries is in flight; of another, up to ``PUSH_PER_SUBSCRIPTION`` in flight."""
    now = utcnow()
    flying = per_subscription or {}
    with runtime.node.session() as session:
        _expire(session, now)
        query = (
            sa.select(PubSubDelivery, PubSubEvent, PubSubSubscription, PubSubEventType)
            .join(PubSubEvent, PubSubEvent.id == PubSubDelivery.event_id)
            .join(PubSubSubscription, PubSubSubscription.id == PubSubDelivery.subscription_id)
            .join(PubSubEventType, PubSubEventType.id == PubSubEvent.event_type_id)
            .where(
                PubSubDelivery.state == "pending",
                PubSubSubscription.delivery == "PUSH",
                sa.or_(PubSubSubscription.fifo, PubSubDelivery.next_attempt_at <= now),
            )
            .order_by(PubSubDelivery.subscription_id, PubSubEvent.sequence)
        )
        if busy:
            query = query.where(PubSubDelivery.id.not_in(sorted(busy)))
        jobs: list[_Push] = []
        seen_fifo: set[int] = set()
        taken: dict[int, int] = {}
        for delivery, event, subscription, event_type in session.execute(query).all():
            if subscription.fifo:
                if subscription.id in seen_fifo:
                    continue
                seen_fifo.add(subscription.id)
                if flying.get(subscription.id):
                    continue  # its previous event is still on its way
            elif flying.get(subscription.id, 0) + taken.get(subscription.id, 0) >= (
                PUSH_PER_SUBSCRIPTION
            ):
                continue
            if delivery.next_attempt_at > now:
                continue
            taken[subscription.id] = taken.get(subscription.id, 0) + 1
            jobs.append(
                _Push(
                    delivery_id=delivery.id,
                    subscription_id=subscription.id,
                    fifo=subscription.fifo,
                    room=event_type.room,
                    event_type=event_type.name,
                    subscriber=subscription.subscriber,
                    target=f"{subscription.subscriber}/{subscription.push_service}",
                    item=_event_info(event, event_type.room, event_type.name).to_api(),
                    attempts=delivery.attempts,
                )
            )
            if len(jobs) >= room:
                break
    return jobs


def _pushed(
    runtime: GatewayRuntime, job: _Push, message_id: str, status: int | None, error: str | None
) -> None:
    """Record one push attempt and its log records, in one transaction."""
    now = utcnow()
    ok = status is not None and 200 <= status < 300
    with runtime.node.session() as session:
        delivery = session.get(PubSubDelivery, job.delivery_id)
        if delivery is None or delivery.state != "pending":
            return  # cancelled or gone meanwhile
        delivery.attempts += 1
        facts = {
            "room": job.room,
            "eventType": job.event_type,
            "event": job.item["id"],
            "sequence": job.item["sequence"],
            "subscriber": job.subscriber,
            "mode": "push",
            "to": job.target,
            "id": message_id,
            "attempt": delivery.attempts,
            "status": status,
        }
        if ok:
            delivery.state = "acknowledged"
            delivery.acknowledged_at = now
            delivery.last_error = None
        else:
            delivery.last_error = (error or f"answered {status}")[:500]
            delivery.next_attempt_at = now + dt.timedelta(
                seconds=backoff_seconds(delivery.attempts)
            )
            facts["error"] = delivery.last_error
            facts["retry_at"] = _iso(delivery.next_attempt_at)
        _log(runtime, session, "pubsub.deliver", facts, job.room)
        if ok:
            _log(runtime, session, "pubsub.ack", facts, job.subscriber)


async def _push(runtime: GatewayRuntime, http: aiohttp.ClientSession, url: str, job: _Push) -> None:
    message_id = str(uuid.uuid4())
    status: int | None = None
    error: str | None = None
    path = "/r1/" + "/".join(job.target.split("/")) + "/" + job.event_type
    try:
        async with http.post(
            url + path,
            data=json.dumps(job.item, ensure_ascii=False).encode("utf-8"),
            headers={
                "X-Road-Client": job.room,
                "X-Road-Id": message_id,
                "Content-Type": "application/json",
            },
        ) as response:
            status = response.status
            if not 200 <= status < 300:
                error = f"{status} {response.headers.get('X-Road-Error', '')}".strip()
            await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as failure:
        error = repr(failure)[:300]
    await asyncio.to_thread(_pushed, runtime, job, message_id, status, error)
    if error:
        log.info("pubsub.push-failed", gateway=runtime.name, to=job.target, reason=error)


async def _push_one(
    runtime: GatewayRuntime,
    http: aiohttp.ClientSession,
    url: str,
    job: _Push,
    flight: _InFlight,
    woken: asyncio.Event,
) -> None:
    """One push, on its own task; its delivery stays in ``flight`` until its outcome is
    committed, so the pusher never picks it twice meanwhile."""
    done = False
    try:
        await _push(runtime, http, url, job)
        done = True
    except asyncio.CancelledError:
        raise
    except Exception as failure:  # a database hiccup: the delivery is tried again later
        log.warning("pubsub.pusher-failed", gateway=runtime.name, reason=repr(failure)[:300])
    finally:
        flight.discard(job)
        if done:
            woken.set()  # a slot is free; a FIFO subscription's next event may be due


def prune_due(last: float | None, now: float) -> bool:
    """Whether the pusher prunes now: at its start, then at most every
    ``PRUNE_EVERY_SECONDS`` (``last`` and ``now`` are ``time.monotonic()`` readings)."""
    return last is None or now - last >= PRUNE_EVERY_SECONDS


def _prune_gateway(runtime: GatewayRuntime) -> Pruned:
    """Prune the gateway's pub/sub tables by its retention setting (in a worker thread)."""
    days = runtime.settings.exchange_pubsub_retention_days
    pruned = prune_in_chunks(runtime.node, older_than=dt.timedelta(days=days))
    if pruned.deliveries or pruned.events:
        log.info(
            "pubsub.pruned",
            gateway=runtime.name,
            deliveries=pruned.deliveries,
            events=pruned.events,
            retention_days=days,
        )
    return pruned


async def _prune_quietly(runtime: GatewayRuntime) -> None:
    try:
        await asyncio.to_thread(_prune_gateway, runtime)
    except Exception as failure:  # tried again at the next interval
        log.warning("pubsub.prune-failed", gateway=runtime.name, reason=repr(failure)[:300])


async def _push_forever(
    runtime: GatewayRuntime, http: aiohttp.ClientSession, url: str, woken: asyncio.Event
) -> None:
    """Pick due deliveries and push each on its own task (at most ``PUSH_BATCH`` in flight),
    going on picking while slow ones are under way; prune now and then."""
    flight = _InFlight()
    tasks: set[asyncio.Task[None]] = set()
    pruned_at: float | None = None
    pruning: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                await asyncio.wait_for(woken.wait(), timeout=PUSH_POLL_SECONDS)
            except TimeoutError:
                pass
            woken.clear()
            try:
                room = PUSH_BATCH - len(flight.deliveries)
                if room > 0:
                    jobs = await asyncio.to_thread(
                        _due,
                        runtime,
                        frozenset(flight.deliveries),
                        dict(flight.per_subscription),
                        room,
                    )
                    for job in jobs:
                        flight.add(job)
                        task = asyncio.create_task(
                            _push_one(runtime, http, url, job, flight, woken)
                        )
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                moment = time.monotonic()
                if (pruning is None or pruning.done()) and prune_due(pruned_at, moment):
                    pruned_at = moment
                    pruning = asyncio.create_task(_prune_quietly(runtime))
                    tasks.add(pruning)
                    pruning.add_done_callback(tasks.discard)
            except asyncio.CancelledError:
                raise
            except Exception as failure:  # a database hiccup must not end delivery for good
                log.warning(
                    "pubsub.pusher-failed", gateway=runtime.name, reason=repr(failure)[:300]
                )
    finally:
        for task in list(tasks):
            task.cancel()


def start_pusher(
    runtime: GatewayRuntime, http: aiohttp.ClientSession, host: str, port: int
) -> asyncio.Task[None]:
    """Start delivering PUSH subscriptions from this gateway (on the running loop), through
    its own client proxy listening on ``host:port``; cancel the task to stop (its pushes in
    flight are cancelled with it)."""
    woken = asyncio.Event()
    woken.set()  # deliver what waited across a restart at once
    _pushers[runtime] = woken
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return asyncio.create_task(_push_forever(runtime, http, f"http://{host}:{port}", woken))


# --- retention --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    events: int

    def to_dict(self) -> dict[str, int]:
        return {"deliveries": self.deliveries, "events": self.events}


def prune(
    session: Session,
    *,
    older_than: dt.timedelta,
    now: dt.datetime | None = None,
    limit: int | None = None,
) -> Pruned:
    """Delete, in the caller's transaction, the deliveries that are over and older than
    ``older_than`` (acknowledged, expired or cancelled that long ago), then the events left
    without deliveries that were published that long ago. A pending delivery is never
    deleted, so neither is an event someone may still pull or be pushed; the message log
    keeps its records. With ``limit``, at most that many deliveries and that many events go
    (``prune_in_chunks``: short transactions)."""
    now = now or utcnow()
    cutoff = now - older_than
    _expire(session, now)
    cancelled_events = sa.select(PubSubEvent.id).where(
        PubSubEvent.cancelled_at.is_not(None), PubSubEvent.cancelled_at < cutoff
    )
    over = sa.or_(
        sa.and_(
            PubSubDelivery.state == "acknowledged",
            PubSubDelivery.acknowledged_at < cutoff,
        ),
        sa.and_(PubSubDelivery.state == "expired", PubSubDelivery.expires_at < cutoff),
        sa.and_(
            PubSubDelivery.state == "cancelled",
            PubSubDelivery.event_id.in_(cancelled_events),
        ),
    )
    left = sa.select(PubSubDelivery.id).where(PubSubDelivery.event_id == PubSubEvent.id)
    bare = sa.and_(PubSubEvent.published_at < cutoff, ~left.exists())
    if limit is not None:  # the rows' ids first: DELETE … LIMIT is not portable
        over = PubSubDelivery.id.in_(sa.select(PubSubDelivery.id).where(over).limit(limit))
        bare = PubSubEvent.id.in_(sa.select(PubSubEvent.id).where(bare).limit(limit))
    deliveries = session.execute(
        sa.delete(PubSubDelivery).where(over).execution_options(synchronize_session=False)
    )
    events = session.execute(
        sa.delete(PubSubEvent).where(bare).execution_options(synchronize_session=False)
    )
    session.flush()
    return Pruned(
        deliveries=int(getattr(deliveries, "rowcount", 0) or 0),
        events=int(getattr(events, "rowcount", 0) or 0),
    )


PRUNE_CHUNK = 500  # rows of each table per transaction
PRUNE_PAUSE_SECONDS = 0.05  # between two transactions: the gateway's own writes go first


def prune_in_chunks(
    node: Node,
    *,
    older_than: dt.timedelta,
    chunk: int = PRUNE_CHUNK,
    pause: float = PRUNE_PAUSE_SECONDS,
) -> Pruned:
    """``prune`` in transactions of at most ``chunk`` deliveries and ``chunk`` events each,
    ``pause`` seconds apart, until nothing is left to prune. Why: on SQLite a transaction
    holds the database's write lock to its end, and a serving gateway writes its message log
    on its event loop, which waits for the lock; one transaction deleting a busy month's
    deliveries would stall every call for as long. All chunks prune against the same time."""
    now = utcnow()
    deliveries = events = 0
    while True:
        with node.session() as session:
            pruned = prune(session, older_than=older_than, now=now, limit=chunk)
        deliveries += pruned.deliveries
        events += pruned.events
        if pruned.deliveries < chunk and pruned.events < chunk:
            return Pruned(deliveries=deliveries, events=events)
        time.sleep(pause)


__all__ = [
    "ACTIONS",
    "EventInfo",
    "EventNotFound",
    "EventRefused",
    "EventTypeAlreadyExists",
    "EventTypeInfo",
    "EventTypeNotFound",
    "InvalidPubSubRequest",
    "NoEventAvailable",
    "NotPullSubscribed",
    "PubSubError",
    "PubSubForbidden",
    "Pruned",
    "RightInfo",
    "RightNotFound",
    "SubscriptionAlreadyExists",
    "SubscriptionInfo",
    "SubscriptionNotFound",
    "acknowledge",
    "answer_local",
    "answer_signed",
    "backoff_seconds",
    "cancel_event",
    "cancel_subscription",
    "check_event",
    "check_name",
    "check_schema",
    "create_event_type",
    "delete_event_type",
    "event_status",
    "get_event_type",
    "get_subscription",
    "grant",
    "is_local",
    "is_room_call",
    "list_event_types",
    "list_rights",
    "list_subscriptions",
    "may",
    "parse_subscription",
    "prune",
    "prune_due",
    "prune_in_chunks",
    "publish",
    "pull",
    "revoke",
    "start_pusher",
    "subscribe",
    "update_subscription",
    "wake",
]
