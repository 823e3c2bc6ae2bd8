"""Tables of the services block (node ``portal``): applications and their workflow.

* ``Application``: one person's request for one procedure of the catalogue, its state, its
  form, which required documents were fetched through the exchange and which were asked of
  the person, its deadline and its dates;
* ``UploadedDocument``: a file the person uploaded (PDF, JPEG or PNG by content), with its
  SHA-256; attached to an application when it answers one of its required documents;
* ``EvidenceRecord``: a document fetched once-only through the exchange: which service,
  which provider, the exchange message id, the purpose sent with the call, when, and the
  provider's answer (what the person is shown as "fetched, from whom and why");
* ``Task``: work waiting on someone: an officer of the procedure's agency (``review``) or
  the applicant (``provide-documents``, ``provide-information``), with its due date;
* ``StateChange``: every change of an application's state, in order (also on the portal's
  ``services`` audit chain).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin


class Application(IdMixin, Base):
    __tablename__ = "services_applications"

    application_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    procedure_id: Mapped[str] = mapped_column(sa.String(80), index=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    agency: Mapped[str | None] = mapped_column(sa.String(100), nullable=True, index=True)
    applicant_national_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    applicant_sub: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    form_data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    asked_documents: Mapped[list[int]] = mapped_column(sa.JSON)
    fetched_documents: Mapped[list[int]] = mapped_column(sa.JSON)
    holder_key: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    decision_due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    credential_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)


class UploadedDocument(IdMixin, Base):
    __tablename__ = "services_documents"

    document_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    owner_national_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    application_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("services_applications.id", ondelete="CASCADE"), nullable=True, index=True
    )
    required_index: Mapped[int | None] = mapped_column(nullable=True)
    filename: Mapped[str] = mapped_column(sa.String(200))
    media_type: Mapped[str] = mapped_column(sa.String(32))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    uploaded_at: Mapped[dt.datetime]


class EvidenceRecord(IdMixin, Base):
    __tablename__ = "services_evidence"

    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("services_applications.id", ondelete="CASCADE"), index=True
    )
    required_index: Mapped[int]
    service: Mapped[str] = mapped_column(sa.String(300))
    provider: Mapped[str] = mapped_column(sa.String(100))
    message_id: Mapped[str] = mapped_column(sa.String(128))
    purpose: Mapped[str] = mapped_column(sa.String(300))
    fetched_at: Mapped[dt.datetime]
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class Task(IdMixin, Base):
    __tablename__ = "services_tasks"

    task_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("services_applications.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    party: Mapped[str] = mapped_column(sa.String(16))
    agency: Mapped[str | None] = mapped_column(sa.String(100), nullable=True, index=True)
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    assignee: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    question: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    created_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class StateChange(IdMixin, Base):
    __tablename__ = "services_state_changes"

    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("services_applications.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(sa.String(16))
    actor: Mapped[str] = mapped_column(sa.String(128))
    reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    at: Mapped[dt.datetime]


__all__ = ["Application", "EvidenceRecord", "StateChange", "Task", "UploadedDocument"]
