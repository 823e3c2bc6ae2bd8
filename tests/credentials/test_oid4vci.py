"""OpenID4VCI 1.0, pre-authorized code flow, over real HTTP with a simulated wallet; each
refusal from the attacker's side."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from jisr.credentials import oid4vci, sdjwt, service
from jisr.credentials.models import CredentialOffer

from .conftest import software_key
from .oid4vc_support import Served, Wallet, serve

pytestmark = [pytest.mark.db, pytest.mark.slow]
GRANT = oid4vci.PRE_AUTHORIZED_GRANT


@pytest.fixture(scope="module")
def served(instance_factory: Any) -> Iterator[Served]:
    yield from serve(instance_factory)


def _token(served: Served, offer: oid4vci.Offer, **form: Any) -> Any:
    code = offer.offer["grants"][GRANT]["pre-authorized_code"]
    data = {"grant_type": GRANT, "pre-authorized_code": code} | form
    if "tx_code" not in form and offer.tx_code is not None:
        data["tx_code"] = offer.tx_code
    return served.http.post(
        "/credentials/oid4vci/token", data={k: v for k, v in data.items() if v is not None}
    )


def _nonce(served: Served) -> str:
    answer = served.http.post("/credentials/oid4vci/nonce")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    return str(answer.json()["c_nonce"])


def _credential(served: Served, token: str, body: Any) -> Any:
    return served.http.post(
        "/credentials/oid4vci/credential", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def _request(proof: str, configuration: str = "birth-certificate") -> dict[str, Any]:
    return {"credential_configuration_id": configuration, "proofs": {"jwt": [proof]}}


def _access_token(served: Served) -> str:
    answer = _token(served, served.offer())
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_metadata(served: Served) -> None:
    meta = served.http.get("/.well-known/openid-credential-issuer").json()
    assert meta["credential_issuer"] == served.url
    assert meta["credential_endpoint"] == served.url + "/credentials/oid4vci/credential"
    assert meta["nonce_endpoint"] == served.url + "/credentials/oid4vci/nonce"
    configurations = meta["credential_configurations_supported"]
    assert "residence-permit" not in configurations  # a Qatari type
    birth = configurations["birth-certificate"]
    assert birth["format"] == "dc+sd-jwt"
    assert birth["vct"] == served.url + "/credentials/types/birth-certificate/v1"
    assert birth["cryptographic_binding_methods_supported"] == ["jwk"]
    assert birth["proof_types_supported"] == {
        "jwt": {"proof_signing_alg_values_supported": ["ES256"]}
    }
    assert {d["locale"] for d in birth["credential_metadata"]["display"]} == {"ar", "fr", "en"}
    assert birth["scope"] == "credential:birth-certificate"
    # the identity provider (code flow), then the portal's server of the pre-authorized grant
    assert meta["authorization_servers"] == [served.url, served.url + "/credentials/oid4vci"]
    pre = served.http.get("/.well-known/oauth-authorization-server/credentials/oid4vci").json()
    assert pre["issuer"] == served.url + "/credentials/oid4vci"
    assert pre["token_endpoint"] == served.url + "/credentials/oid4vci/token"
    assert pre["pre-authorized_grant_anonymous_access_supported"] is True
    idp = served.http.get("/.well-known/oauth-authorization-server").json()
    assert idp["issuer"] == served.url and idp["token_endpoint"] == served.url + "/oauth/token"
    offer = served.offer().offer
    assert offer["grants"][GRANT]["authorization_server"] == pre["issuer"]


def test_full_flow(served: Served) -> None:
    wallet = Wallet()
    offer = served.offer()
    assert offer.wallet_link.startswith("openid-credential-offer://?credential_offer=")
    assert offer.tx_code is not None and len(offer.tx_code) == 6 and offer.tx_code.isdigit()
    assert offer.offer["grants"][GRANT]["tx_code"]["input_mode"] == "numeric"
    assert offer.tx_code not in offer.wallet_link.split("pre-authorized_code")[0]
    token = _token(served, offer)
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    assert token.json()["token_type"] == "Bearer"
    proof = wallet.proof(aud=served.url, nonce=_nonce(served))
    answer = _credential(served, token.json()["access_token"], _request(proof))
    assert answer.status_code == 200, answer.text
    credential = answer.json()["credentials"][0]["credential"]
    payload = sdjwt.decode_segment(credential.split(".")[1])
    assert payload["cnf"]["jwk"] == wallet.key.public_jwk
    portal = served.instance.node("portal")
    with portal.session() as session:
        result = service.local_verifier(session, node=portal).verify(credential)
    assert result.valid, result.to_dict()
    assert result.claims["family_name"] == "El Amrani"
    again = _credential(
        served,
        token.json()["access_token"],
        _request(wallet.proof(aud=served.url, nonce=_nonce(served))),
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in again.headers["www-authenticate"]


class TestTokenRefusals:
    def test_unknown_code(self, served: Served) -> None:
        answer = served.http.post(
            "/credentials/oid4vci/token",
            data={"grant_type": GRANT, "pre-authorized_code": "guess", "tx_code": "123456"},
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"

    def test_used_code(self, served: Served) -> None:
        offer = served.offer()
        assert _token(served, offer).status_code == 200
        answer = _token(served, offer)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"

    def test_expired_code(self, served: Served) -> None:
        offer = served.offer()
        portal = served.instance.node("portal")
        with portal.session() as session:
            row = session.scalars(
                sa.select(CredentialOffer).where(CredentialOffer.offer_id == offer.offer_id)
            ).one()
            row.expires_at = row.created_at - dt.timedelta(seconds=1)
        answer = _token(served, offer)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"

    def test_wrong_tx_code_then_guessing_is_limited(self, served: Served) -> None:
        offer = served.offer()
        wrong = "000000" if offer.tx_code != "000000" else "111111"
        for _ in range(3):
            answer = _token(served, offer, tx_code=wrong)
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
        # the offer is burnt: even the right code is refused now
        answer = _token(served, offer, tx_code=offer.tx_code)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"

    def test_missing_tx_code(self, served: Served) -> None:
        offer = served.offer()
        code = offer.offer["grants"][GRANT]["pre-authorized_code"]
        answer = served.http.post(
            "/credentials/oid4vci/token", data={"grant_type": GRANT, "pre-authorized_code": code}
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        assert _token(served, offer).status_code == 200  # a forgotten code is not a guess

    def test_offer_without_tx_code(self, served: Served) -> None:
        offer = served.offer(tx_code=False)
        assert "tx_code" not in offer.offer["grants"][GRANT]
        assert _token(served, offer).status_code == 200

    def test_other_grant_type(self, served: Served) -> None:
        answer = served.http.post("/credentials/oid4vci/token", data={"grant_type": "password"})
        assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


class TestCredentialRefusals:
    def _refused(self, served: Served, body: Any, error: str, token: str | None = None) -> None:
        answer = _credential(served, token or _access_token(served), body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == error

    def test_missing_proof(self, served: Served) -> None:
        self._refused(served, {"credential_configuration_id": "birth-certificate"}, "invalid_proof")

    def test_proof_without_nonce(self, served: Served) -> None:
        self._refused(served, _request(Wallet().proof(aud=served.url, nonce=None)), "invalid_proof")

    def test_proof_with_wrong_nonce(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce="not-a-c-nonce")
        self._refused(served, _request(proof), "invalid_nonce")

    def test_nonce_is_single_use(self, served: Served) -> None:
        nonce = _nonce(served)
        wallet = Wallet()
        first = _credential(
            served, _access_token(served), _request(wallet.proof(aud=served.url, nonce=nonce))
        )
        assert first.status_code == 200
        self._refused(served, _request(wallet.proof(aud=served.url, nonce=nonce)), "invalid_nonce")

    def test_proof_for_another_audience(self, served: Served) -> None:
        proof = Wallet().proof(aud="https://issuer.example", nonce=_nonce(served))
        self._refused(served, _request(proof), "invalid_proof")

    def test_proof_with_bad_signature(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce=_nonce(served), key=software_key())
        self._refused(served, _request(proof), "invalid_proof")

    def test_stale_proof(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce=_nonce(served), iat=1_000_000_000)
        self._refused(served, _request(proof), "invalid_proof")

    def test_proof_of_another_type(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce=_nonce(served), typ="JWT")
        self._refused(served, _request(proof), "invalid_proof")

    def test_unknown_configuration(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce=_nonce(served))
        self._refused(served, _request(proof, "passport"), "unknown_credential_configuration")

    def test_configuration_not_offered(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce=_nonce(served))
        self._refused(served, _request(proof, "identity-attestation"), "invalid_credential_request")

    def test_no_or_unknown_token(self, served: Served) -> None:
        proof = Wallet().proof(aud=served.url, nonce=_nonce(served))
        answer = served.http.post("/credentials/oid4vci/credential", json=_request(proof))
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
        answer = _credential(served, "forged", _request(proof))
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
