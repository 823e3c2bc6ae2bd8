"""exchange: federated shared parameters, local groups, access rights to groups and foreign
subsystems

Revision ID: 0101
Revises: 0100
Create Date: 2026-11-29 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jisr.core.db

revision: str = "0101"
down_revision: str | None = "0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = jisr.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_peer_confs",
        sa.Column("peer_instance", sa.String(length=16), nullable=False),
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("fetched_at", _TIME, nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_peer_confs")),
        sa.UniqueConstraint("peer_instance", name=op.f("uq_exchange_peer_confs_peer_instance")),
    )
    op.create_table(
        "exchange_local_groups",
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["exchange_members.id"],
            name=op.f("fk_exchange_local_groups_member_id_exchange_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_local_groups")),
        sa.UniqueConstraint(
            "member_id", "code", name=op.f("uq_exchange_local_groups_member_id_code")
        ),
    )
    with op.batch_alter_table("exchange_local_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_local_groups_member_id"), ["member_id"], unique=False
        )
    op.create_table(
        "exchange_local_group_members",
        sa.Column("group_id", _ID, nullable=False),
        sa.Column("client", sa.String(length=300), nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["exchange_local_groups.id"],
            name=op.f("fk_exchange_local_group_members_group_id_exchange_local_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_local_group_members")),
        sa.UniqueConstraint(
            "group_id", "client", name=op.f("uq_exchange_local_group_members_group_id_client")
        ),
    )
    with op.batch_alter_table("exchange_local_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_local_group_members_group_id"), ["group_id"], unique=False
        )
    with op.batch_alter_table("exchange_access_rights", schema=None) as batch_op:
        batch_op.alter_column("client_id", existing_type=_ID, nullable=True)
        batch_op.add_column(sa.Column("group_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("foreign_client", sa.String(length=300), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_exchange_access_rights_group_id_exchange_local_groups"),
            "exchange_local_groups",
            ["group_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_exchange_access_rights_group_id"), ["group_id"], unique=False
        )


def downgrade() -> None:
    op.execute("DELETE FROM exchange_access_rights WHERE client_id IS NULL")
    with op.batch_alter_table("exchange_access_rights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_access_rights_group_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_exchange_access_rights_group_id_exchange_local_groups"),
            type_="foreignkey",
        )
        batch_op.drop_column("foreign_client")
        batch_op.drop_column("group_id")
        batch_op.alter_column("client_id", existing_type=_ID, nullable=False)
    with op.batch_alter_table("exchange_local_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_local_group_members_group_id"))
    op.drop_table("exchange_local_group_members")
    with op.batch_alter_table("exchange_local_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_local_groups_member_id"))
    op.drop_table("exchange_local_groups")
    op.drop_table("exchange_peer_confs")
