"""A served MA instance and a simulated wallet for the OpenID4VCI/VP tests (not a conftest)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from jisr.core.crypto.keystore import SoftwareSigningKey
from jisr.core.instance import Instance
from jisr.credentials import oid4vci, sdjwt
from jisr.demo import servers

from .conftest import software_key

PERSON = "MA:AB123456"


@dataclass
class Served:
    instance: Instance
    running: servers.RunningServer
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url

    def offer(self, doc_type: str = "birth-certificate", **kwargs: Any) -> oid4vci.Offer:
        portal = self.instance.node("portal")
        with self.instance.node("idp").session() as register, portal.session() as session:
            return oid4vci.create_offer(
                session,
                node=portal,
                register=register,
                doc_type=doc_type,
                national_id=PERSON,
                **kwargs,
            )


def serve(instance_factory: Any) -> Iterator[Served]:
    from jisr.demo.people import FATIMA
    from jisr.identity import service as register
    from jisr.identity.schemas import PersonCreate

    instance = instance_factory("MA")
    with instance.node("idp").session() as session:
        register.create_person(session, PersonCreate(**FATIMA))
    running = servers.start(instance)
    instance.settings.public_url = running.url
    with httpx.Client(base_url=running.url, timeout=10) as http:
        try:
            yield Served(instance, running, http)
        finally:
            running.stop()


@dataclass
class Wallet:
    """A wallet: one holder key, proofs and presentations made with it."""

    key: SoftwareSigningKey = field(default_factory=software_key)

    def proof(
        self,
        *,
        aud: str,
        nonce: str | None,
        iat: int | None = None,
        typ: str = oid4vci.PROOF_TYP,
        key: SoftwareSigningKey | None = None,
    ) -> str:
        header = {"alg": "ES256", "typ": typ, "jwk": self.key.public_jwk}
        body: dict[str, Any] = {"aud": aud, "iat": iat or int(time.time())}
        if nonce is not None:
            body["nonce"] = nonce
        signing_input = (
            sdjwt.b64url(sdjwt.json_bytes(header)) + "." + sdjwt.b64url(sdjwt.json_bytes(body))
        )
        signature = (key or self.key).sign(signing_input.encode("ascii"))
        return signing_input + "." + sdjwt.b64url(signature)

    def present(self, credential: str, paths: Any, *, nonce: str, aud: str) -> str:
        return sdjwt.key_binding_jwt(
            sdjwt.present(credential, paths), self.key, nonce=nonce, aud=aud, iat=int(time.time())
        )
