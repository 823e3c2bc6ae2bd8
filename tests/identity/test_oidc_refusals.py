"""Every refusal of the provider, from the attacker's (or a careless relying party's) side,
over real HTTP; plus rotating refresh tokens, private_key_jwt and RP-initiated logout."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from authlib.integrations.base_client.errors import OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.errors import BadSignatureError, ExpiredTokenError
from joserfc.jwk import ECKey
from oidc_support import (
    REDIRECT_URI,
    Idp,
    begin,
    exchange,
    register_client,
    register_person,
    sign_in,
    start_idp,
    verify_id_token,
)

from jisr.identity import auth
from jisr.identity.oidc.models import OidcAuthorizationCode

pytestmark = [pytest.mark.db, pytest.mark.slow]
TOTP_SEED = pyotp.random_base32(32)
JWT_KEY = ECKey.generate_key("P-256", parameters={"kid": "rp-key-1"})


@pytest.fixture(scope="module")
def idp(instance_factory: Any) -> Iterator[Idp]:
    for served in start_idp(instance_factory("MA")):
        register_client(served, "portal-ma", post_logout_redirect_uris=["http://rp.example/bye"])
        register_client(
            served,
            "jwt-ma",
            auth_method="private_key_jwt",
            jwks={"keys": [JWT_KEY.as_dict(private=False)]},
        )
        for national_id in ("MAAB200001", "MAAB200002", "MAAB200003"):
            register_person(served, national_id)
        register_person(served, "MAAB200009", totp_secret=TOTP_SEED)
        yield served


@pytest.fixture
def browser(idp: Idp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=idp.url, timeout=10, headers={"accept": "text/html"}) as client:
        yield client
    idp.close_clients()


def _error(location: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(location).query)["error"][0]


def _token_error(idp: Idp, rp: Any, flow: Any, **kwargs: Any) -> str:
    with pytest.raises(OAuthError) as refused:
        rp.fetch_token(
            idp.endpoint("/oauth/token"),
            authorization_response=flow.redirect,
            code_verifier=kwargs.pop("code_verifier", flow.verifier),
            **kwargs,
        )
    return str(refused.value.error)


class TestAuthorizationRequest:
    def test_unknown_client_gets_an_error_page(self, idp: Idp, browser: httpx.Client) -> None:
        flow = sign_in(browser, begin(idp, idp.client("nobody")), "MA:AB200001")
        page = flow.last
        assert page.status_code == 400 and "location" not in page.headers
        assert "invalid_client" in page.text

    def test_wrong_redirect_uri_never_redirects(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma", redirect_uri="http://evil.example/steal")
        flow = sign_in(browser, begin(idp, rp), "MA:AB200001")
        assert flow.last.status_code == 400 and "location" not in flow.last.headers
        assert "evil.example" not in flow.last.headers.get("content-security-policy", "")

    def test_missing_pkce(self, idp: Idp, browser: httpx.Client) -> None:
        url = (
            f"{idp.url}/authorize?response_type=code&client_id=portal-ma&scope=openid"
            f"&redirect_uri={REDIRECT_URI}&state=s1"
        )
        response = browser.get(url)
        assert response.status_code == 302
        assert _error(response.headers["location"]) == "invalid_request"
        assert "state=s1" in response.headers["location"]

    def test_plain_pkce_refused(self, idp: Idp, browser: httpx.Client) -> None:
        challenge = "a" * 43
        url = (
            f"{idp.url}/authorize?response_type=code&client_id=portal-ma&scope=openid"
            f"&redirect_uri={REDIRECT_URI}&code_challenge={challenge}"
            "&code_challenge_method=plain"
        )
        response = browser.get(url)
        assert _error(response.headers["location"]) == "invalid_request"

    def test_consent_refused(self, idp: Idp, browser: httpx.Client) -> None:
        flow = sign_in(browser, begin(idp, idp.client("portal-ma")), "MA:AB200003", decision="deny")
        assert _error(flow.redirect) == "access_denied"


class TestTokenRequest:
    def test_wrong_pkce_verifier(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma")
        flow = sign_in(browser, begin(idp, rp), "MA:AB200001")
        assert _token_error(idp, rp, flow, code_verifier="x" * 50) == "invalid_grant"

    def test_reused_code_revokes_its_tokens(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma")
        flow = sign_in(browser, begin(idp, rp), "MA:AB200001")
        exchange(idp, rp, flow)
        assert rp.get(idp.endpoint("/oidc/userinfo")).status_code == 200
        attacker = idp.client("portal-ma")
        assert _token_error(idp, attacker, flow) == "invalid_grant"
        refused = rp.get(idp.endpoint("/oidc/userinfo"))
        assert refused.status_code == 401
        assert "invalid_token" in refused.headers["www-authenticate"]

    def test_expired_code(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma")
        flow = sign_in(browser, begin(idp, rp), "MA:AB200001")
        with idp.instance.node("idp").session() as session:
            session.execute(
                sa.update(OidcAuthorizationCode)
                .where(OidcAuthorizationCode.used_at.is_(None))
                .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        assert _token_error(idp, rp, flow) == "invalid_grant"

    def test_wrong_client_secret(self, idp: Idp, browser: httpx.Client) -> None:
        flow = sign_in(browser, begin(idp, idp.client("portal-ma")), "MA:AB200001")
        rp = idp.client("portal-ma")
        rp.client_secret = "not-the-secret"
        with pytest.raises(OAuthError) as refused:
            rp.fetch_token(
                idp.endpoint("/oauth/token"),
                authorization_response=flow.redirect,
                code_verifier=flow.verifier,
            )
        assert refused.value.error == "invalid_client"

    def test_private_key_jwt(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("jwt-ma", token_endpoint_auth_method="private_key_jwt")
        rp.client_secret = JWT_KEY
        rp.register_client_auth_method(
            PrivateKeyJWT(idp.endpoint("/oauth/token"), alg="ES256", headers={"kid": "rp-key-1"})
        )
        flow = sign_in(browser, begin(idp, rp), "MA:AB200002")
        token = exchange(idp, rp, flow)
        verify_id_token(idp, token["id_token"], audience="jwt-ma", nonce=flow.nonce)

    def test_bad_private_key_jwt_assertion(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("jwt-ma", token_endpoint_auth_method="private_key_jwt")
        rp.client_secret = ECKey.generate_key("P-256")  # not the registered key
        rp.register_client_auth_method(PrivateKeyJWT(idp.endpoint("/oauth/token"), alg="ES256"))
        flow = sign_in(browser, begin(idp, rp), "MA:AB200002")
        assert _token_error(idp, rp, flow) == "invalid_client"


class TestIdTokenAsARelyingPartyChecksIt:
    @pytest.fixture
    def id_token(self, idp: Idp, browser: httpx.Client) -> str:
        rp = idp.client("portal-ma")
        token: str = exchange(idp, rp, sign_in(browser, begin(idp, rp), "MA:AB200001"))["id_token"]
        return token

    def test_tampered(self, idp: Idp, id_token: str) -> None:
        head, payload, signature = id_token.split(".")
        claims = json.loads(_b64decode(payload))
        claims["sub"] = "someone-else"
        forged = ".".join((head, _b64encode(json.dumps(claims).encode()), signature))
        with pytest.raises(BadSignatureError):
            verify_id_token(idp, forged, audience="portal-ma")

    def test_expired(self, idp: Idp, id_token: str) -> None:
        from joserfc import jwt

        claims = jwt.decode(id_token, idp.jwks(), algorithms=["ES256"]).claims
        later = int(time.time()) + 3600
        with pytest.raises(ExpiredTokenError):
            jwt.JWTClaimsRegistry(now=later, exp={"essential": True}).validate(claims)

    def test_wrong_audience(self, idp: Idp, id_token: str) -> None:
        from joserfc.errors import InvalidClaimError

        with pytest.raises(InvalidClaimError):
            verify_id_token(idp, id_token, audience="another-client")


class TestClaims:
    def test_claim_not_consented_is_not_released(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma", scope="openid profile national_id")
        flow = sign_in(browser, begin(idp, rp), "MA:AB200002", untick=("national_id",))
        exchange(idp, rp, flow)
        userinfo = rp.get(idp.endpoint("/oidc/userinfo")).json()
        assert "national_id" not in userinfo and userinfo["family_name"] == "El Alaoui"
        # Asked again, by name in the claims parameter: the remembered consent does not
        # cover it, so it is still not released.
        again = idp.client("portal-ma", scope="openid profile national_id")
        flow = begin(idp, again, claims=json.dumps({"userinfo": {"national_id": None}}))
        flow.pages.append(browser.get(flow.url))
        exchange(idp, again, flow)
        assert "national_id" not in again.get(idp.endpoint("/oidc/userinfo")).json()


class TestLogin:
    def test_wrong_password(self, idp: Idp, browser: httpx.Client) -> None:
        flow = sign_in(
            browser, begin(idp, idp.client("portal-ma")), "MA:AB200001", password="wrong-pass"
        )
        assert flow.last.status_code == 401
        assert 'role="alert"' in flow.last.text

    def test_forged_csrf_refused(self, idp: Idp, browser: httpx.Client) -> None:
        flow = begin(idp, idp.client("portal-ma"))
        browser.get(flow.url)
        response = browser.post(
            "/authorize/login",
            data={"tx": "client_id=portal-ma", "csrf": "forged", "national_id": "x"},
        )
        assert response.status_code == 400 and "location" not in response.headers

    def test_locked_after_failures(self, idp: Idp, browser: httpx.Client) -> None:
        register_person(idp, "MAAB200007")
        for _attempt in range(auth.MAX_FAILURES):
            flow = sign_in(
                browser, begin(idp, idp.client("portal-ma")), "MA:AB200007", password="bad-pass"
            )
            assert flow.last.status_code == 401
        flow = sign_in(browser, begin(idp, idp.client("portal-ma")), "MA:AB200007")
        assert flow.last.status_code == 403

    def test_totp_required_wrong_and_reused(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma")
        assert sign_in(browser, begin(idp, rp), "MA:AB200009").last.status_code == 401
        code = pyotp.TOTP(TOTP_SEED).now()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert sign_in(browser, begin(idp, rp), "MA:AB200009", code=wrong).last.status_code == 401
        flow = sign_in(browser, begin(idp, rp), "MA:AB200009", code=code)
        claims = verify_id_token(idp, exchange(idp, rp, flow)["id_token"], audience="portal-ma")
        assert claims["acr"] == auth.ACR_TWO_FACTOR
        with httpx.Client(base_url=idp.url, timeout=10) as other_browser:
            reused = sign_in(other_browser, begin(idp, rp), "MA:AB200009", code=code)
            assert reused.last.status_code == 401


class TestRefreshAndLogout:
    def test_refresh_rotates_and_replay_revokes(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma")
        first = exchange(idp, rp, sign_in(browser, begin(idp, rp), "MA:AB200001"))
        second = rp.refresh_token(
            idp.endpoint("/oauth/token"), refresh_token=first["refresh_token"]
        )
        assert second["refresh_token"] != first["refresh_token"]
        assert rp.get(idp.endpoint("/oidc/userinfo")).status_code == 200
        with pytest.raises(OAuthError) as refused:
            rp.refresh_token(idp.endpoint("/oauth/token"), refresh_token=first["refresh_token"])
        assert refused.value.error == "invalid_grant"
        rp.token = second
        assert rp.get(idp.endpoint("/oidc/userinfo")).status_code == 401  # family revoked

    def test_rp_initiated_logout(self, idp: Idp, browser: httpx.Client) -> None:
        rp = idp.client("portal-ma")
        token = exchange(idp, rp, sign_in(browser, begin(idp, rp), "MA:AB200001"))
        response = browser.get(
            "/oidc/logout",
            params={
                "id_token_hint": token["id_token"],
                "post_logout_redirect_uri": "http://rp.example/bye",
                "state": "bye-1",
            },
        )
        assert response.status_code == 302
        assert response.headers["location"] == "http://rp.example/bye?state=bye-1"
        assert rp.get(idp.endpoint("/oidc/userinfo")).status_code == 401
        page = browser.get(begin(idp, rp).url)
        assert 'action="/authorize/login"' in page.text  # signed out

    def test_unregistered_post_logout_uri_is_not_followed(
        self, idp: Idp, browser: httpx.Client
    ) -> None:
        rp = idp.client("portal-ma")
        token = exchange(idp, rp, sign_in(browser, begin(idp, rp), "MA:AB200001"))
        response = browser.get(
            "/oidc/logout",
            params={
                "id_token_hint": token["id_token"],
                "post_logout_redirect_uri": "http://evil.example/",
            },
        )
        assert response.status_code == 200 and "location" not in response.headers


def _b64decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
