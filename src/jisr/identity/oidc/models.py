"""Tables of the OpenID Connect provider (node ``idp``).

Secrets are never stored: authorization codes, access and refresh tokens, client secrets,
login-session cookies and client-assertion ``jti`` values are kept as SHA-256 hex digests of
high-entropy random values (a slow hash adds nothing for 256-bit random strings).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jisr.core.db import Base, IdMixin

_PERSON_FK = "identity_persons.id"
_CLIENT_FK = "identity_oidc_clients.id"


class OidcClient(IdMixin, Base):
    """A relying party: where it may redirect, how it authenticates, what it may ask for."""

    __tablename__ = "identity_oidc_clients"

    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    relying_party_id: Mapped[str] = mapped_column(sa.String(64))
    logo_uri: Mapped[str | None] = mapped_column(sa.String(1024), nullable=True)
    redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    auth_method: Mapped[str] = mapped_column(sa.String(32))
    secret_hash: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    claims: Mapped[list[str]] = mapped_column(sa.JSON)
    acr_values: Mapped[list[str]] = mapped_column(sa.JSON)
    grant_types: Mapped[list[str]] = mapped_column(sa.JSON)
    subject_type: Mapped[str] = mapped_column(sa.String(16), default="pairwise")
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class OidcLoginSession(IdMixin, Base):
    """A browser's session at the provider; the cookie holds the value, this row its hash."""

    __tablename__ = "identity_oidc_sessions"

    session_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey(_PERSON_FK, ondelete="CASCADE"), nullable=True, index=True
    )
    acr: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    amr: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    auth_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class OidcAuthorizationCode(IdMixin, Base):
    """An issued code; ``used_at`` is set on exchange (a second exchange revokes its tokens)."""

    __tablename__ = "identity_oidc_codes"

    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey(_CLIENT_FK, ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(sa.ForeignKey(_PERSON_FK, ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("identity_oidc_sessions.id", ondelete="SET NULL"), nullable=True
    )
    redirect_uri: Mapped[str] = mapped_column(sa.String(1024))
    scope: Mapped[str] = mapped_column(sa.String(512))
    claims: Mapped[list[str]] = mapped_column(sa.JSON)
    nonce: Mapped[str | None] = mapped_column(sa.String(256), nullable=True, index=True)
    code_challenge: Mapped[str] = mapped_column(sa.String(128))
    code_challenge_method: Mapped[str] = mapped_column(sa.String(8))
    acr: Mapped[str] = mapped_column(sa.String(64))
    amr: Mapped[list[str]] = mapped_column(sa.JSON)
    auth_time: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    client: Mapped[OidcClient] = relationship()


class OidcToken(IdMixin, Base):
    """An access token and its refresh token; rotating a refresh token revokes this row.

    A token issued to a client for itself (``client_credentials``, the administrative
    clients) has no person: ``person_id`` is null, ``acr`` empty."""

    __tablename__ = "identity_oidc_tokens"

    access_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(
        sa.String(64), unique=True, nullable=True
    )
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey(_CLIENT_FK, ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey(_PERSON_FK, ondelete="CASCADE"), nullable=True
    )
    code_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("identity_oidc_codes.id", ondelete="SET NULL"), nullable=True, index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("identity_oidc_sessions.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    )
    scope: Mapped[str] = mapped_column(sa.String(512))
    claims: Mapped[list[str]] = mapped_column(sa.JSON)
    acr: Mapped[str] = mapped_column(sa.String(64))
    amr: Mapped[list[str]] = mapped_column(sa.JSON)
    auth_time: Mapped[dt.datetime]
    issued_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    refresh_expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    client: Mapped[OidcClient] = relationship()


class OidcConsent(IdMixin, Base):
    """What a person agreed to release to a client for one set of scopes."""

    __tablename__ = "identity_oidc_consents"
    __table_args__ = (sa.UniqueConstraint("client_pk", "person_id", "scope"),)

    client_pk: Mapped[int] = mapped_column(sa.ForeignKey(_CLIENT_FK, ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(sa.ForeignKey(_PERSON_FK, ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(sa.String(512))
    claims: Mapped[list[str]] = mapped_column(sa.JSON)
    granted_at: Mapped[dt.datetime]


class OidcAssertion(IdMixin, Base):
    """A used ``private_key_jwt`` assertion id, kept until it expires (replay refused)."""

    __tablename__ = "identity_oidc_assertions"
    __table_args__ = (sa.UniqueConstraint("client_pk", "jti_hash"),)

    client_pk: Mapped[int] = mapped_column(sa.ForeignKey(_CLIENT_FK, ondelete="CASCADE"))
    jti_hash: Mapped[str] = mapped_column(sa.String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
