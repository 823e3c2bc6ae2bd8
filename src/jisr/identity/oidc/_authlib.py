"""Adapters between Authlib's server components and Jisr: the Starlette request snapshot,
our rows as Authlib's client/code/token mixins, the grants and extensions. The provider that
assembles them is ``jisr.identity.oidc.server``; its docstring explains the design."""

from __future__ import annotations

import datetime as dt
import hmac
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from authlib.common.encoding import to_unicode
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    JsonPayload,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.util import create_half_hash
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc.jwk import KeySet
from starlette.requests import Request

from jisr.core.clock import utcnow
from jisr.core.crypto import jws, keystore
from jisr.identity.oidc import service
from jisr.identity.oidc.models import OidcAuthorizationCode, OidcClient, OidcToken

if TYPE_CHECKING:
    from jisr.identity.oidc.server import Provider

CODE_TTL = dt.timedelta(seconds=60)
ACCESS_TOKEN_TTL = 600
ID_TOKEN_TTL = 600
REFRESH_TOKEN_TTL = dt.timedelta(days=30)
TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]
ID_TOKEN_ALGORITHMS = ["ES256", "EdDSA"]
SESSION_COOKIE = "jisr_idp_session"
PATHS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/oauth/token",
    "userinfo_endpoint": "/oidc/userinfo",
    "jwks_uri": "/.well-known/jwks.json",
    "end_session_endpoint": "/oidc/logout",
    "registration_endpoint": "/client-mgmt/oidc-client",
}


# --- the request snapshot --------------------------------------------------------------------


@dataclass(frozen=True)
class HttpInput:
    """What the protocol needs of one HTTP request, read once (bodies are async in ASGI)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]]
    form: list[tuple[str, str]] = field(default_factory=list)
    cookies: dict[str, str] = field(default_factory=dict)


async def read_request(request: Request) -> HttpInput:
    """A FastAPI dependency: the request's snapshot, form body included when there is one."""
    form: list[tuple[str, str]] = []
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
        # OAuth bodies are urlencoded (RFC 6749 App. B): parsed here, no multipart parser.
        body = (await request.body()).decode("utf-8", errors="replace")
        form = parse_qsl(body, keep_blank_values=True)
    return HttpInput(
        method=request.method,
        url=str(request.url),
        headers=request.headers,  # case-insensitive, as Authlib expects
        query=list(request.query_params.multi_items()),
        form=form,
        cookies=dict(request.cookies),
    )


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    @property
    def data(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for key, value in self._pairs:
            values.setdefault(key, value)
        return values

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._pairs:
            values[key].append(value)
        return values


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpInput) -> None:
        super().__init__(method=http.method, uri=http.url, headers=http.headers)
        self.http = http
        self.payload = _Payload(http.query + http.form)

    @property
    def args(self) -> dict[str, str]:
        return dict(self.http.query)

    @property
    def form(self) -> dict[str, str]:
        return dict(self.http.form)


class _JsonPayload(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: Any) -> None:
        self._data = data

    @property
    def data(self) -> Any:
        return self._data


# --- adapters from our rows to Authlib's mixins ----------------------------------------------


@dataclass(frozen=True)
class EndUser:
    """The authenticated person a grant is for, with what they consented to."""

    person_id: int
    national_id: str
    acr: str
    amr: tuple[str, ...]
    auth_time: dt.datetime
    claims: tuple[str, ...] = ()
    session_id: int | None = None


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: OidcClient) -> None:
        self.row = row
        self.client_id = row.client_id
        self.id_token_signed_response_alg = None

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.row.post_logout_redirect_uris)}

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # OpenID Connect: redirect_uri is always required

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.row.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        return stored is not None and hmac.compare_digest(service.digest(client_secret), stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == self.row.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


def _timestamp(value: dt.datetime) -> int:
    return int(value.timestamp())


class CodeRecord(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, row: OidcAuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return _timestamp(self.row.auth_time)

    def get_acr(self) -> str:
        return self.row.acr

    def get_amr(self) -> list[str]:
        return list(self.row.amr)


class TokenRecord(TokenMixin):  # type: ignore[misc]
    def __init__(self, row: OidcToken, national_id: str) -> None:
        self.row = row
        self.scope = row.scope
        self.national_id = national_id

    def check_client(self, client: RegisteredClient) -> bool:
        return self.row.client_pk == client.row.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None

    def get_user(self) -> EndUser:
        person_id = self.row.person_id
        assert person_id is not None, "a client's own token (client_credentials) has no user"
        return EndUser(
            person_id=person_id,
            national_id=self.national_id,
            acr=self.row.acr,
            amr=tuple(self.row.amr),
            auth_time=self.row.auth_time,
            claims=tuple(self.row.claims),
            session_id=self.row.session_id,
        )

    def get_client(self) -> RegisteredClient:
        return RegisteredClient(self.row.client)


# --- grants and extensions -------------------------------------------------------------------


class PkceS256(CodeChallenge):  # type: ignore[misc]
    """PKCE is required of every client, with ``S256`` only (``plain`` and none refused)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.save_code(code, request)

    def query_authorization_code(self, code: str, client: RegisteredClient) -> CodeRecord | None:
        result: CodeRecord | None = self.server.find_code(code, client)
        return result

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        authorization_code.row.used_at = utcnow()

    def authenticate_user(self, authorization_code: CodeRecord) -> EndUser:
        row = authorization_code.row
        return EndUser(
            person_id=row.person_id,
            national_id=service.national_id_of(self.server.session, row.person_id),
            acr=row.acr,
            amr=tuple(row.amr),
            auth_time=row.auth_time,
            claims=tuple(row.claims),
            session_id=row.session_id,
        )


class RotatingRefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        result: TokenRecord | None = self.server.find_refresh_token(refresh_token)
        return result

    def authenticate_user(self, refresh_token: TokenRecord) -> EndUser:
        return refresh_token.get_user()

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        refresh_token.row.revoked_at = utcnow()


class AdminClientGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """``client_credentials`` for administrative clients (no person, no refresh token)."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS


class IdTokenExtension(OpenIDCode):  # type: ignore[misc]
    """OpenID Connect for the code grant; the ID token is signed by the idp's keystore."""

    DEFAULT_EXPIRES_IN = ID_TOKEN_TTL

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider.nonce_used(nonce, request.payload.client_id)

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": client.client_id}

    def generate_user_info(self, user: EndUser, scope: str) -> dict[str, Any]:
        return {}

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        key = keystore.active_key(self.provider.session, self.provider.node.keys)
        claims = self.get_compatible_claims(request)
        claims.update(self.get_authorization_code_claims(request.authorization_code))
        at_hash = create_half_hash(token["access_token"], key.algorithm)
        if at_hash is not None:
            claims["at_hash"] = to_unicode(at_hash)
        claims["sub"] = self.provider.subject(request.client, request.user)
        return jws.sign_compact(claims, key, typ="JWT")


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` (RFC 7523 §2.2): an assertion signed with a registered key."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, provider: Provider) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.provider = provider

    def get_audiences(self) -> list[str]:
        return [self.provider.url("token_endpoint"), self.provider.issuer]

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        jwks: Any = client.row.jwks or {"keys": []}
        return KeySet.import_key_set(jwks)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        return self.provider.remember_assertion(str(claims["sub"]), str(jti), claims.get("exp"))


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)
        self.provider = provider

    def get_server_jwks(self) -> dict[str, Any]:
        return keystore.public_jwks(self.provider.session, purpose="signing")

    def get_algorithms(self) -> list[str]:
        return ID_TOKEN_ALGORITHMS

    def end_session(self, end_session_request: Any) -> None:
        self.provider.log_out(end_session_request)


class AccessTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string: str) -> TokenRecord | None:
        return self.provider.find_access_token(token_string)
