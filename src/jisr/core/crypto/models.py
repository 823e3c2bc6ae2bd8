"""Tables of the keystore and of the instance certificate authority (one set per node)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin


class StoredKey(IdMixin, Base):
    """One key pair. Software keys keep their private half encrypted (PKCS#8, passphrase);
    PKCS#11 keys keep only a label here, the private half never leaves the token."""

    __tablename__ = "keystore_keys"

    kid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    purpose: Mapped[str] = mapped_column(sa.String(32), index=True)
    algorithm: Mapped[str] = mapped_column(sa.String(16))
    backend: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    private_pem: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    pkcs11_label: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    created_at: Mapped[dt.datetime]
    retired_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class IssuedCertificate(IdMixin, Base):
    """A certificate the instance CA issued (its own root included)."""

    __tablename__ = "ca_certificates"

    serial: Mapped[str] = mapped_column(sa.String(64), unique=True)
    subject: Mapped[str] = mapped_column(sa.String(512))
    usage: Mapped[str] = mapped_column(sa.String(32), index=True)
    is_ca: Mapped[bool] = mapped_column(default=False)
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    pem: Mapped[str] = mapped_column(sa.Text)
    issued_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)


class PublishedCrl(IdMixin, Base):
    """Every CRL the CA signed, numbered (RFC 5280 cRLNumber)."""

    __tablename__ = "ca_crls"

    number: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    this_update: Mapped[dt.datetime]
    next_update: Mapped[dt.datetime]
    pem: Mapped[str] = mapped_column(sa.Text)
