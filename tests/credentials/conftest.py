"""Helpers for the credentials tests: in-memory keys, a static issuer, SD-JWT VCs built
without a database, a portal with the documented citizen in its register, and a federation
agreement between two instances."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jisr.core import federation
from jisr.core.crypto import jws
from jisr.core.crypto.keystore import (
    SoftwareSigningKey,
    jwk_thumbprint,
    public_jwk_of,
)
from jisr.core.instance import REGISTRY_NODE
from jisr.core.settings import KeyAlgorithm
from jisr.credentials import sdjwt, service
from jisr.credentials.verify import StaticTrust, Verifier
from jisr.demo.people import FATIMA

ISSUER = "https://portal.example.ma/credentials/issuers/civil-registry"
VCT = "https://portal.example.ma/credentials/types/birth-certificate/v1"
STATUS_URI = "https://portal.example.ma/credentials/status/civil-registry-1"
NONCE = "n-0S6_WzA2Mj"
AUD = "https://verifier.example.qa"
CLAIMS: dict[str, Any] = {
    "given_name": "Fatima Zahra",
    "family_name": "El Amrani",
    "family_name_ar": "العمراني",
    "birthdate": "1990-04-12",
    "address": {"formatted": "12 avenue Mohammed V, Rabat", "country": "MA"},
    "nationalities": ["MA", "FR"],
}


def software_key(private: ec.EllipticCurvePrivateKey | None = None) -> SoftwareSigningKey:
    private = private or ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk_of(private.public_key())
    return SoftwareSigningKey(
        kid=jwk_thumbprint(jwk),
        key_algorithm=KeyAlgorithm.ES256,
        public_jwk=jwk,
        private_key=private,
    )


class FakeStatus:
    """A status source with fixed values (index -> status)."""

    def __init__(self, values: dict[int, int] | None = None) -> None:
        self.values = values or {}

    def status(self, uri: str, index: int) -> int:
        return self.values.get(index, 0)


@dataclass
class Issuer:
    key: SoftwareSigningKey = field(default_factory=software_key)
    holder: SoftwareSigningKey = field(default_factory=software_key)

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.public_jwk, "kid": self.key.kid, "alg": "ES256"}]}

    def trust(self) -> StaticTrust:
        return StaticTrust({ISSUER: self.jwks})

    def verifier(self, **kwargs: Any) -> Verifier:
        kwargs.setdefault("status", FakeStatus())
        return Verifier(self.trust(), **kwargs)

    def issue(self, claims: dict[str, Any] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        clear: dict[str, Any] = {
            "iss": ISSUER,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "vct": VCT,
            "status": {"status_list": {"idx": 7, "uri": STATUS_URI}},
            "cnf": {"jwk": self.holder.public_jwk},
        }
        clear.update(overrides)
        clear = {k: v for k, v in clear.items() if v is not None}
        payload, disclosures = sdjwt.build_payload(
            sdjwt.all_disclosable(clear | (CLAIMS if claims is None else claims))
        )
        token = jws.sign_compact(payload, self.key, typ=sdjwt.SD_JWT_VC_TYP)
        return "~".join((token, *disclosures)) + "~"

    def present(
        self,
        token: str,
        paths: Any = None,
        *,
        nonce: str = NONCE,
        aud: str = AUD,
        iat: int | None = None,
    ) -> str:
        return sdjwt.key_binding_jwt(
            sdjwt.present(token, paths),
            self.holder,
            nonce=nonce,
            aud=aud,
            iat=iat or int(time.time()),
        )


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="session")
def portal_instance(instance_factory: Any) -> Any:
    """An MA instance whose register holds the documented citizen MA:AB123456."""
    from jisr.identity import service as register
    from jisr.identity.schemas import PersonCreate

    instance = instance_factory("MA")
    with instance.node("idp").session() as session:
        register.create_person(session, PersonCreate(**FATIMA))
    return instance


def agree(ma: Any, qa: Any, *, accept: list[str], days: int = 30) -> dict[str, Any]:
    """A federation agreement MA offers (``accept``: the document types QA accepts) and QA
    countersigns, installed at both registries; the agreement."""
    ma_reg, qa_reg = ma.node(REGISTRY_NODE), qa.node(REGISTRY_NODE)
    with ma_reg.session() as s:
        ma_kid = federation.registry_key_thumbprint(s, node=ma_reg)
    with qa_reg.session() as s:
        qa_kid = federation.registry_key_thumbprint(s, node=qa_reg)
    with ma_reg.session() as s:
        offer = federation.make_offer(
            s,
            node=ma_reg,
            peer="QA",
            peer_key_thumbprint=qa_kid,
            peer_accept_types=accept,
            validity=dt.timedelta(days=days),
        )
    with qa_reg.session() as s:
        agreement = federation.countersign(s, node=qa_reg, offer=offer, peer_key_thumbprint=ma_kid)
    for node in (ma_reg, qa_reg):
        with node.session() as s:
            federation.install_agreement(s, node=node, document=agreement)
    return agreement


def issue_birth_certificate(ma: Any) -> service.Issued:
    """Issue the documented citizen's birth certificate at ``ma``'s portal."""
    portal = ma.node("portal")
    with ma.node("idp").session() as register, portal.session() as s:
        return service.issue_credential(
            s,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=FATIMA["national_id"],
        )


def failed(result: Any) -> dict[str, str]:
    """The failed checks of a verification result, check → reason."""
    return {c.check: c.reason for c in result.failed}
