"""Tables of the hash-chained audit log (one set per node, many named chains in it)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin


class AuditChain(Base):
    """The head of one chain; appenders lock this row so the chain never forks."""

    __tablename__ = "audit_chains"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    head_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class AuditRecord(IdMixin, Base):
    """One record; ``hash`` covers every other field and the previous record's hash."""

    __tablename__ = "audit_records"
    __table_args__ = (sa.UniqueConstraint("chain", "seq"),)

    chain: Mapped[str] = mapped_column(sa.String(100))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime]
    event: Mapped[str] = mapped_column(sa.String(100))
    actor: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    subject: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    data: Mapped[str] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditCheckpoint(IdMixin, Base):
    """A signed statement "chain C had head hash H at sequence S" (a compact JWS)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (sa.UniqueConstraint("chain", "seq"),)

    chain: Mapped[str] = mapped_column(sa.String(100))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime]
    kid: Mapped[str] = mapped_column(sa.String(64))
    signature: Mapped[str] = mapped_column(sa.Text)
