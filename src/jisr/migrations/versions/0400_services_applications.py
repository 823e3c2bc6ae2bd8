"""services: applications, uploaded documents, fetched evidence, tasks, state changes

Revision ID: 0400
Revises: 0001
Create Date: 2026-11-29 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jisr.core.db

revision: str = "0400"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("services",)
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _fk() -> sa.Column[int]:
    return sa.Column(
        "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
    )


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, jisr.core.db.UTCDateTime(timezone=True), nullable=nullable)


def _application_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["application_id"],
        ["services_applications.id"],
        name=op.f(f"fk_{table}_application_id_services_applications"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "services_applications",
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("procedure_id", sa.String(length=80), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("agency", sa.String(length=100), nullable=True),
        sa.Column("applicant_national_id", sa.String(length=32), nullable=False),
        sa.Column("applicant_sub", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("form_data", sa.JSON(), nullable=False),
        sa.Column("asked_documents", sa.JSON(), nullable=False),
        sa.Column("fetched_documents", sa.JSON(), nullable=False),
        sa.Column("holder_key", sa.JSON(), nullable=True),
        _time("decision_due_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("submitted_at", nullable=True),
        _time("decided_at", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        _id(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services_applications")),
        sa.UniqueConstraint("application_id", name=op.f("uq_services_applications_application_id")),
    )
    for column in ("agency", "applicant_national_id", "procedure_id", "state"):
        op.create_index(
            op.f(f"ix_services_applications_{column}"),
            "services_applications",
            [column],
            unique=False,
        )

    op.create_table(
        "services_documents",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("owner_national_id", sa.String(length=32), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("required_index", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        _time("uploaded_at"),
        _id(),
        _application_fk("services_documents"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services_documents")),
        sa.UniqueConstraint("document_id", name=op.f("uq_services_documents_document_id")),
    )
    for column in ("application_id", "owner_national_id"):
        op.create_index(
            op.f(f"ix_services_documents_{column}"), "services_documents", [column], unique=False
        )

    op.create_table(
        "services_evidence",
        _fk(),
        sa.Column("required_index", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=300), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=300), nullable=False),
        _time("fetched_at"),
        sa.Column("data", sa.JSON(), nullable=False),
        _id(),
        _application_fk("services_evidence"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services_evidence")),
    )
    op.create_index(
        op.f("ix_services_evidence_application_id"),
        "services_evidence",
        ["application_id"],
        unique=False,
    )

    op.create_table(
        "services_tasks",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        _fk(),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("agency", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("due_at", nullable=True),
        sa.Column("assignee", sa.String(length=128), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        _time("created_at"),
        _time("completed_at", nullable=True),
        _id(),
        _application_fk("services_tasks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services_tasks")),
        sa.UniqueConstraint("task_id", name=op.f("uq_services_tasks_task_id")),
    )
    for column in ("agency", "application_id", "state"):
        op.create_index(
            op.f(f"ix_services_tasks_{column}"), "services_tasks", [column], unique=False
        )

    op.create_table(
        "services_state_changes",
        _fk(),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _time("at"),
        _id(),
        _application_fk("services_state_changes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services_state_changes")),
    )
    op.create_index(
        op.f("ix_services_state_changes_application_id"),
        "services_state_changes",
        ["application_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_services_state_changes_application_id"), table_name="services_state_changes"
    )
    op.drop_table("services_state_changes")
    for column in ("agency", "application_id", "state"):
        op.drop_index(op.f(f"ix_services_tasks_{column}"), table_name="services_tasks")
    op.drop_table("services_tasks")
    op.drop_index(op.f("ix_services_evidence_application_id"), table_name="services_evidence")
    op.drop_table("services_evidence")
    for column in ("application_id", "owner_national_id"):
        op.drop_index(op.f(f"ix_services_documents_{column}"), table_name="services_documents")
    op.drop_table("services_documents")
    for column in ("agency", "applicant_national_id", "procedure_id", "state"):
        op.drop_index(
            op.f(f"ix_services_applications_{column}"), table_name="services_applications"
        )
    op.drop_table("services_applications")
