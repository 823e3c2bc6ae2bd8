"""exchange pub/sub: event types, rights, subscriptions, events, deliveries

Revision ID: 0110
Revises: 0001
Create Date: 2026-11-29 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jisr.core.db

revision: str = "0110"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("pubsub",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, jisr.core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "pubsub_event_types",
        sa.Column("room", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        _when("created_at"),
        sa.Column("next_sequence", sa.BigInteger(), nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pubsub_event_types")),
        sa.UniqueConstraint("room", "name", name=op.f("uq_pubsub_event_types_room_name")),
    )
    op.create_table(
        "pubsub_rights",
        sa.Column("event_type_id", _ID, nullable=False),
        sa.Column("subsystem", sa.String(length=300), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        _when("granted_at"),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_type_id"],
            ["pubsub_event_types.id"],
            name=op.f("fk_pubsub_rights_event_type_id_pubsub_event_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pubsub_rights")),
        sa.UniqueConstraint(
            "event_type_id",
            "subsystem",
            "action",
            name=op.f("uq_pubsub_rights_event_type_id_subsystem_action"),
        ),
    )
    with op.batch_alter_table("pubsub_rights", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pubsub_rights_event_type_id"), ["event_type_id"], unique=False
        )
    op.create_table(
        "pubsub_subscriptions",
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("event_type_id", _ID, nullable=False),
        sa.Column("subscriber", sa.String(length=300), nullable=False),
        sa.Column("delivery", sa.String(length=4), nullable=False),
        sa.Column("push_service", sa.String(length=400), nullable=True),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("fifo", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_type_id"],
            ["pubsub_event_types.id"],
            name=op.f("fk_pubsub_subscriptions_event_type_id_pubsub_event_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pubsub_subscriptions")),
        sa.UniqueConstraint("public_id", name=op.f("uq_pubsub_subscriptions_public_id")),
        sa.UniqueConstraint(
            "event_type_id",
            "subscriber",
            name=op.f("uq_pubsub_subscriptions_event_type_id_subscriber"),
        ),
    )
    with op.batch_alter_table("pubsub_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pubsub_subscriptions_event_type_id"), ["event_type_id"], unique=False
        )
    op.create_table(
        "pubsub_events",
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("event_type_id", _ID, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("publisher", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _when("published_at"),
        _when("cancelled_at", nullable=True),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_type_id"],
            ["pubsub_event_types.id"],
            name=op.f("fk_pubsub_events_event_type_id_pubsub_event_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pubsub_events")),
        sa.UniqueConstraint("public_id", name=op.f("uq_pubsub_events_public_id")),
        sa.UniqueConstraint(
            "event_type_id", "sequence", name=op.f("uq_pubsub_events_event_type_id_sequence")
        ),
    )
    with op.batch_alter_table("pubsub_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pubsub_events_event_type_id"), ["event_type_id"], unique=False
        )
    op.create_table(
        "pubsub_deliveries",
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("subscription_id", _ID, nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at"),
        _when("expires_at"),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _when("acknowledged_at", nullable=True),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["pubsub_events.id"],
            name=op.f("fk_pubsub_deliveries_event_id_pubsub_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["pubsub_subscriptions.id"],
            name=op.f("fk_pubsub_deliveries_subscription_id_pubsub_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pubsub_deliveries")),
        sa.UniqueConstraint(
            "event_id",
            "subscription_id",
            name=op.f("uq_pubsub_deliveries_event_id_subscription_id"),
        ),
    )
    with op.batch_alter_table("pubsub_deliveries", schema=None) as batch_op:
        for column in ("event_id", "subscription_id", "state", "next_attempt_at"):
            batch_op.create_index(
                batch_op.f(f"ix_pubsub_deliveries_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("pubsub_deliveries", schema=None) as batch_op:
        for column in ("event_id", "subscription_id", "state", "next_attempt_at"):
            batch_op.drop_index(batch_op.f(f"ix_pubsub_deliveries_{column}"))
    op.drop_table("pubsub_deliveries")
    with op.batch_alter_table("pubsub_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pubsub_events_event_type_id"))
    op.drop_table("pubsub_events")
    with op.batch_alter_table("pubsub_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pubsub_subscriptions_event_type_id"))
    op.drop_table("pubsub_subscriptions")
    with op.batch_alter_table("pubsub_rights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pubsub_rights_event_type_id"))
    op.drop_table("pubsub_rights")
    op.drop_table("pubsub_event_types")
