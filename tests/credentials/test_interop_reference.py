"""Interoperability with the IETF reference implementation (PyPI ``sd-jwt``), used only as a
test oracle: our SD-JWT VCs verify with it, and SD-JWTs it issues verify with ours. It also
shows why it is only an oracle: it accepts an expired credential and an unreferenced
Disclosure, which ours refuses."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from jisr.credentials import sdjwt
from jisr.credentials.verify import StaticTrust, Verifier

from .conftest import AUD, ISSUER, NONCE, FakeStatus, Issuer

sd_jwt = pytest.importorskip("sd_jwt", reason="the reference implementation is not installed")
from jwcrypto.jwk import JWK  # noqa: E402
from sd_jwt.common import SDObj  # noqa: E402
from sd_jwt.holder import SDJWTHolder  # noqa: E402
from sd_jwt.issuer import SDJWTIssuer  # noqa: E402
from sd_jwt.verifier import SDJWTVerifier  # noqa: E402


def _jwk(key: Any) -> JWK:
    return JWK.from_json(json.dumps(key.public_jwk))


def _reference_verify(issuer: Issuer, presentation: str, **kwargs: Any) -> dict[str, Any]:
    verifier = SDJWTVerifier(presentation, lambda iss, header: _jwk(issuer.key), **kwargs)
    payload: dict[str, Any] = verifier.get_verified_payload()
    return payload


def test_ours_verify_with_the_reference(issuer: Issuer) -> None:
    token = issuer.issue()
    shown = issuer.present(token, [("given_name",), ("address", "locality"), ("nationalities", 0)])
    payload = _reference_verify(issuer, shown, expected_aud=AUD, expected_nonce=NONCE)
    assert payload["given_name"] == "Fatima Zahra"
    assert payload["nationalities"] == ["MA"]
    assert "family_name" not in payload
    full = _reference_verify(issuer, token)
    assert full["family_name_ar"] == "العمراني"


def _reference_issue(holder_jwk: dict[str, Any], claims: dict[str, Any]) -> tuple[str, JWK, JWK]:
    issuer_key = JWK.generate(kty="EC", crv="P-256")
    issuer_key["kid"] = "ref-1"  # type: ignore[index]
    holder_key = JWK.generate(kty="EC", crv="P-256")
    issued = SDJWTIssuer(
        claims,
        issuer_key,
        holder_key=holder_key,
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": "ref-1"},
    )
    return issued.sd_jwt_issuance, issuer_key, holder_key


def test_reference_sd_jwts_verify_with_ours() -> None:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
        "vct": "https://portal.example.ma/credentials/types/birth-certificate/v1",
        SDObj("given_name"): "Fatima Zahra",
        SDObj("family_name"): "El Amrani",
        SDObj("address"): {SDObj("locality"): "Rabat", "country": "MA"},
        "nationalities": [SDObj("MA"), "FR"],
    }
    token, issuer_key, holder_key = _reference_issue({}, claims)
    holder = SDJWTHolder(token)
    holder.create_presentation(
        {"given_name": True, "address": {"locality": True}, "nationalities": [True]},
        nonce=NONCE,
        aud=AUD,
        holder_key=holder_key,
        sign_alg="ES256",
    )
    jwks = {"keys": [json.loads(issuer_key.export_public())]}
    verifier = Verifier(StaticTrust({ISSUER: jwks}), status=FakeStatus())
    result = verifier.verify(holder.sd_jwt_presentation, nonce=NONCE, aud=AUD)
    assert result.valid, result.to_dict()
    assert result.claims["given_name"] == "Fatima Zahra"
    assert result.claims["address"] == {"locality": "Rabat", "country": "MA"}
    assert result.claims["nationalities"] == ["MA", "FR"]
    assert "family_name" not in result.claims
    # and the whole issuance, every Disclosure
    assert verifier.verify(token).valid


def test_the_reference_accepts_what_ours_refuses(issuer: Issuer) -> None:
    now = int(time.time())
    expired = issuer.issue(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    assert _reference_verify(issuer, expired)["given_name"] == "Fatima Zahra"
    assert issuer.verifier().verify(expired).check("validity").reason == "expired"
    padded = issuer.issue() + sdjwt.make_disclosure("admin", "role") + "~"
    assert "role" not in _reference_verify(issuer, padded)
    assert issuer.verifier().verify(padded).check("disclosures").reason == (
        "unreferenced-disclosure"
    )
