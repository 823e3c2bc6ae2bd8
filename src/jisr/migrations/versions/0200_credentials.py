"""credentials: issued credentials and status lists

Revision ID: 0200
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jisr.core.db

revision: str = "0200"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("credentials",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credentials_status_lists",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("created_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials_status_lists")),
        sa.UniqueConstraint("name", name=op.f("uq_credentials_status_lists_name")),
    )
    op.create_index(
        op.f("ix_credentials_status_lists_agency"),
        "credentials_status_lists",
        ["agency"],
        unique=False,
    )
    op.create_table(
        "credentials_issued",
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("doc_type", sa.String(length=64), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("subject_national_id", sa.String(length=32), nullable=False),
        sa.Column("issuer_kid", sa.String(length=64), nullable=False),
        sa.Column("holder_key_thumbprint", sa.String(length=64), nullable=True),
        sa.Column(
            "status_list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("issued_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", jisr.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", jisr.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=200), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["status_list_id"],
            ["credentials_status_lists.id"],
            name=op.f("fk_credentials_issued_status_list_id_credentials_status_lists"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials_issued")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_credentials_issued_credential_id")),
        sa.UniqueConstraint(
            "status_list_id",
            "status_index",
            name=op.f("uq_credentials_issued_status_list_id_status_index"),
        ),
    )
    op.create_index(
        op.f("ix_credentials_issued_subject_national_id"),
        "credentials_issued",
        ["subject_national_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_credentials_issued_subject_national_id"), table_name="credentials_issued"
    )
    op.drop_table("credentials_issued")
    op.drop_index(op.f("ix_credentials_status_lists_agency"), table_name="credentials_status_lists")
    op.drop_table("credentials_status_lists")
