"""peer status lists: federated peers' Status List Tokens kept by the verifier

Revision ID: 0202
Revises: 0201
Create Date: 2026-11-29 15:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jisr.core.db

revision: str = "0202"
down_revision: str | None = "0201"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credentials_peer_status_lists",
        sa.Column("uri", sa.String(length=500), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("fetched_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stale_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials_peer_status_lists")),
        sa.UniqueConstraint("uri", name=op.f("uq_credentials_peer_status_lists_uri")),
    )
    with op.batch_alter_table("credentials_peer_status_lists", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credentials_peer_status_lists_peer"), ["peer"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("credentials_peer_status_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_peer_status_lists_peer"))
    op.drop_table("credentials_peer_status_lists")
