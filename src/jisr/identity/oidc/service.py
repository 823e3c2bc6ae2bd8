"""Services of the OpenID Connect provider: clients, consents, login sessions and claims.

Design
------
* **Clients** are registered by an operator (CLI) or through the GovStack client API. A
  client authenticates at the token endpoint with ``client_secret_basic`` (a random 256-bit
  secret shown once; its SHA-256 is stored) or ``private_key_jwt`` (RFC 7523, its public JWKS
  registered with it; symmetric keys refused).
* **Claims** a client may receive are named by scopes (``profile``, ``national_id``) and by
  the OIDC ``claims`` request parameter, restricted to the client's registered claims, and
  released only when the person ticked them on the consent screen. A consent is remembered
  per client, person and scope set.
* **Subjects** are pairwise by default: ``sub`` = base64url(HMAC-SHA256(k, sector | national
  id)) with ``k`` derived from the keystore passphrase and the sector the host of the client's
  first redirect URI, so two relying parties cannot join their users on ``sub``. The national
  identifier is only ever released as the ``national_id`` claim, with consent.
* **Login sessions** are opaque random cookie values; the table stores their SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto.keystore import b64url_encode
from jisr.core.i18n import _
from jisr.core.settings import Settings
from jisr.identity import _secrets, auth
from jisr.identity.models import Person
from jisr.identity.oidc.errors import ClientExists, ClientNotFound, InvalidClientMetadata
from jisr.identity.oidc.models import OidcClient, OidcConsent, OidcLoginSession

AUTH_METHODS = ("client_secret_basic", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token")
SCOPES = ("openid", "profile", "national_id", "offline_access")
# Administrative clients act for themselves: the client_credentials grant alone, with
# administrative scopes only (``client_mgmt``: the GovStack client management API).
ADMIN_GRANT = "client_credentials"
ADMIN_SCOPES = ("client_mgmt",)
# An officer's client acts for one agency of the exchange: scope ``agency:<member id>``
# (``agency:MA/GOV/MOI``), read by the GovStack Registration API of jisr.services.
AGENCY_SCOPE = re.compile(r"agency:[A-Z]{2}/(GOV|COM|NGO)/[A-Za-z0-9'()+,\-.=?]{1,64}")


# A wallet asks for a verifiable document with the scope of its credential configuration
# (OpenID4VCI 1.0 §5.1.2): ``credential:<configuration id>``. The access token of such a
# request is a signed JWT (RFC 9068) for the instance's credential issuer (see server.py).
CREDENTIAL_SCOPE = re.compile(r"credential:[a-z0-9][a-z0-9-]{0,63}")


def is_credential_scope(scope: str) -> bool:
    return CREDENTIAL_SCOPE.fullmatch(scope) is not None


# An agency desk's client creates OpenID4VCI credential offers (POST /api/credentials/offers).
CREDENTIAL_OFFER_SCOPE = "credential_offer"


def is_admin_scope(scope: str) -> bool:
    """Whether ``scope`` may be granted to an administrative (client_credentials) client."""
    return (
        scope in ADMIN_SCOPES
        or scope == CREDENTIAL_OFFER_SCOPE
        or AGENCY_SCOPE.fullmatch(scope) is not None
    )


PROFILE_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "name#ar",
    "given_name#ar",
    "family_name#ar",
)
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": PROFILE_CLAIMS,
    "national_id": ("national_id",),
}
SUPPORTED_CLAIMS = (*PROFILE_CLAIMS, "national_id")
# Claims the GovStack client API may name although we hold no value for them: accepted, never
# released (the register has no middle name, nickname, picture…).
GOVSTACK_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "preferred_username",
    "nickname",
    "gender",
    "birthdate",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "picture",
    "address",
    "locale",
    "zoneinfo",
)
GOVSTACK_ACR = (
    "idbb:acr:static-code",
    "idbb:acr:generated-code",
    "idbb:acr:linked-wallet",
    "idbb:acr:biometrics",
    "idbb:acr:biometrics-generated-code",
    "idbb:acr:linked-wallet-static-code",
)
SESSION_TTL = dt.timedelta(hours=8)
SECRET_BYTES = 32


def digest(value: str) -> str:
    """SHA-256 hex of a random secret (codes, tokens, client secrets, cookies)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    name: str
    auth_method: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scopes: list[str]
    claims: list[str]
    status: str

    @classmethod
    def of(cls, client: OidcClient) -> ClientInfo:
        return cls(
            client_id=client.client_id,
            name=client.name,
            auth_method=client.auth_method,
            redirect_uris=list(client.redirect_uris),
            post_logout_redirect_uris=list(client.post_logout_redirect_uris),
            scopes=list(client.scopes),
            claims=list(client.claims),
            status=client.status,
        )


@dataclass(frozen=True)
class NewClient:
    """A registered client; ``secret`` is shown once and never stored in clear."""

    client: ClientInfo
    secret: str | None


def _invalid(field: str, error: str, message: str, **params: Any) -> InvalidClientMetadata:
    return InvalidClientMetadata(message, field=field, error=error, **params)


def _check_uris(uris: Sequence[str], *, field: str, error: str, required: bool) -> list[str]:
    if required and not uris:
        raise _invalid(field, error, _("At least one redirect URI is required."))
    checked = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
            raise _invalid(
                field,
                error,
                _("{uri} is not an absolute http(s) URI without a fragment."),
                uri=uri,
            )
        checked.append(uri)
    if len(set(checked)) != len(checked):
        raise _invalid(field, error, _("A URI is listed twice."))
    return checked


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        if isinstance(jwks, dict) and "kty" in jwks:
            jwks = {"keys": [jwks]}
        else:
            raise _invalid(
                "jwks", "invalid_public_key", _("private_key_jwt needs a JWKS with a public key.")
            )
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA", "OKP") or "d" in key:
            raise _invalid(
                "jwks",
                "invalid_public_key",
                _("Client keys must be public EC, RSA or OKP keys."),
            )
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError) as error:
        raise _invalid(
            "jwks", "invalid_public_key", _("The JWKS is not valid: {reason}"), reason=str(error)
        ) from error
    return {"keys": [dict(key) for key in jwks["keys"]]}


def _check_subset(
    values: Iterable[str], allowed: Iterable[str], field: str, error: str
) -> list[str]:
    values = list(dict.fromkeys(values))
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise _invalid(field, error, _("Not supported: {values}."), values=", ".join(unknown))
    return values


def create_client(
    session: Session,
    *,
    name: str,
    redirect_uris: Sequence[str],
    auth_method: str = "client_secret_basic",
    jwks: dict[str, Any] | None = None,
    client_id: str | None = None,
    relying_party_id: str | None = None,
    logo_uri: str | None = None,
    post_logout_redirect_uris: Sequence[str] = (),
    scopes: Sequence[str] = SCOPES,
    claims: Sequence[str] = SUPPORTED_CLAIMS,
    acr_values: Sequence[str] = auth.ACR_VALUES,
    grant_types: Sequence[str] = GRANT_TYPES,
    subject_type: str = "pairwise",
) -> NewClient:
    """Register a relying party; see the module docstring. Refuses bad metadata with
    ``InvalidClientMetadata`` (its ``error`` is the GovStack error code) and a taken
    ``client_id`` with ``ClientExists``."""
    client_id = client_id if client_id is not None else secrets.token_urlsafe(16)
    if not client_id or len(client_id) > 50:
        raise _invalid("clientId", "invalid_client_id", _("A client id has 1 to 50 characters."))
    if session.scalars(sa.select(OidcClient.id).where(OidcClient.client_id == client_id)).first():
        raise ClientExists(_("The client id {client_id} is taken."), client_id=client_id)
    now = utcnow()
    client = OidcClient(client_id=client_id, created_at=now, secret_hash=None, jwks=None)
    _apply(
        client,
        name=name,
        redirect_uris=redirect_uris,
        auth_method=auth_method,
        jwks=jwks,
        relying_party_id=relying_party_id if relying_party_id is not None else client_id,
        logo_uri=logo_uri,
        post_logout_redirect_uris=post_logout_redirect_uris,
        scopes=scopes,
        claims=claims,
        acr_values=acr_values,
        grant_types=grant_types,
    )
    if subject_type not in ("pairwise", "public"):
        raise _invalid("subject_type", "invalid_request", _("subject_type is pairwise or public."))
    client.subject_type = subject_type
    secret = None
    if client.auth_method == "client_secret_basic":
        secret = secrets.token_urlsafe(SECRET_BYTES)
        client.secret_hash = digest(secret)
    session.add(client)
    session.flush()
    return NewClient(client=ClientInfo.of(client), secret=secret)


def _apply(
    client: OidcClient,
    *,
    name: str,
    redirect_uris: Sequence[str],
    auth_method: str,
    jwks: dict[str, Any] | None,
    relying_party_id: str,
    logo_uri: str | None,
    post_logout_redirect_uris: Sequence[str],
    scopes: Sequence[str],
    claims: Sequence[str],
    acr_values: Sequence[str],
    grant_types: Sequence[str],
) -> None:
    if not name or len(name) > 256:
        raise _invalid(
            "clientName", "invalid_client_name", _("A client name has 1 to 256 characters.")
        )
    if not relying_party_id or len(relying_party_id) > 50:
        raise _invalid(
            "relyingPartyId", "invalid_rp_id", _("A relying party id has 1 to 50 characters.")
        )
    if logo_uri is not None:
        _check_uris([logo_uri], field="logoUri", error="invalid_uri", required=True)
    if auth_method not in AUTH_METHODS:
        raise _invalid(
            "clientAuthMethods",
            "invalid_client_auth",
            _("Not supported: {values}."),
            values=auth_method,
        )
    client.name = name
    client.relying_party_id = relying_party_id
    client.logo_uri = logo_uri
    client.redirect_uris = _check_uris(
        redirect_uris,
        field="redirectUris",
        error="invalid_redirect_uri",
        required=ADMIN_GRANT not in grant_types,
    )
    client.post_logout_redirect_uris = _check_uris(
        post_logout_redirect_uris,
        field="post_logout_redirect_uris",
        error="invalid_uri",
        required=False,
    )
    client.auth_method = auth_method
    if auth_method == "private_key_jwt":
        if jwks is None and client.jwks is None:
            raise _invalid(
                "jwks", "invalid_public_key", _("private_key_jwt needs a JWKS with a public key.")
            )
        if jwks is not None:
            client.jwks = _check_jwks(jwks)
    client.claims = _check_subset(
        claims, (*SUPPORTED_CLAIMS, *GOVSTACK_CLAIMS), "userClaims", "invalid_claim"
    )
    client.acr_values = _check_subset(
        acr_values, (*auth.ACR_VALUES, *GOVSTACK_ACR), "authContextRefs", "invalid_acr"
    )
    client.grant_types = _check_subset(
        grant_types, (*GRANT_TYPES, ADMIN_GRANT), "grantTypes", "invalid_grant_type"
    )
    if ADMIN_GRANT in client.grant_types:
        if len(client.grant_types) > 1:
            raise _invalid(
                "grantTypes",
                "invalid_grant_type",
                _("client_credentials is for administrative clients and goes alone."),
            )
        client.scopes = _check_subset(
            scopes, [s for s in scopes if is_admin_scope(s)], "scopes", "invalid_request"
        )
    else:
        if "authorization_code" not in client.grant_types:
            raise _invalid("grantTypes", "invalid_grant_type", _("authorization_code is required."))
        client.scopes = _check_subset(
            scopes,
            [*SCOPES, *(s for s in scopes if is_credential_scope(s))],
            "scopes",
            "invalid_request",
        )
    client.updated_at = utcnow()


def update_client(
    session: Session,
    *,
    client_id: str,
    name: str,
    redirect_uris: Sequence[str],
    auth_method: str,
    status: str = "active",
    logo_uri: str | None = None,
    claims: Sequence[str] = SUPPORTED_CLAIMS,
    acr_values: Sequence[str] = auth.ACR_VALUES,
    grant_types: Sequence[str] = GRANT_TYPES,
    post_logout_redirect_uris: Sequence[str] | None = None,
    scopes: Sequence[str] | None = None,
) -> ClientInfo:
    """Update a client's metadata (not its keys: a compromised key means a new client)."""
    client = get_client(session, client_id)
    if client is None:
        raise ClientNotFound(_("No client {client_id}."), client_id=client_id)
    if status not in ("active", "inactive"):
        raise _invalid("status", "invalid_request", _("status is active or inactive."))
    try:
        _apply(
            client,
            name=name,
            redirect_uris=redirect_uris,
            auth_method=auth_method,
            jwks=None,
            relying_party_id=client.relying_party_id,
            logo_uri=logo_uri,
            post_logout_redirect_uris=(
                client.post_logout_redirect_uris
                if post_logout_redirect_uris is None
                else post_logout_redirect_uris
            ),
            scopes=client.scopes if scopes is None else scopes,
            claims=claims,
            acr_values=acr_values,
            grant_types=grant_types,
        )
    except InvalidClientMetadata:
        session.expire(client)  # nothing of a refused update stays in the session
        raise
    client.status = status
    session.flush()
    return ClientInfo.of(client)


def get_client(session: Session, client_id: str) -> OidcClient | None:
    return session.scalars(sa.select(OidcClient).where(OidcClient.client_id == client_id)).first()


def client_info(session: Session, *, client_id: str) -> ClientInfo:
    client = get_client(session, client_id)
    if client is None:
        raise ClientNotFound(_("No client {client_id}."), client_id=client_id)
    return ClientInfo.of(client)


# --- claims and consent ----------------------------------------------------------------------


def requested_claims(
    client: OidcClient, scope: str, claims_param: dict[str, Any] | None
) -> list[str]:
    """Claims the request asks for (by scope and ``claims``), that the client may receive and
    that we can supply, in a stable order."""
    wanted: list[str] = []
    for name in scope.split():
        wanted.extend(SCOPE_CLAIMS.get(name, ()))
    for member in ("userinfo", "id_token"):
        section = (claims_param or {}).get(member)
        if isinstance(section, dict):
            wanted.extend(str(name) for name in section)
    allowed = set(client.claims) & set(SUPPORTED_CLAIMS)
    return [name for name in dict.fromkeys(wanted) if name in allowed]


def scope_key(scope: str) -> str:
    return " ".join(sorted(set(scope.split())))


def find_consent(
    session: Session, *, client_pk: int, person_id: int, scope: str
) -> list[str] | None:
    """The claims a person released to a client for this scope set, if they consented."""
    consent = session.scalars(
        sa.select(OidcConsent).where(
            OidcConsent.client_pk == client_pk,
            OidcConsent.person_id == person_id,
            OidcConsent.scope == scope_key(scope),
        )
    ).first()
    return None if consent is None else list(consent.claims)


def grant_consent(
    session: Session, *, client_pk: int, person_id: int, scope: str, claims: Sequence[str]
) -> None:
    key = scope_key(scope)
    consent = session.scalars(
        sa.select(OidcConsent).where(
            OidcConsent.client_pk == client_pk,
            OidcConsent.person_id == person_id,
            OidcConsent.scope == key,
        )
    ).first()
    if consent is None:
        consent = OidcConsent(client_pk=client_pk, person_id=person_id, scope=key)
        session.add(consent)
    consent.claims = list(claims)
    consent.granted_at = utcnow()
    session.flush()


def subject(settings: Settings, client: OidcClient, national_id: str) -> str:
    """The ``sub`` this client sees: pairwise per sector (default) or the public one."""
    if client.subject_type == "public":
        sector = "public"
    else:
        sector = urlsplit(client.redirect_uris[0]).hostname or client.client_id
    mac = _secrets.keyed_hash(settings, _secrets.PAIRWISE_PURPOSE, f"{sector}|{national_id}")
    return b64url_encode(mac)


def person_claims(session: Session, *, person_id: int, claims: Sequence[str]) -> dict[str, Any]:
    """Values of ``claims`` for a person, from the register."""
    person = session.get(Person, person_id)
    if person is None:
        return {}
    values: dict[str, Any] = {
        "name": f"{person.given_name_latin} {person.family_name_latin}",
        "given_name": person.given_name_latin,
        "family_name": person.family_name_latin,
        "name#ar": f"{person.given_name_ar} {person.family_name_ar}",
        "given_name#ar": person.given_name_ar,
        "family_name#ar": person.family_name_ar,
        "birthdate": person.birth_date.isoformat(),
        "gender": {"M": "male", "F": "female"}.get(person.sex, "other"),
        "national_id": person.national_id,
    }
    return {name: values[name] for name in claims if name in values}


def national_id_of(session: Session, person_id: int | None) -> str:
    """The compact national identifier of a person; ``""`` for none (a client's own token)."""
    person = session.get(Person, person_id) if person_id is not None else None
    return person.national_id if person is not None else ""


# --- login sessions --------------------------------------------------------------------------


def open_login_session(session: Session) -> tuple[str, OidcLoginSession]:
    """A new anonymous browser session; returns the cookie value (shown once) and the row."""
    value = secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    row = OidcLoginSession(
        session_hash=digest(value), created_at=now, expires_at=now + SESSION_TTL, amr=[]
    )
    session.add(row)
    session.flush()
    return value, row


def find_login_session(session: Session, value: str | None) -> OidcLoginSession | None:
    if not value:
        return None
    row = session.scalars(
        sa.select(OidcLoginSession).where(OidcLoginSession.session_hash == digest(value))
    ).first()
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    return row


def sign_in(session: Session, row: OidcLoginSession, result: auth.Authentication) -> str:
    """Bind an authentication to the session and rotate its value (no session fixation)."""
    value = secrets.token_urlsafe(SECRET_BYTES)
    row.session_hash = digest(value)
    row.person_id = result.person_id
    row.acr = result.acr
    row.amr = list(result.amr)
    row.auth_time = result.auth_time
    row.expires_at = utcnow() + SESSION_TTL
    session.flush()
    return value


def end_login_session(session: Session, row: OidcLoginSession) -> None:
    row.ended_at = utcnow()
    session.flush()
