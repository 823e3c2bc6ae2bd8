"""JWS: signing with keystore keys, verifying with joserfc, and every refusal."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws as jose_jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, import_key
from keybackends import PASSPHRASE
from sqlalchemy.orm import Session

from jisr.core.crypto import (
    JwsSigner,
    KeyAlgorithm,
    KeyBackend,
    SigningKey,
    SoftwareBackend,
    active_key,
    generate_key,
    keystore_verifier,
    public_jwks,
    rotate_key,
    sign_compact,
    verify_compact,
    verify_with_keystore,
)
from jisr.core.crypto.models import StoredKey
from jisr.core.errors import (
    AlgorithmRefused,
    ConfigurationError,
    CryptoError,
    InvalidInput,
    SignatureInvalid,
    UnknownKey,
)

DUPLICATE_ALG = b'{"alg":"ES256","alg":"none"}'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json64(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def make_key(backend: KeyBackend, algorithm: KeyAlgorithm = KeyAlgorithm.ES256) -> SigningKey:
    """A signing key without a database: the row is built in memory only."""
    new = backend.generate(algorithm)
    record = StoredKey(
        kid=new.kid,
        purpose="test",
        algorithm=new.algorithm.value,
        backend=backend.name.value,
        status="active",
        public_jwk=new.public_jwk,
        private_pem=new.private_pem,
        pkcs11_label=new.pkcs11_label,
    )
    return backend.load(record)


def jwks_of(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [{**key.public_jwk, "kid": key.kid, "alg": key.algorithm} for key in keys]}


@pytest.fixture(params=[KeyAlgorithm.ES256, KeyAlgorithm.ED25519], ids=["ES256", "Ed25519"])
def key(request: pytest.FixtureRequest, backend: KeyBackend) -> SigningKey:
    return make_key(backend, request.param)


class TestSignAndVerify:
    def test_round_trip_bytes(self, key: SigningKey) -> None:
        token = sign_compact(b"\x00binary\xff", key)
        verified = verify_compact(token, jwks_of(key))
        assert verified.payload == b"\x00binary\xff"
        assert verified.kid == key.kid
        assert verified.header == {"alg": key.algorithm, "kid": key.kid}

    def test_round_trip_mapping_with_typ_and_headers(self, key: SigningKey) -> None:
        payload = {"iss": "MA/GOV/1234", "name": "جسر", "n": [1, 2]}
        token = sign_compact(payload, key, typ="jisr+jwt", headers={"x5t#S256": "abc"})
        header_segment, payload_segment, _ = token.split(".")
        assert base64.urlsafe_b64decode(payload_segment + "==") == json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        verified = verify_compact(token, lambda kid: jwks_of(key)["keys"][0], typ="jisr+jwt")
        assert verified.header == {
            "alg": key.algorithm,
            "kid": key.kid,
            "typ": "jisr+jwt",
            "x5t#S256": "abc",
        }
        assert verified.json() == payload

    def test_joserfc_alone_agrees(self, key: SigningKey) -> None:
        token = sign_compact(b"interop", key)
        # joserfc warns that EdDSA is deprecated (RFC 9864); verify_compact silences that.
        expected = SecurityWarning if key.algorithm == "EdDSA" else None
        with pytest.warns(expected) if expected else contextlib.nullcontext():
            result = jose_jws.deserialize_compact(
                token, import_key(key.public_jwk), algorithms=["ES256", "EdDSA"]
            )
        assert result.payload == b"interop"

    def test_reserved_headers_cannot_be_overridden(self, key: SigningKey) -> None:
        with pytest.raises(InvalidInput, match="'alg'"):
            sign_compact(b"x", key, headers={"alg": "none"})


@pytest.fixture(scope="module")
def es256() -> Iterator[SigningKey]:
    yield make_key(SoftwareBackend(PASSPHRASE))


@pytest.fixture(scope="module")
def ed25519() -> Iterator[SigningKey]:
    yield make_key(SoftwareBackend(PASSPHRASE), KeyAlgorithm.ED25519)


class TestRefusals:
    def test_tampered_payload(self, key: SigningKey) -> None:
        header, _, signature = sign_compact({"amount": 10}, key).split(".")
        forged = f"{header}.{_json64({'amount': 10_000})}.{signature}"
        with pytest.raises(SignatureInvalid, match="does not verify"):
            verify_compact(forged, jwks_of(key))

    def test_tampered_header(self, key: SigningKey) -> None:
        _, payload, signature = sign_compact(b"x", key, typ="a").split(".")
        forged = (
            f"{_json64({'alg': key.algorithm, 'kid': key.kid, 'typ': 'b'})}.{payload}.{signature}"
        )
        with pytest.raises(SignatureInvalid):
            verify_compact(forged, jwks_of(key))

    def test_tampered_signature(self, es256: SigningKey) -> None:
        token = sign_compact(b"x", es256)
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        with pytest.raises(SignatureInvalid):
            verify_compact(flipped, jwks_of(es256))

    @pytest.mark.parametrize("signature", ["", "c2ln"])
    def test_alg_none(self, es256: SigningKey, signature: str) -> None:
        token = f"{_json64({'alg': 'none', 'kid': es256.kid})}.{_b64(b'{}')}.{signature}"
        with pytest.raises(AlgorithmRefused, match="'none' is not allowed"):
            verify_compact(token, jwks_of(es256))

    def test_alg_outside_the_allow_list(self, es256: SigningKey, ed25519: SigningKey) -> None:
        token = sign_compact(b"x", ed25519)
        with pytest.raises(AlgorithmRefused, match="'EdDSA' is not allowed"):
            verify_compact(token, jwks_of(ed25519), algorithms=["ES256"])

    def test_hs256_with_the_public_key_as_secret(self, es256: SigningKey) -> None:
        # Algorithm confusion: an attacker signs with HMAC keyed by the public key.
        public_pem = ECKey.import_key(es256.public_jwk).as_pem(private=False)
        signing_input = f"{_json64({'alg': 'HS256', 'kid': es256.kid})}.{_b64(b'evil')}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(mac)}"
        with pytest.raises(AlgorithmRefused, match="'HS256' is not allowed"):
            verify_compact(token, jwks_of(es256))

    def test_symmetric_algorithms_cannot_be_allowed(self, es256: SigningKey) -> None:
        with pytest.raises(ConfigurationError, match="public-key"):
            verify_compact(sign_compact(b"x", es256), jwks_of(es256), algorithms=["HS256"])

    def test_unknown_kid(self, es256: SigningKey, ed25519: SigningKey) -> None:
        token = sign_compact(b"x", es256)
        with pytest.raises(UnknownKey, match="is trusted here"):
            verify_compact(token, jwks_of(ed25519))
        with pytest.raises(UnknownKey):
            verify_compact(token, lambda kid: None)

    def test_missing_kid(self, es256: SigningKey) -> None:
        signing_input = f"{_json64({'alg': 'ES256'})}.{_b64(b'x')}"
        token = f"{signing_input}.{_b64(es256.sign(signing_input.encode()))}"
        with pytest.raises(UnknownKey, match="names no key"):
            verify_compact(token, jwks_of(es256))

    def test_key_type_does_not_match_alg(self, es256: SigningKey, ed25519: SigningKey) -> None:
        token = sign_compact(b"x", es256)  # ES256, but the kid resolves to an Ed25519 key
        with pytest.raises(AlgorithmRefused, match="cannot verify ES256"):
            verify_compact(token, lambda kid: ed25519.public_jwk)

    def test_jwk_alg_must_match(self, es256: SigningKey) -> None:
        token = sign_compact(b"x", es256)
        with pytest.raises(AlgorithmRefused, match="is for ES384"):
            verify_compact(token, lambda kid: {**es256.public_jwk, "alg": "ES384"})

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.c2ln",
            f"{_b64(b'not json')}.e30.c2ln",
            f"{_b64(b'[1,2]')}.e30.c2ln",
            f"{_b64(DUPLICATE_ALG)}.e30.c2ln",
            f"{_json64({'alg': 'ES256', 'kid': 'k'})}.e30.",
        ],
    )
    def test_malformed(self, es256: SigningKey, token: str) -> None:
        with pytest.raises(CryptoError) as raised:
            verify_compact(token, jwks_of(es256))
        assert raised.type is CryptoError

    def test_crit_and_unencoded_payloads_are_refused(self, es256: SigningKey) -> None:
        with pytest.raises(CryptoError, match="critical"):
            verify_compact(
                sign_compact(b"x", es256, headers={"crit": ["exp"], "exp": 1}), jwks_of(es256)
            )
        with pytest.raises(CryptoError, match="RFC 7797"):
            verify_compact(sign_compact(b"x", es256, headers={"b64": True}), jwks_of(es256))

    def test_wrong_typ(self, es256: SigningKey) -> None:
        with pytest.raises(CryptoError, match="expected 'b'"):
            verify_compact(sign_compact(b"x", es256, typ="a"), jwks_of(es256), typ="b")


@pytest.mark.db
class TestKeystoreVerification:
    def test_token_of_a_retired_key_still_verifies(
        self, session: Session, backend: KeyBackend
    ) -> None:
        generate_key(session, backend, purpose="tokens")
        old_token = sign_compact({"n": 1}, active_key(session, backend, purpose="tokens"))
        rotate_key(session, backend, purpose="tokens")
        new_token = sign_compact({"n": 2}, active_key(session, backend, purpose="tokens"))
        assert verify_with_keystore(session, old_token).json() == {"n": 1}
        assert verify_with_keystore(session, new_token, purpose="tokens").json() == {"n": 2}
        # the published JWKS verifies both too
        jwks = public_jwks(session, purpose="tokens")
        assert verify_compact(old_token, jwks).kid != verify_compact(new_token, jwks).kid

    def test_purpose_is_enforced(self, session: Session, software_backend: KeyBackend) -> None:
        generate_key(session, software_backend, purpose="audit")
        token = sign_compact(b"x", active_key(session, software_backend, purpose="audit"))
        with pytest.raises(UnknownKey, match="not a 'tokens' key"):
            verify_with_keystore(session, token, purpose="tokens")

    def test_foreign_key_is_unknown(self, session: Session, es256: SigningKey) -> None:
        with pytest.raises(UnknownKey) as raised:
            verify_with_keystore(session, sign_compact(b"x", es256))
        assert raised.value.to_problem()["kid"] == es256.kid  # machine-readable fact

    def test_signer_and_verifier_for_the_audit_log(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        generate_key(session, software_backend, purpose="signing")
        signer = JwsSigner(active_key(session, software_backend), typ="jisr-checkpoint+jwt")
        token = signer.sign(b'{"seq":1}')
        assert token.count(".") == 2 and signer.algorithm == "ES256"
        verify = keystore_verifier(session, purpose="signing", typ="jisr-checkpoint+jwt")
        assert verify(token) == b'{"seq":1}'
        assert verify_compact(token, public_jwks(session)).kid == signer.kid
        with pytest.raises(SignatureInvalid):
            verify(token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))


@pytest.fixture(
    scope="module", params=["software", pytest.param("pkcs11", marks=pytest.mark.pkcs11)]
)
def backend_keys(request: pytest.FixtureRequest) -> list[SigningKey]:
    """An ES256 and an Ed25519 key of each backend, for the property tests."""
    chosen: KeyBackend = request.getfixturevalue(f"{request.param}_backend")
    return [make_key(chosen, algorithm) for algorithm in KeyAlgorithm]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=2048))
def test_round_trip_arbitrary_bytes(backend_keys: list[SigningKey], payload: bytes) -> None:
    for key in backend_keys:
        assert verify_compact(sign_compact(payload, key), jwks_of(key)).payload == payload


@settings(max_examples=30, deadline=None)
@given(
    payload=st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
        max_size=5,
    )
)
def test_round_trip_arbitrary_json(es256: SigningKey, payload: dict[str, Any]) -> None:
    assert verify_compact(sign_compact(payload, es256), jwks_of(es256)).json() == payload
