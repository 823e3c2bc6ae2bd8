"""Authlib's authorization server, adapted to Starlette requests and our tables.

Design
------
Authlib ships the OAuth 2.0 / OpenID Connect protocol (grants, PKCE, client authentication,
RP-initiated logout) but integrates only with Flask and Django. This module is the thin
adapter for Starlette, in the shape of ``authlib.integrations.flask_oauth2``:

* ``read_request`` snapshots a Starlette request (method, URL, headers, query, form) in an
  async dependency, so the protocol then runs synchronously in FastAPI's thread pool with a
  normal SQLAlchemy session; ``Provider.create_oauth2_request`` turns the snapshot into an
  Authlib ``OAuth2Request`` (``payload.data`` = query + form, like Flask's ``request.values``);
* ``Provider`` (one per request, bound to the idp node's session) implements
  ``query_client``, ``save_token``, ``handle_response`` and ``send_signal``;
* grants: ``CodeGrant`` (authorization code; codes kept as SHA-256, 60 s, single use: a
  second exchange revokes every token issued from the code, RFC 6749 §4.1.2) with
  ``PkceS256`` (PKCE required, S256 only) and ``IdTokenExtension`` (OpenID Connect; the ID
  token is signed through the keystore's ``SigningKey`` with ``jws.sign_compact``, so a
  PKCS#11 key works: Authlib never sees a private key); ``RotatingRefreshGrant`` (each
  refresh token is used once; presenting a rotated one revokes its whole family);
* client authentication: ``client_secret_basic`` (Authlib's) and ``private_key_jwt``
  (``PrivateKeyJwt``, RFC 7523 with ``jti`` replay refused);
* ``EndSession``: OpenID Connect RP-initiated logout.

Security decisions go to the idp node's ``security`` audit chain.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import sqlalchemy as sa
from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import JsonRequest, OAuth2Request, ResourceProtector
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from jisr.core.clock import utcnow
from jisr.core.crypto import jws, keystore
from jisr.core.instance import Node
from jisr.identity.oidc import service
from jisr.identity.oidc._authlib import (
    ACCESS_TOKEN_TTL,
    CODE_TTL,
    PATHS,
    REFRESH_TOKEN_TTL,
    SESSION_COOKIE,
    AccessTokenValidator,
    AdminClientGrant,
    CodeGrant,
    CodeRecord,
    EndSession,
    EndUser,
    HttpInput,
    IdTokenExtension,
    PkceS256,
    PrivateKeyJwt,
    RegisteredClient,
    RotatingRefreshGrant,
    StarletteOAuth2Request,
    TokenRecord,
    _JsonPayload,
    read_request,
)
from jisr.identity.oidc.models import (
    OidcAssertion,
    OidcAuthorizationCode,
    OidcLoginSession,
    OidcToken,
)

__all__ = [
    "PATHS",
    "SESSION_COOKIE",
    "EndUser",
    "HttpInput",
    "Provider",
    "end_user",
    "read_request",
]


# --- the provider ----------------------------------------------------------------------------


class Provider(AuthorizationServer):  # type: ignore[misc]
    """The authorization server of one request, bound to the idp node's session."""

    def __init__(self, session: Session, node: Node) -> None:
        super().__init__(scopes_supported=[*service.SCOPES, *service.ADMIN_SCOPES])
        self.session = session
        self.node = node
        self.settings = node.settings
        self.issuer = self.settings.public_url.rstrip("/")
        self._clients: dict[str, RegisteredClient | None] = {}
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=self._access_token,
                refresh_token_generator=lambda **_kw: secrets.token_urlsafe(32),
                expires_generator=ACCESS_TOKEN_TTL,
            ),
        )
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(self))
        self.register_grant(CodeGrant, [PkceS256(required=True), IdTokenExtension(self)])
        self.register_grant(RotatingRefreshGrant)
        self.register_grant(AdminClientGrant)
        self.register_endpoint(EndSession(self))

    def url(self, name: str) -> str:
        return self.issuer + PATHS[name]

    def record(self, event: str, data: dict[str, Any], *, subject: str | None = None) -> None:
        self.node.record(self.session, event, data, subject=subject)

    # Framework hooks (as in authlib.integrations.flask_oauth2).

    def validate_requested_scope(self, scope: str | None) -> None:
        """Known scopes, and the agency scopes of administrative clients
        (``service.is_admin_scope``); a client still gets only the scopes it holds."""
        wanted = (scope or "").split()
        if any(
            s not in self.scopes_supported
            and not service.is_admin_scope(s)
            and not service.is_credential_scope(s)
            for s in wanted
        ):
            raise InvalidScopeError()

    def _access_token(
        self, *, client: RegisteredClient, grant_type: str, user: EndUser | None, scope: str
    ) -> str:
        """A random access token, or for a credential scope (``service.is_credential_scope``)
        a JWT access token (RFC 9068, ``typ: at+jwt``) that this instance's credential
        issuer verifies with the idp's JWKS: ``aud`` is the issuer (the instance's public
        URL), with the person's ``national_id`` for whom the document is issued."""
        wanted = (scope or "").split()
        if user is None or not any(service.is_credential_scope(s) for s in wanted):
            return secrets.token_urlsafe(32)
        now = int(utcnow().timestamp())
        claims = {
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": self.subject(client, user),
            "client_id": client.client_id,
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(wanted),
            "auth_time": int(user.auth_time.timestamp()),
            "acr": user.acr,
            "national_id": user.national_id,
        }
        key = keystore.active_key(self.session, self.node.keys)
        return jws.sign_compact(claims, key, typ="at+jwt")

    def create_oauth2_request(self, request: HttpInput | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: HttpInput) -> JsonRequest:
        json_request = JsonRequest(request.method, request.url, request.headers)
        body = dict(request.form)
        json_request.payload = _JsonPayload(body)
        return json_request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=headers)
        return Response(body or b"", status_code=status, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals (``after_authenticate_client``…): decisions are audited where
        they are taken instead."""

    def query_client(self, client_id: str) -> RegisteredClient | None:
        if client_id not in self._clients:
            row = service.get_client(self.session, client_id) if client_id else None
            usable = row is not None and row.status == "active"
            self._clients[client_id] = RegisteredClient(row) if usable and row else None
        return self._clients[client_id]

    # Codes.

    def save_code(self, code: str, request: OAuth2Request) -> None:
        user: EndUser = request.user
        client: RegisteredClient = request.client
        data = request.payload.data
        now = utcnow()
        self.session.add(
            OidcAuthorizationCode(
                code_hash=service.digest(code),
                client_pk=client.row.id,
                person_id=user.person_id,
                session_id=user.session_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                claims=list(user.claims),
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data.get("code_challenge_method", "S256"),
                acr=user.acr,
                amr=list(user.amr),
                auth_time=user.auth_time,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
        self.session.flush()
        self.record(
            "identity.code.issued",
            {"client_id": client.client_id, "scope": request.scope or ""},
            subject=user.national_id,
        )

    def find_code(self, code: str, client: RegisteredClient) -> CodeRecord | None:
        row = self.session.scalars(
            sa.select(OidcAuthorizationCode)
            .where(
                OidcAuthorizationCode.code_hash == service.digest(code),
                OidcAuthorizationCode.client_pk == client.row.id,
            )
            .with_for_update()
        ).first()
        if row is None:
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
            revoked = self._revoke(OidcToken.code_id == row.id)
            self.record(
                "identity.code.replayed",
                {"client_id": client.client_id, "tokens_revoked": revoked},
                subject=service.national_id_of(self.session, row.person_id),
            )
            return None
        if row.expires_at <= utcnow():
            return None
        return CodeRecord(row)

    def nonce_used(self, nonce: str, client_id: str) -> bool:
        client = self.query_client(client_id)
        if client is None:
            return False
        found = self.session.scalars(
            sa.select(OidcAuthorizationCode.id).where(
                OidcAuthorizationCode.client_pk == client.row.id,
                OidcAuthorizationCode.nonce == nonce,
            )
        ).first()
        return found is not None

    # Tokens.

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        user: EndUser | None = request.user
        client: RegisteredClient = request.client
        if user is None:  # client_credentials: the client acts for itself
            self._save_client_token(token, client)
            return
        code: CodeRecord | None = request.authorization_code
        previous: TokenRecord | None = request.refresh_token
        now = utcnow()
        refresh = token.get("refresh_token")
        code_id = code.row.id if code is not None else previous.row.code_id if previous else None
        self.session.add(
            OidcToken(
                access_token_hash=service.digest(token["access_token"]),
                refresh_token_hash=service.digest(refresh) if refresh else None,
                client_pk=client.row.id,
                person_id=user.person_id,
                code_id=code_id,
                session_id=user.session_id,
                scope=token.get("scope", ""),
                claims=list(user.claims),
                acr=user.acr,
                amr=list(user.amr),
                auth_time=user.auth_time,
                issued_at=now,
                expires_at=now + dt.timedelta(seconds=int(token["expires_in"])),
                refresh_expires_at=now + REFRESH_TOKEN_TTL if refresh else None,
            )
        )
        self.session.flush()
        self.record(
            "identity.token.issued",
            {
                "client_id": client.client_id,
                "grant_type": request.payload.grant_type,
                "scope": token.get("scope", ""),
            },
            subject=user.national_id,
        )

    def _save_client_token(self, token: dict[str, Any], client: RegisteredClient) -> None:
        now = utcnow()
        self.session.add(
            OidcToken(
                access_token_hash=service.digest(token["access_token"]),
                client_pk=client.row.id,
                person_id=None,
                scope=token.get("scope", ""),
                claims=[],
                acr="",
                amr=[],
                auth_time=now,
                issued_at=now,
                expires_at=now + dt.timedelta(seconds=int(token["expires_in"])),
            )
        )
        self.session.flush()
        self.record(
            "identity.token.issued",
            {
                "client_id": client.client_id,
                "grant_type": "client_credentials",
                "scope": token.get("scope", ""),
            },
        )

    def _token_record(self, row: OidcToken | None) -> TokenRecord | None:
        if row is None:
            return None
        return TokenRecord(row, service.national_id_of(self.session, row.person_id))

    def find_access_token(self, value: str) -> TokenRecord | None:
        row = self.session.scalars(
            sa.select(OidcToken).where(OidcToken.access_token_hash == service.digest(value))
        ).first()
        return self._token_record(row)

    def find_refresh_token(self, value: str) -> TokenRecord | None:
        row = self.session.scalars(
            sa.select(OidcToken)
            .where(OidcToken.refresh_token_hash == service.digest(value))
            .with_for_update()
        ).first()
        if row is None:
            return None
        if row.revoked_at is not None:
            # A rotated refresh token came back: someone holds a copy. Revoke the family.
            family = OidcToken.code_id == row.code_id if row.code_id else OidcToken.id == row.id
            revoked = self._revoke(family)
            self.record(
                "identity.refresh_token.replayed",
                {"client_id": row.client.client_id, "tokens_revoked": revoked},
                subject=service.national_id_of(self.session, row.person_id),
            )
            return None
        if row.refresh_expires_at is None or row.refresh_expires_at <= utcnow():
            return None
        return self._token_record(row)

    def _revoke(self, condition: Any) -> int:
        rows = list(
            self.session.scalars(
                sa.select(OidcToken).where(condition, OidcToken.revoked_at.is_(None))
            )
        )
        now = utcnow()
        for row in rows:
            row.revoked_at = now
        self.session.flush()
        return len(rows)

    def remember_assertion(self, client_id: str, jti: str, exp: Any) -> bool:
        client = self.query_client(client_id)
        if client is None:
            return False
        jti_hash = service.digest(jti)
        seen = self.session.scalars(
            sa.select(OidcAssertion.id).where(
                OidcAssertion.client_pk == client.row.id, OidcAssertion.jti_hash == jti_hash
            )
        ).first()
        if seen is not None:
            return False
        now = utcnow()
        expires = (
            dt.datetime.fromtimestamp(exp, dt.UTC)
            if isinstance(exp, int | float)
            else now + dt.timedelta(hours=1)
        )
        self.session.execute(sa.delete(OidcAssertion).where(OidcAssertion.expires_at < now))
        self.session.add(
            OidcAssertion(client_pk=client.row.id, jti_hash=jti_hash, expires_at=expires)
        )
        self.session.flush()
        return True

    def subject(self, client: RegisteredClient, user: EndUser) -> str:
        return service.subject(self.settings, client.row, user.national_id)

    # Endpoints.

    def token_response(self, http: HttpInput) -> Response:
        """The token endpoint; refusals are audited with their OAuth error."""
        response: Response = self.create_token_response(http)
        if response.status_code != 200:
            body = bytes(response.body)
            try:
                error = json.loads(body).get("error", "")
            except ValueError:
                error = ""
            form = dict(http.form)
            self.record(
                "identity.token.refused",
                {
                    "client_id": form.get("client_id", ""),
                    "grant_type": form.get("grant_type", ""),
                    "error": error,
                },
            )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    def bearer_token(self, http: HttpInput, scope: str) -> TokenRecord:
        """The access token of a request to a protected resource (RFC 6750), which must be
        known, unexpired, not revoked and carry ``scope``; else ``OAuth2Error``."""
        protector = ResourceProtector()
        protector.register_token_validator(AccessTokenValidator(self))
        token: TokenRecord = protector.validate_request([scope], self.create_oauth2_request(http))
        return token

    def userinfo_response(self, http: HttpInput) -> Response:
        try:
            token = self.bearer_token(http, "openid")
        except OAuth2Error as error:
            response: Response = self.handle_response(*error())
            return response
        user = token.get_user()
        claims = service.person_claims(
            self.session, person_id=user.person_id, claims=list(token.row.claims)
        )
        claims["sub"] = self.subject(token.get_client(), user)
        return JSONResponse(claims, headers={"Cache-Control": "no-store"})

    def log_out(self, request: Any) -> None:
        """End the browser's login session and revoke the tokens issued in it."""
        http: HttpInput = request.request.http
        row = service.find_login_session(self.session, http.cookies.get(SESSION_COOKIE))
        if row is None:
            return
        revoked = self._revoke(OidcToken.session_id == row.id)
        service.end_login_session(self.session, row)
        subject = service.national_id_of(self.session, row.person_id) if row.person_id else None
        self.record("identity.logout", {"tokens_revoked": revoked}, subject=subject)


def end_user(session: Session, row: OidcLoginSession, claims: tuple[str, ...] = ()) -> EndUser:
    """The person signed in on a login session (which must be signed in)."""
    assert row.person_id is not None and row.acr is not None and row.auth_time is not None
    return EndUser(
        person_id=row.person_id,
        national_id=service.national_id_of(session, row.person_id),
        acr=row.acr,
        amr=tuple(row.amr),
        auth_time=row.auth_time,
        claims=claims,
        session_id=row.id,
    )
