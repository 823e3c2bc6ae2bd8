"""The table of federation agreements (on the registry node of each instance)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin


class FederationAgreement(IdMixin, Base):
    """A doubly signed agreement with a peer instance, as installed here.

    ``document`` is the agreement itself (JWS JSON general serialization, both signatures),
    verified again whenever it is used; the other columns only index it. ``peer_trust_list``
    caches the peer's last trust list (a compact JWS, verified against the pinned trust-list
    keys on every use).
    """

    __tablename__ = "federation_agreements"

    agreement_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    local_instance: Mapped[str] = mapped_column(sa.String(16))
    peer_instance: Mapped[str] = mapped_column(sa.String(16), index=True)
    peer_key_thumbprint: Mapped[str] = mapped_column(sa.String(64))
    document: Mapped[str] = mapped_column(sa.Text)
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    installed_at: Mapped[dt.datetime]
    peer_trust_list: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    peer_trust_list_updated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
