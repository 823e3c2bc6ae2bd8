"""Tables of the credentials block (node ``portal``, which issues documents).

``IssuedCredential`` keeps what revocation and the audit need, not the document: its public
id, type, issuing agency, the subject's national identifier, its status list entry, and its
dates. The personal data stays in the population register and in the holder's copy.
``StatusList`` holds each agency's Token Status List, uncompressed (1 bit per entry).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jisr.core.db import Base, IdMixin


class StatusList(IdMixin, Base):
    """One Token Status List of an issuing agency, published at ``/credentials/status/<name>``."""

    __tablename__ = "credentials_status_lists"

    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    agency: Mapped[str] = mapped_column(sa.String(32), index=True)
    bits: Mapped[int] = mapped_column(default=1)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    used: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class IssuedCredential(IdMixin, Base):
    """A credential this node issued: enough to revoke it and to account for it."""

    __tablename__ = "credentials_issued"
    __table_args__ = (sa.UniqueConstraint("status_list_id", "status_index"),)

    credential_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    doc_type: Mapped[str] = mapped_column(sa.String(64))
    agency: Mapped[str] = mapped_column(sa.String(32))
    format: Mapped[str] = mapped_column(sa.String(16))
    subject_national_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    issuer_kid: Mapped[str] = mapped_column(sa.String(64))
    holder_key_thumbprint: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    status_list_id: Mapped[int] = mapped_column(
        sa.ForeignKey("credentials_status_lists.id", ondelete="RESTRICT")
    )
    status_index: Mapped[int]
    issued_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)


class CredentialOffer(IdMixin, Base):
    """An OpenID4VCI Credential Offer with its Pre-Authorized Code (stored as SHA-256), the
    optional Transaction Code (SHA-256, with a count of wrong guesses) and, once exchanged,
    the access token it gave (SHA-256). One offer gives one credential."""

    __tablename__ = "credentials_offers"

    offer_id: Mapped[str] = mapped_column(sa.String(43), unique=True)
    configuration_id: Mapped[str] = mapped_column(sa.String(64))
    subject_national_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    tx_code_hash: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    tx_code_failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True, nullable=True)
    token_expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    credential_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)


class IssuanceNonce(IdMixin, Base):
    """A ``c_nonce`` from the Nonce Endpoint (SHA-256), accepted in one key proof only."""

    __tablename__ = "credentials_nonces"

    nonce_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class PresentationTransaction(IdMixin, Base):
    """An OpenID4VP request of this node's verifier and, once the wallet answered, its
    outcome. ``transaction_id`` (secret, for the verifier's frontend) and ``request_id``
    (the ``state`` the wallet echoes) are stored as SHA-256."""

    __tablename__ = "credentials_vp_transactions"

    transaction_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    nonce: Mapped[str] = mapped_column(sa.String(64))
    client_id: Mapped[str] = mapped_column(sa.String(300))
    dcql_query: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    valid: Mapped[bool | None] = mapped_column(nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class PeerStatusList(IdMixin, Base):
    """A federated peer's Status List Token, kept so that verifying the peer's credentials
    makes no call to the peer. Stored only after its signature verified with the issuer keys
    of the peer's pinned trust list; refreshed with that trust list. ``stale_at`` is
    ``fetched_at`` plus the token's ``ttl`` (capped by this instance's
    ``credentials_status_ttl_seconds``): past it, or past ``expires_at`` (the token's ``exp``),
    verification reports ``status-list-expired``."""

    __tablename__ = "credentials_peer_status_lists"

    uri: Mapped[str] = mapped_column(sa.String(500), unique=True)
    peer: Mapped[str] = mapped_column(sa.String(8), index=True)
    issuer: Mapped[str] = mapped_column(sa.String(500))
    token: Mapped[str] = mapped_column(sa.Text)
    fetched_at: Mapped[dt.datetime]
    stale_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
