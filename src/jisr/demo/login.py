"""The demo's relying parties and a scripted OpenID Connect login over real HTTP.

``login_step(world)`` is the scenario step. Per instance it

1. registers one relying party (``RELYING_PARTIES``: "Bawabat al-Khadamat" on MA, "Hukoomi
   demo" on QA) with ``client_secret_basic``; its secret, shown once by the provider, is kept
   in ``<world>/relying-party-<code>.json`` (mode 0600) so a reused world logs in again;
2. gives the documented citizen (``MA:AB123456``, ``QA:28435612345``, see
   ``jisr.demo.people``) an account with the documented demo credentials, password
   ``DEMO_PASSWORD`` and the TOTP seed ``DEMO_TOTP_SECRET`` (reset on every run, so a reused
   world starts from the same state);
3. logs in as a relying party would, with Authlib's ``OAuth2Client`` over HTTP: discovery,
   ``/authorize`` (PKCE S256, ``state``, ``nonce``), the login form (password and a one-time
   code computed with pyotp), the consent page, the code back at the redirect URI, the token
   exchange, the ID token checked against the JWKS (signature, ``iss``, ``aud``, ``exp``,
   ``nonce``) and userinfo.

The redirect URIs name hosts that do not exist: the relying party reads the code from the
``Location`` header, as a browser would hand it over.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import authlib.deprecate  # noqa: F401  (installs its "always" filter first; ours then wins)
import httpx
import pyotp
from joserfc import jwt
from joserfc.jwk import KeySet

from jisr.core.instance import Instance
from jisr.demo import people
from jisr.identity import auth
from jisr.identity import service as register
from jisr.identity.oidc import service as oidc

with warnings.catch_warnings():
    # Authlib 1.9 prefers the httpx2 fork for its client; httpx itself works as before.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client

if TYPE_CHECKING:
    from jisr.demo.scenario import World

DEMO_PASSWORD = "demo-password-2026"
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # base32, 160 bits
SCOPE = "openid profile national_id"


@dataclass(frozen=True)
class RelyingParty:
    client_id: str
    name: str
    redirect_uri: str


RELYING_PARTIES: dict[str, RelyingParty] = {
    "MA": RelyingParty(
        "bawabat-al-khadamat",
        "Bawabat al-Khadamat — بوابة الخدمات",
        "https://bawaba.demo.ma/callback",
    ),
    "QA": RelyingParty("hukoomi-demo", "Hukoomi demo — حكومي", "https://hukoomi.demo.qa/callback"),
}

_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
_CLAIM = re.compile(r'name="claim" value="([^"]+)"')


def login_step(world: World) -> None:
    """Scenario step: one relying party per instance, and a citizen's login through it."""
    world.step("OpenID Connect: a relying party logs a citizen in (password + one-time code)")
    for code, instance in world.instances.items():
        party = RELYING_PARTIES[code]
        secret, fresh = register_relying_party(instance, party, world.directory)
        world.say(
            f"{code}: relying party «{party.name}» (client {party.client_id}, "
            f"client_secret_basic) {'registered' if fresh else 'already registered'}"
        )
        citizen = people.DOCUMENTED[code]["national_id"]
        enrol_citizen(instance, citizen)
        world.say(f"{code}: {citizen} has a demo account (password and TOTP)")
        scripted_login(world, code, party, secret, citizen)


def register_relying_party(
    instance: Instance, party: RelyingParty, directory: Path
) -> tuple[str, bool]:
    """The party's client secret, and whether it was registered now (idempotent)."""
    kept = directory / f"relying-party-{instance.code}.json"
    idp = instance.node("idp")
    with idp.session() as session:
        if oidc.get_client(session, party.client_id) is not None:
            if not kept.exists():
                raise RuntimeError(f"{party.client_id} is registered but {kept} is missing")
            secret: str = json.loads(kept.read_text(encoding="utf-8"))["client_secret"]
            return secret, False
        made = oidc.create_client(
            session,
            client_id=party.client_id,
            name=party.name,
            redirect_uris=[party.redirect_uri],
        )
        idp.record(
            session,
            "identity.client.registered",
            {"client_id": party.client_id, "auth_method": made.client.auth_method},
            actor="demo",
        )
    assert made.secret is not None
    kept.touch(mode=0o600)
    kept.write_text(
        json.dumps({"client_id": party.client_id, "client_secret": made.secret}),
        encoding="utf-8",
    )
    return made.secret, True


def enrol_citizen(instance: Instance, national_id: str) -> None:
    """Give ``national_id`` the documented demo password and TOTP seed."""
    idp = instance.node("idp")
    with idp.session() as session:
        person = register.get_person_by_national_id(session, national_id)
        auth.set_credentials(
            session,
            settings=instance.settings,
            person_id=person.id,
            password=DEMO_PASSWORD,
            totp_secret=DEMO_TOTP_SECRET,
        )


def _hidden(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def scripted_login(
    world: World, code: str, party: RelyingParty, secret: str, national_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole code flow as a relying party and a browser; returns the token response and
    the userinfo claims."""
    base = world.url(code)
    metadata = httpx.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    rp = OAuth2Client(
        client_id=party.client_id,
        client_secret=secret,
        scope=SCOPE,
        redirect_uri=party.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        timeout=10,
    )
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    with rp, httpx.Client(base_url=base, timeout=10, headers={"accept": "text/html"}) as browser:
        page = browser.get(url)
        if 'action="/authorize/login"' not in page.text:
            raise RuntimeError(f"{code}: no login page ({page.status_code})")
        rtl = 'dir="rtl"' in page.text
        world.say(
            f"{code}: GET /authorize (PKCE S256, state, nonce) → login page"
            f"{' (Arabic, right to left)' if rtl else ''}"
        )
        one_time = pyotp.TOTP(DEMO_TOTP_SECRET).now()
        form = _hidden(page.text) | {
            "national_id": national_id,
            "password": DEMO_PASSWORD,
            "code": one_time,
        }
        page = browser.post("/authorize/login", data=form)
        if 'action="/authorize/consent"' in page.text:
            asked = [html.unescape(claim) for claim in _CLAIM.findall(page.text)]
            world.say(
                f"{code}: password and one-time code {one_time} accepted → consent page "
                f"asks for {', '.join(asked)}"
            )
            body = [*_hidden(page.text).items(), ("decision", "allow")]
            body += [("claim", claim) for claim in asked]
            page = browser.post(
                "/authorize/consent",
                content=urlencode(body),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        else:
            world.say(f"{code}: password and one-time code accepted; consent given on a former run")
        location = page.headers.get("location", "")
        if page.status_code != 302 or not location.startswith(party.redirect_uri):
            raise RuntimeError(f"{code}: the login did not end with a code ({page.status_code})")
        returned = parse_qs(urlsplit(location).query)
        if returned.get("state") != [state]:
            raise RuntimeError(f"{code}: the state came back altered")
        world.say(f"{code}: 302 to {party.redirect_uri}?code=…&state=… (state matches)")
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
        claims = verify_id_token(token["id_token"], metadata, audience=party.client_id, nonce=nonce)
        world.say(
            f"{code}: token exchange → access, refresh and ID tokens; ID token verified "
            f"against {metadata['jwks_uri'].removeprefix(base)} (signature, iss, aud, exp, nonce)"
        )
        world.say(
            f"{code}: acr {claims['acr']} (amr {' '.join(claims['amr'])}); "
            f"pairwise sub {claims['sub'][:16]}… (not the national identifier)"
        )
        info: dict[str, Any] = rp.get(metadata["userinfo_endpoint"]).json()
    if info.get("sub") != claims["sub"]:
        raise RuntimeError(f"{code}: userinfo is about another subject")
    world.say(
        f"{code}: userinfo → {info.get('name')} / {info.get('name#ar')}, born "
        f"{info.get('birthdate')}, national_id {info.get('national_id')} (consented)"
    )
    return dict(token), info


def verify_id_token(
    id_token: str, metadata: dict[str, Any], *, audience: str, nonce: str
) -> dict[str, Any]:
    """What a relying party checks: the signature against the JWKS, then the claims."""
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(
        id_token, keys, algorithms=list(metadata["id_token_signing_alg_values_supported"])
    )
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": audience},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)
