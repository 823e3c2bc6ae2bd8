"""digital registries: databases, records, data usage

Revision ID: 0500
Revises: 0001
Create Date: 2026-11-29 15:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jisr.core.db

revision: str = "0500"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("registries",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = jisr.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_databases",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("group_name", sa.String(length=200), nullable=False),
        sa.Column("catalog_name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("schema_flags", sa.Text(), nullable=False),
        sa.Column("primary_key", sa.String(length=100), nullable=True),
        sa.Column("subject_path", sa.String(length=200), nullable=True),
        sa.Column("number_format", sa.String(length=100), nullable=True),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("modified_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_databases")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_registry_databases_name_version")),
    )
    with op.batch_alter_table("registry_databases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_databases_code"), ["code"], unique=False)

    op.create_table(
        "registry_records",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("database_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("modified_at", _TIME, nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["database_id"],
            ["registry_databases.id"],
            name=op.f("fk_registry_records_database_id_registry_databases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_records")),
        sa.UniqueConstraint("database_id", "key", name=op.f("uq_registry_records_database_id_key")),
        sa.UniqueConstraint("uuid", name=op.f("uq_registry_records_uuid")),
    )
    with op.batch_alter_table("registry_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registry_records_database_id"), ["database_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_registry_records_subject"), ["subject"], unique=False)

    op.create_table(
        "registry_data_usage",
        sa.Column("database_id", _ID, nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("reader", sa.String(length=255), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("read_at", _TIME, nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["database_id"],
            ["registry_databases.id"],
            name=op.f("fk_registry_data_usage_database_id_registry_databases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_data_usage")),
    )
    with op.batch_alter_table("registry_data_usage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registry_data_usage_database_id"), ["database_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_registry_data_usage_subject"), ["subject"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("registry_data_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_data_usage_subject"))
        batch_op.drop_index(batch_op.f("ix_registry_data_usage_database_id"))
    op.drop_table("registry_data_usage")
    with op.batch_alter_table("registry_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_records_subject"))
        batch_op.drop_index(batch_op.f("ix_registry_records_database_id"))
    op.drop_table("registry_records")
    with op.batch_alter_table("registry_databases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_databases_code"))
    op.drop_table("registry_databases")
