"""The keystore: generation, rotation, the JWKS and encryption at rest, on both backends."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy.orm import Session

from jisr.core.crypto import (
    KeyAlgorithm,
    KeyBackend,
    KeyStatus,
    SoftwareBackend,
    active_key,
    generate_key,
    jwk_thumbprint,
    list_keys,
    public_jwk_of,
    public_jwks,
    public_key_by_kid,
    rotate_key,
    signing_key,
)
from jisr.core.crypto.keystore import raw_to_der_signature
from jisr.core.crypto.models import StoredKey
from jisr.core.errors import ConfigurationError, Conflict, InvalidInput, NotFound, UnknownKey

pytestmark = pytest.mark.db

ALGORITHMS = [KeyAlgorithm.ES256, KeyAlgorithm.ED25519]


def _verify(public: object, signature: bytes, data: bytes) -> None:
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(raw_to_der_signature(signature), data, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(signature, data)


class TestThumbprint:
    def test_rfc7638_example(self) -> None:
        # RFC 7638 §3.1
        jwk = {
            "kty": "RSA",
            "e": "AQAB",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhD"
            "R1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
            "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL"
            "yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
            "nqDKgw",
            "alg": "RS256",
            "kid": "2011-04-29",
        }
        assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        assert jwk_thumbprint(jwk) == RSAKey.import_key(jwk).thumbprint()

    def test_matches_joserfc_for_ec_and_okp(self) -> None:
        ec_jwk = public_jwk_of(ec.generate_private_key(ec.SECP256R1()).public_key())
        okp_jwk = public_jwk_of(ed25519.Ed25519PrivateKey.generate().public_key())
        assert jwk_thumbprint(ec_jwk) == ECKey.import_key(ec_jwk).thumbprint()
        assert jwk_thumbprint(okp_jwk) == OKPKey.import_key(okp_jwk).thumbprint()

    def test_refuses_incomplete_jwk(self) -> None:
        with pytest.raises(InvalidInput):
            jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})


@pytest.mark.parametrize("algorithm", ALGORITHMS)
class TestGenerate:
    def test_generate_and_sign(
        self, session: Session, backend: KeyBackend, algorithm: KeyAlgorithm
    ) -> None:
        info = generate_key(session, backend, purpose="signing", algorithm=algorithm)
        assert info.kid == jwk_thumbprint(info.public_jwk)
        assert info.status is KeyStatus.ACTIVE
        assert info.algorithm is algorithm
        assert info.backend.value == backend.name.value
        assert "d" not in info.public_jwk
        key = active_key(session, backend, purpose="signing")
        assert key.kid == info.kid
        assert key.algorithm == {"ES256": "ES256", "Ed25519": "EdDSA"}[algorithm.value]
        signature = key.sign(b"payload")
        assert len(signature) == 64
        _verify(key.public_key(), signature, b"payload")
        assert signing_key(session, backend, kid=info.kid).kid == info.kid

    def test_second_active_key_is_a_conflict(
        self, session: Session, backend: KeyBackend, algorithm: KeyAlgorithm
    ) -> None:
        generate_key(session, backend, purpose="signing", algorithm=algorithm)
        with pytest.raises(Conflict, match="rotate it instead"):
            generate_key(session, backend, purpose="signing", algorithm=algorithm)


def test_default_algorithm_is_es256(session: Session, software_backend: KeyBackend) -> None:
    info = generate_key(session, software_backend)
    assert info.purpose == "signing"
    assert info.algorithm is KeyAlgorithm.ES256
    assert info.public_jwk["crv"] == "P-256"


def test_purpose_is_validated(session: Session, software_backend: KeyBackend) -> None:
    with pytest.raises(InvalidInput, match="purpose"):
        generate_key(session, software_backend, purpose="Not OK!")


def test_no_active_key(session: Session, software_backend: KeyBackend) -> None:
    with pytest.raises(NotFound, match="no active 'nothing' key"):
        active_key(session, software_backend, purpose="nothing")


class TestRotate:
    def test_rotate_retires_and_keeps_the_old_key(
        self, session: Session, backend: KeyBackend
    ) -> None:
        old = generate_key(session, backend, purpose="tokens", algorithm=KeyAlgorithm.ED25519)
        new = rotate_key(session, backend, purpose="tokens")
        assert new.kid != old.kid
        assert new.algorithm is KeyAlgorithm.ED25519  # kept from the old key
        assert active_key(session, backend, purpose="tokens").kid == new.kid
        infos = {info.kid: info for info in list_keys(session, purpose="tokens")}
        assert infos[old.kid].status is KeyStatus.RETIRED
        assert infos[old.kid].retired_at is not None
        assert infos[new.kid].status is KeyStatus.ACTIVE
        # the retired key can still be loaded, and is still published
        assert signing_key(session, backend, kid=old.kid).kid == old.kid
        assert public_key_by_kid(session, old.kid)["kid"] == old.kid

    def test_rotate_without_a_key_generates_one(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        info = rotate_key(session, software_backend, purpose="fresh")
        assert info.status is KeyStatus.ACTIVE

    def test_rotate_may_change_algorithm(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        generate_key(session, software_backend, purpose="alg")
        info = rotate_key(session, software_backend, purpose="alg", algorithm=KeyAlgorithm.ED25519)
        assert info.algorithm is KeyAlgorithm.ED25519


class TestPublication:
    def test_list_keys_newest_first(self, session: Session, software_backend: KeyBackend) -> None:
        first = generate_key(session, software_backend, purpose="listed")
        second = rotate_key(session, software_backend, purpose="listed")
        assert [info.kid for info in list_keys(session, purpose="listed")] == [
            second.kid,
            first.kid,
        ]
        assert {first.kid, second.kid} <= {info.kid for info in list_keys(session)}

    def test_jwks_has_active_and_retired_keys(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        old = generate_key(session, software_backend, purpose="jwks")
        new = rotate_key(session, software_backend, purpose="jwks", algorithm=KeyAlgorithm.ED25519)
        jwks = public_jwks(session, purpose="jwks")
        assert [jwk["kid"] for jwk in jwks["keys"]] == [new.kid, old.kid]  # active first
        by_kid = {jwk["kid"]: jwk for jwk in jwks["keys"]}
        assert by_kid[old.kid] == {**old.public_jwk, "kid": old.kid, "alg": "ES256", "use": "sig"}
        assert by_kid[new.kid]["alg"] == "EdDSA"
        assert by_kid[new.kid]["kty"] == "OKP"
        assert all("d" not in jwk for jwk in jwks["keys"])
        everything = public_jwks(session)
        assert {old.kid, new.kid} <= {jwk["kid"] for jwk in everything["keys"]}

    def test_public_key_by_kid(self, session: Session, software_backend: KeyBackend) -> None:
        info = generate_key(session, software_backend, purpose="bykid")
        jwk = public_key_by_kid(session, info.kid)
        assert jwk["kid"] == info.kid and jwk["use"] == "sig"
        assert public_key_by_kid(session, info.kid, purpose="bykid") == jwk
        with pytest.raises(UnknownKey, match="not a 'other' key"):
            public_key_by_kid(session, info.kid, purpose="other")
        with pytest.raises(UnknownKey, match="no key with kid"):
            public_key_by_kid(session, "nope")


class TestEncryptionAtRest:
    def test_private_key_is_stored_encrypted(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        info = generate_key(session, software_backend, purpose="rest")
        record = session.query(StoredKey).filter_by(kid=info.kid).one()
        assert record.backend == "software"
        assert record.pkcs11_label is None
        assert record.private_pem is not None
        assert record.private_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # "Password was not given but private key is encrypted"
            serialization.load_pem_private_key(record.private_pem, password=None)
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(record.private_pem, password=b"wrong")

    def test_wrong_passphrase_cannot_load_it(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        info = generate_key(session, software_backend, purpose="rest")
        with pytest.raises(ConfigurationError, match="passphrase does not decrypt"):
            active_key(session, SoftwareBackend("wrong passphrase"), purpose="rest")
        assert active_key(session, software_backend, purpose="rest").kid == info.kid

    def test_decrypted_keys_are_cached(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        generate_key(session, software_backend, purpose="cache")
        first = active_key(session, software_backend, purpose="cache")
        assert active_key(session, software_backend, purpose="cache") is first
        assert first.private_key_for_x509() is not None

    def test_empty_passphrase_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="empty"):
            SoftwareBackend("")


@pytest.mark.pkcs11
def test_pkcs11_keys_cannot_be_exported(session: Session, pkcs11_backend: KeyBackend) -> None:
    generate_key(session, pkcs11_backend, purpose="export")
    with pytest.raises(ConfigurationError, match="cannot be exported"):
        active_key(session, pkcs11_backend, purpose="export").private_key_for_x509()
