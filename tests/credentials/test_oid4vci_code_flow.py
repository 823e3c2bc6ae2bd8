"""OpenID4VCI 1.0 authorization code flow through the identity provider, over real HTTP: a
wallet runs code + PKCE at the idp with the scope of a credential configuration, then calls
the portal's credential endpoint with the idp's JWT access token (RFC 9068); the portal
issues for the person who signed in. And each refusal of a token."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from jisr.core.crypto import jws, keystore
from jisr.credentials import oid4vci, sdjwt
from jisr.demo.people import FATIMA
from jisr.identity import auth
from jisr.identity import service as register
from jisr.identity.oidc import service as oidc

from .conftest import software_key
from .oid4vc_support import Served, Wallet, serve

pytestmark = [pytest.mark.db, pytest.mark.slow]
REDIRECT = "https://wallet.example/callback"
PASSWORD = "correct horse battery"
SCOPES = ["openid", "credential:birth-certificate", "credential:residence-certificate"]
_INPUT = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


@pytest.fixture(scope="module")
def served(instance_factory: Any) -> Iterator[tuple[Served, str]]:
    for served in serve(instance_factory):
        idp = served.instance.node("idp")
        with idp.session() as session:
            person = register.get_person_by_national_id(session, FATIMA["national_id"])
            auth.set_credentials(
                session, settings=served.instance.settings, person_id=person.id, password=PASSWORD
            )
            made = oidc.create_client(
                session, client_id="wallet", name="Wallet", redirect_uris=[REDIRECT], scopes=SCOPES
            )
        assert made.secret is not None
        yield served, made.secret


def _fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _INPUT.findall(page)}


def _code_flow(served: Served, secret: str, scope: str) -> httpx.Response:
    """Sign in at the idp like a browser, consent, and exchange the code (PKCE S256)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = {
        "response_type": "code",
        "client_id": "wallet",
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=served.url, timeout=10) as browser:
        page = browser.get("/authorize?" + urlencode(query))
        assert 'action="/authorize/login"' in page.text, page.text[:300]
        form = _fields(page.text) | {
            "national_id": FATIMA["national_id"],
            "password": PASSWORD,
            "code": "",
        }
        page = browser.post("/authorize/login", data=form)
        if page.status_code == 200 and 'action="/authorize/consent"' in page.text:
            claims = re.findall(r'name="claim" value="([^"]+)"', page.text)
            body = [
                *_fields(page.text).items(),
                ("decision", "allow"),
                *(("claim", html.unescape(c)) for c in claims),
            ]
            page = browser.post(
                "/authorize/consent",
                content=urlencode(body),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        assert page.status_code == 302, page.text[:300]
        code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    return served.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=("wallet", secret),
    )


def _credential(served: Served, token: str, wallet: Wallet, configuration: str) -> httpx.Response:
    nonce = served.http.post("/credentials/oid4vci/nonce").json()["c_nonce"]
    body = {
        "credential_configuration_id": configuration,
        "proofs": {"jwt": [wallet.proof(aud=served.url, nonce=nonce)]},
    }
    return served.http.post(
        "/credentials/oid4vci/credential",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_code_flow_through_the_identity_provider(served: tuple[Served, str]) -> None:
    http, secret = served
    meta = http.http.get("/.well-known/openid-credential-issuer").json()
    assert meta["authorization_servers"][0] == http.url
    scope = meta["credential_configurations_supported"]["birth-certificate"]["scope"]
    token = _code_flow(http, secret, f"openid {scope}")
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    header = sdjwt.decode_segment(access.split(".")[0])
    claims = sdjwt.decode_segment(access.split(".")[1])
    assert header["typ"] == "at+jwt" and claims["aud"] == http.url and claims["iss"] == http.url
    assert scope in claims["scope"].split()
    wallet = Wallet()
    answer = _credential(http, access, wallet, "birth-certificate")
    assert answer.status_code == 200, answer.text
    credential = answer.json()["credentials"][0]["credential"]
    payload = sdjwt.decode_segment(credential.split(".")[1])
    assert payload["cnf"]["jwk"] == wallet.key.public_jwk
    disclosed = sdjwt.unpack(payload, sdjwt.parse(credential).disclosures)
    assert disclosed["family_name"] == "El Amrani"
    # the idp's own resources still take the token (it is stored like any other)
    userinfo = http.http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 200


def test_a_configuration_outside_the_token_scope(served: tuple[Served, str]) -> None:
    http, secret = served
    token = _code_flow(http, secret, "openid credential:residence-certificate")
    assert token.status_code == 200, token.text
    answer = _credential(http, token.json()["access_token"], Wallet(), "birth-certificate")
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]


def test_a_scope_the_client_was_not_given_is_refused(served: tuple[Served, str]) -> None:
    http, secret = served
    with http.instance.node("idp").session() as session, pytest.raises(oidc.InvalidClientMetadata):
        oidc.create_client(
            session, name="Bad", redirect_uris=[REDIRECT], scopes=["openid", "credential:Bad!"]
        )
    token = _code_flow(http, secret, "openid")  # no credential scope: an opaque token
    assert token.status_code == 200 and token.json()["access_token"].count(".") == 0
    answer = _credential(http, token.json()["access_token"], Wallet(), "birth-certificate")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"


def _idp_token(served: Served, *, key: Any = None, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": served.url,
        "aud": served.url,
        "sub": "someone",
        "client_id": "wallet",
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
        "scope": "credential:birth-certificate",
        "national_id": FATIMA["national_id"],
    } | changes
    idp = served.instance.node("idp")
    with idp.session() as session:
        signer = key or keystore.active_key(session, idp.keys)
    return jws.sign_compact(claims, signer, typ="at+jwt")


@pytest.mark.parametrize(
    "forge",
    [
        {"exp": int(time.time()) - 10},  # expired
        {"key": "foreign"},  # signed by a key the idp does not publish
        {"iss": "https://idp.elsewhere.example"},  # another provider
        {"aud": "https://issuer.elsewhere.example"},  # for another credential issuer
        {"iat": int(time.time()) + 3600},  # issued in the future
        {"national_id": None},  # names no person
    ],
)
def test_refused_access_tokens(served: tuple[Served, str], forge: dict[str, Any]) -> None:
    http, _secret = served
    if forge.get("key") == "foreign":
        token = _idp_token(http, key=software_key())
    else:
        token = _idp_token(http, **forge)
    answer = _credential(http, token, Wallet(), "birth-certificate")
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_token"
    assert oid4vci.AT_JWT_TYP == "at+jwt"


def test_a_token_of_another_type_is_refused(served: tuple[Served, str]) -> None:
    http, _secret = served
    idp = http.instance.node("idp")
    with idp.session() as session:
        key = keystore.active_key(session, idp.keys)
    now = int(time.time())
    id_token_like = jws.sign_compact(
        {"iss": http.url, "aud": http.url, "iat": now, "exp": now + 300, "scope": "x"},
        key,
        typ="JWT",
    )
    answer = _credential(http, id_token_like, Wallet(), "birth-certificate")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
