"""Tables of the exchange's pub/sub (GovStack IM PubSub API), filled on gateway nodes only.

A *room* is a subsystem (``INSTANCE/CLASS/MEMBER/APPLICATION``); its event types, the rights
to publish and subscribe, the subscriptions, the events and their deliveries live in the
database of the gateway of the room's member (``jisr.exchange.pubsub``):

* ``pubsub_event_types``: per room, a name and the JSON Schema its events must satisfy;
* ``pubsub_rights``: a subsystem may ``publish`` or ``subscribe`` to an event type;
* ``pubsub_subscriptions``: a subscriber's PULL or PUSH subscription (PUSH names the service
  of the subscriber that receives the events), with its TTL and FIFO options;
* ``pubsub_events``: every accepted publication, its sequence number in the event type;
* ``pubsub_deliveries``: one row per (event, subscription), made in the publication's
  transaction, holding the delivery state (``pending``, ``acknowledged``, ``expired``,
  ``cancelled``), the attempts and the time of the next push attempt.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class PubSubEventType(IdMixin, Base):
    """An event type of a room, and the JSON Schema of its events."""

    __tablename__ = "pubsub_event_types"
    __table_args__ = (sa.UniqueConstraint("room", "name"),)

    room: Mapped[str] = mapped_column(sa.String(300))
    name: Mapped[str] = mapped_column(sa.String(100))
    schema: Mapped[str] = mapped_column(sa.Text)
    created_by: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[dt.datetime]
    next_sequence: Mapped[int] = mapped_column(sa.BigInteger, default=1)


class PubSubRight(IdMixin, Base):
    """A subsystem may ``publish`` or ``subscribe`` to an event type."""

    __tablename__ = "pubsub_rights"
    __table_args__ = (sa.UniqueConstraint("event_type_id", "subsystem", "action"),)

    event_type_id: Mapped[int] = mapped_column(
        _ID, sa.ForeignKey("pubsub_event_types.id", ondelete="CASCADE"), index=True
    )
    subsystem: Mapped[str] = mapped_column(sa.String(300))
    action: Mapped[str] = mapped_column(sa.String(10))
    granted_at: Mapped[dt.datetime]


class PubSubSubscription(IdMixin, Base):
    """A subscriber's subscription to an event type (one per subscriber and type)."""

    __tablename__ = "pubsub_subscriptions"
    __table_args__ = (sa.UniqueConstraint("event_type_id", "subscriber"),)

    public_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    event_type_id: Mapped[int] = mapped_column(
        _ID, sa.ForeignKey("pubsub_event_types.id", ondelete="CASCADE"), index=True
    )
    subscriber: Mapped[str] = mapped_column(sa.String(300))
    delivery: Mapped[str] = mapped_column(sa.String(4))
    push_service: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    ttl_seconds: Mapped[int]
    fifo: Mapped[bool]
    created_at: Mapped[dt.datetime]


class PubSubEvent(IdMixin, Base):
    """A publication accepted by the room's gateway."""

    __tablename__ = "pubsub_events"
    __table_args__ = (sa.UniqueConstraint("event_type_id", "sequence"),)

    public_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    event_type_id: Mapped[int] = mapped_column(
        _ID, sa.ForeignKey("pubsub_event_types.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(sa.BigInteger)
    publisher: Mapped[str] = mapped_column(sa.String(300))
    payload: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[dt.datetime]
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class PubSubDelivery(IdMixin, Base):
    """The delivery of one event to one subscription."""

    __tablename__ = "pubsub_deliveries"
    __table_args__ = (sa.UniqueConstraint("event_id", "subscription_id"),)

    event_id: Mapped[int] = mapped_column(
        _ID, sa.ForeignKey("pubsub_events.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[int] = mapped_column(
        _ID, sa.ForeignKey("pubsub_subscriptions.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(sa.String(12), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(index=True)
    expires_at: Mapped[dt.datetime]
    last_error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
