"""SD-JWT VC + key-binding verifications per second on one core, beside the raw ES256
verify rate and the IETF reference implementation's rate, all measured in this run.

    .venv/bin/python benchmarks/credentials_verify.py [--seconds 2]

One verification = parse, issuer signature (ES256), validity, every Disclosure (a birth
certificate presented with 3 of its 8 claims), KB-JWT signature (ES256) with nonce, aud,
freshness and sd_hash, and the status list entry (from the verifier's TTL cache). The last
line is JSON: {"ours_per_s": …, "raw_es256_per_s": …, "reference_per_s": …}.

The three rates are per second of CPU time of this process, measured in interleaved rounds
(ours, raw, reference, then again…), each the best of its rounds, as ``timeit`` advises: on
a shared machine other processes only ever slow a round down, and interleaving keeps a busy
spell from falling on one rate alone, so the ratios stay comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from jisr.core.crypto import jws
from jisr.core.crypto.keystore import (
    SoftwareSigningKey,
    jwk_thumbprint,
    public_jwk_of,
)
from jisr.core.settings import KeyAlgorithm
from jisr.credentials import sdjwt
from jisr.credentials.status_list import StatusListCache, token_payload
from jisr.credentials.verify import StaticTrust, Verifier

ISSUER = "https://portal.example.ma/credentials/issuers/civil-registry"
STATUS_URI = "https://portal.example.ma/credentials/status/civil-registry-1"
NONCE, AUD = "n-0S6_WzA2Mj", "https://verifier.example.qa"


def _key() -> SoftwareSigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk_of(private.public_key())
    return SoftwareSigningKey(
        kid=jwk_thumbprint(jwk),
        key_algorithm=KeyAlgorithm.ES256,
        public_jwk=jwk,
        private_key=private,
    )


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of this process's CPU time (``process_time``: while another process
    holds the core, no time is counted)."""
    work()
    count, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(50):
            work()
        count += 50
        now = time.process_time()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per rate, all rounds")
    parser.add_argument("--rounds", type=int, default=10)
    arguments = parser.parse_args()
    rounds = max(1, arguments.rounds)
    seconds = arguments.seconds / rounds
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    issuer, holder = _key(), _key()
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + 86400,
        "vct": "https://portal.example.ma/credentials/types/birth-certificate/v1",
        "status": {"status_list": {"idx": 4242, "uri": STATUS_URI}},
        "cnf": {"jwk": holder.public_jwk},
        "given_name": "Fatima Zahra",
        "family_name": "El Amrani",
        "given_name_ar": "فاطمة الزهراء",
        "family_name_ar": "العمراني",
        "birthdate": "1990-04-12",
        "place_of_birth": "Rabat",
        "sex": "F",
        "nationalities": ["MA"],
    }
    payload, disclosures = sdjwt.build_payload(sdjwt.all_disclosable(claims))
    token = "~".join((jws.sign_compact(payload, issuer, typ="dc+sd-jwt"), *disclosures)) + "~"
    shown = sdjwt.key_binding_jwt(
        sdjwt.present(token, [("given_name",), ("family_name",), ("birthdate",)]),
        holder,
        nonce=NONCE,
        aud=AUD,
        iat=now,
    )
    jwks = {"keys": [{**issuer.public_jwk, "kid": issuer.kid, "alg": "ES256"}]}
    status_token = jws.sign_compact(
        token_payload(
            uri=STATUS_URI,
            issuer=ISSUER,
            data=bytes(16384),
            bits=1,
            iat=now,
            ttl=3600,
            validity=86400,
        ),
        issuer,
        typ="statuslist+jwt",
    )
    verifier = Verifier(StaticTrust({ISSUER: jwks}))
    verifier.status = StatusListCache(
        lambda uri: status_token, verifier.verify_status_token, max_ttl=3600
    )
    result = verifier.verify(shown, nonce=NONCE, aud=AUD)
    assert result.valid, result.to_dict()

    def with_ours() -> object:
        return verifier.verify(shown, nonce=NONCE, aud=AUD)

    public = issuer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    message = shown.split("~")[0].rsplit(".", 1)[0].encode()
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    raw_sig = sdjwt.b64url_decode(shown.split("~")[0].rsplit(".", 1)[1])
    der = encode_dss_signature(
        int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
    )

    def with_raw() -> object:
        public.verify(der, message, ec.ECDSA(hashes.SHA256()))
        return None

    with_reference: Callable[[], object] | None = None
    try:
        from jwcrypto.jwk import JWK
        from sd_jwt.verifier import SDJWTVerifier

        issuer_jwk = JWK.from_json(json.dumps(issuer.public_jwk))

        def reference_run() -> object:
            return SDJWTVerifier(
                shown, lambda iss, header: issuer_jwk, expected_aud=AUD, expected_nonce=NONCE
            ).get_verified_payload()

        reference_run()
        with_reference = reference_run
    except ImportError:
        print("reference implementation (sd-jwt) not installed: rate 0")

    ours = raw = reference = 0.0
    for _ in range(rounds):
        ours = max(ours, rate(with_ours, seconds))
        raw = max(raw, rate(with_raw, seconds))
        if with_reference is not None:
            reference = max(reference, rate(with_reference, seconds))

    print(f"raw ES256 verify:      {raw:8.0f} /s  (two-signature limit {raw / 2:.0f} /s)")
    print(f"ours, VC + KB + status: {ours:7.0f} /s  ({ours / (raw / 2):.0%} of the limit)")
    print(f"reference (sd-jwt):    {reference:8.0f} /s  (no status, no exp check)")
    if reference:
        print(f"ours / reference:      {ours / reference:8.1f} x")
    print(
        json.dumps(
            {
                "ours_per_s": round(ours),
                "raw_es256_per_s": round(raw),
                "reference_per_s": round(reference),
            }
        )
    )


if __name__ == "__main__":
    main()
