"""Demo step: verifiable documents.

``credentials_step(world)``: the MA civil registry issues a birth-certificate extract to the
documented citizen ``MA:AB123456`` as an SD-JWT VC bound to her wallet key; she presents only
her name and date of birth, with key binding, and the MA verifier API accepts it; a second
copy is revoked and the same verifier refuses it, saying why. QA verifying an MA document
through the federation agreement, and seeing its revocation after a refresh, is the
federation step (``jisr.demo.federation``). ``wallet_key`` is also the demo wallet of the
procedures step.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from jisr.core.crypto.keystore import (
    SoftwareSigningKey,
    jwk_thumbprint,
    public_jwk_of,
)
from jisr.core.settings import KeyAlgorithm
from jisr.credentials import sdjwt, service
from jisr.demo.people import FATIMA

if TYPE_CHECKING:
    from jisr.demo.scenario import World

VERIFIER_AUD = "https://bank.example.ma"


def wallet_key() -> SoftwareSigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk_of(private.public_key())
    return SoftwareSigningKey(
        kid=jwk_thumbprint(jwk),
        key_algorithm=KeyAlgorithm.ES256,
        public_jwk=jwk,
        private_key=private,
    )


def _issue(world: World, wallet: SoftwareSigningKey) -> service.Issued:
    instance = world.instances["MA"]
    portal = instance.node(service.ISSUER_NODE)
    with instance.node("idp").session() as register, portal.session() as session:
        return service.issue_credential(
            session,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=FATIMA["national_id"],
            holder_key=wallet.public_jwk,
            actor="demo",
        )


def _verify(client: httpx.Client, world: World, presentation: str, nonce: str) -> dict[str, Any]:
    response = client.post(
        f"{world.url('MA')}/api/credentials/verify",
        json={"presentation": presentation, "nonce": nonce, "aud": VERIFIER_AUD},
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def credentials_step(world: World) -> None:
    world.step("MA issues a birth-certificate extract as an SD-JWT VC; a verifier checks it")
    wallet = wallet_key()
    issued = _issue(world, wallet)
    world.say(
        f"issued {issued.doc_type} {issued.credential_id} to {FATIMA['national_id']} "
        f"({len(issued.token)} characters, every claim selectively disclosable, bound to the "
        f"wallet key {wallet.kid[:12]}…)"
    )
    with httpx.Client(timeout=10) as client:
        nonce = secrets.token_urlsafe(12)
        shown = sdjwt.key_binding_jwt(
            sdjwt.present(issued.token, [("given_name",), ("family_name",), ("birthdate",)]),
            wallet,
            nonce=nonce,
            aud=VERIFIER_AUD,
            iat=int(time.time()),
        )
        answer = _verify(client, world, shown, nonce)
        if not answer["valid"]:
            raise RuntimeError(f"the presentation was refused: {answer}")
        world.say(
            "she shows only her name and date of birth, with key binding: valid "
            f"({', '.join(c['check'] for c in answer['checks'])})"
        )

        copy = _issue(world, wallet)
        portal = world.instances["MA"].node(service.ISSUER_NODE)
        with portal.session() as session:
            service.revoke_credential(
                session, node=portal, credential_id=copy.credential_id, reason="demo", actor="demo"
            )
        nonce = secrets.token_urlsafe(12)
        shown = sdjwt.key_binding_jwt(
            sdjwt.present(copy.token), wallet, nonce=nonce, aud=VERIFIER_AUD, iat=int(time.time())
        )
        answer = _verify(client, world, shown, nonce)
        refused = [f"{c['check']}: {c['reason']}" for c in answer["checks"] if not c["ok"]]
        if answer["valid"] or refused != ["status: revoked"]:
            raise RuntimeError(f"a revoked credential was not refused as revoked: {answer}")
        world.say(f"revoked the copy {copy.credential_id}; the verifier refuses it ({refused[0]})")
