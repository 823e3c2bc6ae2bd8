"""The PKCS#11 keystore backend on a fresh SoftHSM2 token (fixtures in ``conftest``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from conftest import OTHER_TOKEN_LABEL, TOKEN_LABEL  # noqa: E402
from jisr.core.crypto import (
    KeyAlgorithm,
    KeyBackend,
    SoftwareBackend,
    active_key,
    generate_key,
    open_backend,
)
from jisr.core.crypto.keystore import raw_to_der_signature
from jisr.core.crypto.models import StoredKey
from jisr.core.errors import ConfigurationError
from jisr.core.settings import KeystoreBackend, Settings


def _token_session(settings: Settings):  # type: ignore[no-untyped-def]
    import pkcs11

    library = pkcs11.lib(str(settings.pkcs11_module))
    return library.get_token(token_label=TOKEN_LABEL).open(rw=True)


@pytest.mark.pkcs11
@pytest.mark.db
class TestPkcs11Keystore:
    def test_private_half_stays_in_the_token(
        self, session: Session, pkcs11_backend: KeyBackend, softhsm_settings: Settings
    ) -> None:
        import pkcs11

        info = generate_key(session, pkcs11_backend, purpose="hsm")
        record = session.query(StoredKey).filter_by(kid=info.kid).one()
        assert record.backend == "pkcs11"
        assert record.private_pem is None
        assert record.pkcs11_label == info.kid
        token_session = _token_session(softhsm_settings)  # logged in: shares the login
        try:
            private = token_session.get_key(
                object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=info.kid
            )
            assert private[pkcs11.Attribute.ID] == info.kid.encode()
            assert private[pkcs11.Attribute.SENSITIVE] is True
            assert private[pkcs11.Attribute.EXTRACTABLE] is False
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                private[pkcs11.Attribute.VALUE]
        finally:
            token_session.close()  # not ours to log out: python-pkcs11 only closes it

    def test_signatures_are_raw_r_s_and_verify(
        self, session: Session, pkcs11_backend: KeyBackend
    ) -> None:
        generate_key(session, pkcs11_backend, purpose="hsm")
        key = active_key(session, pkcs11_backend, purpose="hsm")
        signature = key.sign(b"message")
        assert len(signature) == 64
        public = key.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(raw_to_der_signature(signature), b"message", ec.ECDSA(hashes.SHA256()))

    def test_ed25519_with_ckm_eddsa(self, session: Session, pkcs11_backend: KeyBackend) -> None:
        info = generate_key(session, pkcs11_backend, purpose="hsm", algorithm=KeyAlgorithm.ED25519)
        key = active_key(session, pkcs11_backend, purpose="hsm")
        assert key.kid == info.kid and key.algorithm == "EdDSA"
        key.public_key().verify(key.sign(b"m"), b"m")  # type: ignore[call-arg]

    def test_ed25519_refused_when_the_token_lacks_it(
        self, session: Session, pkcs11_backend: KeyBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(pkcs11_backend, "supports", lambda algorithm: False)
        with pytest.raises(ConfigurationError, match="cannot generate Ed25519 keys"):
            generate_key(session, pkcs11_backend, purpose="hsm", algorithm=KeyAlgorithm.ED25519)

    def test_one_session_is_reused(self, session: Session, pkcs11_backend: KeyBackend) -> None:
        generate_key(session, pkcs11_backend, purpose="hsm")
        key = active_key(session, pkcs11_backend, purpose="hsm")
        key.sign(b"a")
        first = pkcs11_backend._shared.session  # type: ignore[attr-defined]
        key.sign(b"b")
        assert pkcs11_backend._shared.session is first  # type: ignore[attr-defined]

    def test_concurrent_signing_is_serialized(
        self, session: Session, pkcs11_backend: KeyBackend
    ) -> None:
        generate_key(session, pkcs11_backend, purpose="hsm")
        key = active_key(session, pkcs11_backend, purpose="hsm")
        public = key.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(20):
                    data = f"{n}-{i}".encode()
                    der = raw_to_der_signature(key.sign(data))
                    public.verify(der, data, ec.ECDSA(hashes.SHA256()))
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    def test_a_second_backend_shares_the_login(
        self, session: Session, pkcs11_backend: KeyBackend, softhsm_settings: Settings
    ) -> None:
        generate_key(session, pkcs11_backend, purpose="hsm")
        other = open_backend(softhsm_settings)
        try:
            active_key(session, other, purpose="hsm").sign(b"x")
        finally:
            other.close()
        active_key(session, pkcs11_backend, purpose="hsm").sign(b"still logged in")

    def test_software_keys_are_not_loaded_from_the_token(
        self, session: Session, pkcs11_backend: KeyBackend, software_backend: KeyBackend
    ) -> None:
        generate_key(session, software_backend, purpose="soft")
        with pytest.raises(ConfigurationError, match="lives in the software keystore"):
            active_key(session, pkcs11_backend, purpose="soft")


@pytest.mark.pkcs11
class TestPkcs11Configuration:
    def test_unknown_token(self, softhsm_settings: Settings) -> None:
        settings = softhsm_settings.model_copy(update={"pkcs11_token_label": "missing"})
        with pytest.raises(ConfigurationError, match="no token labelled 'missing'"):
            open_backend(settings).generate(KeyAlgorithm.ES256)

    def test_wrong_pin(self, softhsm_settings: Settings) -> None:
        from pydantic import SecretStr

        settings = softhsm_settings.model_copy(
            update={"pkcs11_token_label": OTHER_TOKEN_LABEL, "pkcs11_pin": SecretStr("0000")}
        )
        with pytest.raises(ConfigurationError, match="PIN of PKCS#11 token 'jisr-other' was"):
            open_backend(settings).generate(KeyAlgorithm.ES256)

    def test_another_pin_in_the_same_process(
        self, softhsm_settings: Settings, pkcs11_backend: KeyBackend
    ) -> None:
        from pydantic import SecretStr

        pkcs11_backend.generate(KeyAlgorithm.ES256)  # the shared session is open
        settings = softhsm_settings.model_copy(update={"pkcs11_pin": SecretStr("0000")})
        with pytest.raises(ConfigurationError, match="another PIN"):
            open_backend(settings).generate(KeyAlgorithm.ES256)

    def test_missing_module(self, tmp_path: Path) -> None:
        settings = Settings(
            keystore_backend=KeystoreBackend.PKCS11, pkcs11_module=tmp_path / "nope.so"
        )
        with pytest.raises(ConfigurationError, match="does not exist"):
            open_backend(settings).generate(KeyAlgorithm.ES256)


def test_token_label_per_node() -> None:
    settings = Settings(
        keystore_backend=KeystoreBackend.PKCS11,
        pkcs11_module=Path("/nowhere/libsofthsm2.so"),
        pkcs11_token_label="jisr-{node}",
    )
    backend = open_backend(settings, node="registry")
    assert backend.token_label == "jisr-registry"  # type: ignore[attr-defined]
    assert open_backend(settings).token_label == "jisr-{node}"  # type: ignore[attr-defined]


def test_pkcs11_needs_a_module_setting() -> None:
    with pytest.raises(ConfigurationError, match="pkcs11_module is not set"):
        open_backend(Settings(keystore_backend=KeystoreBackend.PKCS11, pkcs11_module=None))


def test_software_backend_is_the_default() -> None:
    assert isinstance(
        open_backend(Settings(keystore_passphrase="x")),  # type: ignore[arg-type]
        SoftwareBackend,
    )
