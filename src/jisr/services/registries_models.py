"""Tables of the digital registries (GovStack Digital Registries), on a ``registers`` node.

* ``registry_databases``: one registry database per (``name``, ``version``), with its JSON
  Schema (``schema``, JSON text kept exactly as given), the GovStack catalogue fields (group,
  catalogue, short ``code``), the primary-key field and the data subject's path taken from
  the schema, and the counter that numbers new records (``next_index``).
* ``registry_records``: the records, each a JSON object (``content``) with a ``uuid``, its
  primary-key value (``key``, unique per database), the personal identifier of its data
  subject (``subject``), a normalised text for searching (``search_text``) and timestamps.
* ``registry_data_usage``: who read which record about whom, and when (GovStack
  "MyPersonalDataUsage").

Writes also go to the node's audit chain ``registries`` (see ``registries``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class RegistryDatabase(Base):
    """A registry database: a JSON Schema version and the records that must pass it."""

    __tablename__ = "registry_databases"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[str] = mapped_column(sa.String(32))
    code: Mapped[str] = mapped_column(sa.String(32), index=True)
    group_name: Mapped[str] = mapped_column(sa.String(200), default="")
    catalog_name: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    institution: Mapped[str] = mapped_column(sa.String(200), default="")
    schema: Mapped[str] = mapped_column(sa.Text)
    schema_flags: Mapped[str] = mapped_column(sa.Text, default="[]")
    primary_key: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    subject_path: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    number_format: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    next_index: Mapped[int] = mapped_column(sa.BigInteger, default=1)
    created_by: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[dt.datetime]
    modified_at: Mapped[dt.datetime]


class RegistryRecord(IdMixin, Base):
    """One record of a registry database."""

    __tablename__ = "registry_records"
    __table_args__ = (sa.UniqueConstraint("database_id", "key"),)

    uuid: Mapped[str] = mapped_column(sa.String(36), unique=True)
    database_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("registry_databases.id"),
        index=True,
    )
    key: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    subject: Mapped[str | None] = mapped_column(sa.String(255), nullable=True, index=True)
    content: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[dt.datetime]
    modified_at: Mapped[dt.datetime]


class RegistryDataUsage(IdMixin, Base):
    """One read of a record about a person: who (the exchange client), what, when."""

    __tablename__ = "registry_data_usage"

    database_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("registry_databases.id"),
        index=True,
    )
    subject: Mapped[str] = mapped_column(sa.String(255), index=True)
    reference: Mapped[str] = mapped_column(sa.String(255))
    reader: Mapped[str] = mapped_column(sa.String(255))
    operation: Mapped[str] = mapped_column(sa.String(32))
    read_at: Mapped[dt.datetime]


__all__ = ["RegistryDataUsage", "RegistryDatabase", "RegistryRecord"]
