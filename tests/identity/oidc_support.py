"""Helpers shared by the authentication and OpenID Connect tests (not a conftest, so that it
does not collide with the register's fixtures)."""

from __future__ import annotations

import datetime as dt
import html as _html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from authlib.integrations.httpx_client import OAuth2Client
from cryptography.hazmat.primitives.asymmetric import ec as _ec
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.instance import Instance
from jisr.demo import servers
from jisr.identity import auth
from jisr.identity.models import Person
from jisr.identity.oidc import service

PASSWORD = "correct horse battery"


def make_person(session: Session, national_id: str, **overrides: Any) -> Person:
    """A person row (the register's service replaces this once it exists)."""
    existing = session.scalars(sa.select(Person).where(Person.national_id == national_id)).first()
    if existing is not None:
        return existing
    now = utcnow()
    values: dict[str, Any] = {
        "national_id": national_id,
        "country": national_id[:2],
        "given_name_ar": "أمينة",
        "family_name_ar": "العلوي",
        "given_name_latin": "Amina",
        "family_name_latin": "El Alaoui",
        "name_key_ar": "امينه العلوي",
        "name_key_latin": "amina el alaoui",
        "birth_date": dt.date(1990, 5, 17),
        "birth_place": "Rabat",
        "sex": "F",
        "nationality": national_id[:2],
        "address": "",
        "status": "alive",
        "created_at": now,
        "updated_at": now,
        **overrides,
    }
    person = Person(**values)
    session.add(person)
    session.flush()
    return person


# --- a relying party over real HTTP ----------------------------------------------------------


REDIRECT_URI = "http://rp.example/callback"
_INPUT = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


def hidden_fields(page: str) -> dict[str, str]:
    return {name: _html.unescape(value) for name, value in _INPUT.findall(page)}


@dataclass
class Idp:
    """A served instance and what the tests registered in it."""

    instance: Instance
    running: servers.RunningServer
    secrets: dict[str, str] = field(default_factory=dict)
    opened: list[OAuth2Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.running.url

    def endpoint(self, path: str) -> str:
        return self.url + path

    def close_clients(self) -> None:
        for client in self.opened:
            client.close()
        self.opened.clear()

    def client(self, client_id: str, **kwargs: object) -> OAuth2Client:
        client = OAuth2Client(
            client_id=client_id,
            client_secret=self.secrets.get(client_id),
            scope=kwargs.pop("scope", "openid profile"),
            redirect_uri=kwargs.pop("redirect_uri", REDIRECT_URI),
            code_challenge_method="S256",
            token_endpoint_auth_method=kwargs.pop(
                "token_endpoint_auth_method", "client_secret_basic"
            ),
            timeout=10,
            **kwargs,
        )
        self.opened.append(client)
        return client

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(httpx.get(self.endpoint("/.well-known/jwks.json")).json())


def start_idp(instance: Instance) -> Iterator[Idp]:
    running = servers.start(instance)
    instance.settings.public_url = running.url
    idp = Idp(instance=instance, running=running)
    try:
        yield idp
    finally:
        idp.close_clients()
        running.stop()


def register_client(idp: Idp, client_id: str, **kwargs: object) -> None:
    node = idp.instance.node("idp")
    with node.session() as session:
        made = service.create_client(
            session,
            client_id=client_id,
            name=kwargs.pop("name", f"Service {client_id}"),  # type: ignore[arg-type]
            redirect_uris=kwargs.pop("redirect_uris", [REDIRECT_URI]),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
    if made.secret:
        idp.secrets[client_id] = made.secret


def register_person(
    idp: Idp, national_id: str, *, totp_secret: str | None = None, **overrides: Any
) -> None:
    node = idp.instance.node("idp")
    with node.session() as session:
        person = make_person(session, national_id, **overrides)
        auth.set_credentials(
            session,
            settings=idp.instance.settings,
            person_id=person.id,
            password=PASSWORD,
            totp_secret=totp_secret,
        )


@dataclass
class Authorization:
    """One run of the authorization endpoint: what the RP sent and what came back."""

    url: str
    state: str
    nonce: str
    verifier: str
    pages: list[httpx.Response] = field(default_factory=list)

    @property
    def last(self) -> httpx.Response:
        return self.pages[-1]

    @property
    def redirect(self) -> str:
        assert self.last.status_code == 302, self.last.text[:500]
        return self.last.headers["location"]


def begin(idp: Idp, rp: OAuth2Client, **params: str) -> Authorization:
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        idp.endpoint("/authorize"), code_verifier=verifier, nonce=nonce, **params
    )
    return Authorization(url=url, state=state, nonce=nonce, verifier=verifier)


def sign_in(
    browser: httpx.Client,
    flow: Authorization,
    national_id: str,
    *,
    password: str = PASSWORD,
    code: str | None = None,
    decision: str | None = "allow",
    untick: tuple[str, ...] = (),
) -> Authorization:
    """Drive the login and consent pages like a browser, redirects followed by hand."""
    page = browser.get(flow.url)
    flow.pages.append(page)
    if page.status_code == 200 and 'action="/authorize/login"' in page.text:
        form = hidden_fields(page.text)
        form.update({"national_id": national_id, "password": password, "code": code or ""})
        page = browser.post("/authorize/login", data=form)
        flow.pages.append(page)
    if page.status_code != 200 or 'action="/authorize/consent"' not in page.text or not decision:
        return flow
    fields = hidden_fields(page.text)
    claims = [c for c in re.findall(r'name="claim" value="([^"]+)"', page.text) if c not in untick]
    body = [
        *fields.items(),
        ("decision", decision),
        *(("claim", _html.unescape(c)) for c in claims),
    ]
    flow.pages.append(
        browser.post(
            "/authorize/consent",
            content=urlencode(body),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    )
    return flow


def exchange(idp: Idp, rp: OAuth2Client, flow: Authorization) -> dict[str, Any]:
    token: dict[str, Any] = rp.fetch_token(
        idp.endpoint("/oauth/token"),
        authorization_response=flow.redirect,
        code_verifier=flow.verifier,
    )
    return token


def verify_id_token(
    idp: Idp, id_token: str, *, audience: str, nonce: str | None = None
) -> dict[str, Any]:
    """What a relying party checks: signature (JWKS), iss, aud, exp, nonce."""
    decoded = jwt.decode(id_token, idp.jwks(), algorithms=["ES256", "EdDSA"])
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": idp.url},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**options).validate(decoded.claims)
    return dict(decoded.claims)


# --- the GovStack client management API --------------------------------------------------------


ADMIN_CLIENT = "iam-admin"
CLIENT_MGMT = "/client-mgmt/oidc-client"


def register_admin(idp: Idp, client_id: str = ADMIN_CLIENT, scopes: tuple[str, ...] = ()) -> None:
    """An administrative client (client_credentials, scope client_mgmt unless told)."""
    register_client(
        idp,
        client_id,
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=list(scopes or service.ADMIN_SCOPES),
        claims=[],
    )


def admin_token(idp: Idp, client_id: str = ADMIN_CLIENT, scope: str = "client_mgmt") -> str:
    response = httpx.post(
        idp.endpoint("/oauth/token"),
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, idp.secrets[client_id]),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def public_jwk() -> dict[str, Any]:
    key = ECKey.import_key(_ec.generate_private_key(_ec.SECP256R1()))
    return dict(key.as_dict(private=False))


def request_time(offset: dt.timedelta = dt.timedelta()) -> str:
    return (utcnow() + offset).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def create_request(client_id: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "clientId": client_id,
        "clientName": "Health Service",
        "relyingPartyId": "health-gov",
        "logoUri": "http://example.com/logo.png",
        "redirectUris": ["http://example.com/login-success"],
        "authContextRefs": ["idbb:acr:generated-code"],
        "publicKey": public_jwk(),
        "userClaims": ["name"],
        "grantTypes": ["authorization_code"],
        "clientAuthMethods": ["private_key_jwt"],
    }
    request.update(overrides)
    return {"requestTime": request_time(), "request": request}


def update_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "clientName": "Health Service",
        "status": "active",
        "logoUri": "http://example.com/logo.png",
        "redirectUris": ["http://example.com/login-success"],
        "userClaims": ["name"],
        "authContextRefs": ["idbb:acr:generated-code"],
        "grantTypes": ["authorization_code"],
        "clientAuthMethods": ["private_key_jwt"],
    }
    request.update(overrides)
    return {"requestTime": request_time(), "request": request}
