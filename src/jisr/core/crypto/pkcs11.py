"""The PKCS#11 keystore backend: key pairs generated and kept inside a token.

Design
------
``Pkcs11Backend`` satisfies ``KeyBackend``. Key pairs are generated in the token as token
objects, the private half ``CKA_SENSITIVE`` and not ``CKA_EXTRACTABLE``: it never leaves. Once
the public key is read back, its kid (RFC 7638 thumbprint) becomes the label and the ID of both
halves, and the ``keystore_keys`` row keeps that label (``private_pem`` stays NULL).

Signing: ES256 is ``CKM_ECDSA`` over the SHA-256 digest, which returns raw ``r||s`` — exactly
the JWS format; Ed25519 is ``CKM_EDDSA`` over the message, where the token offers it (SoftHSM2
2.6 does), otherwise Ed25519 is refused with ``ConfigurationError``.

Sessions: PKCS#11 login state belongs to the whole process, not to a session (a second
``C_Login`` fails with "user already logged in", and logging out invalidates every session's
private-key handles). So there is one logged-in session per (module, token) per process, shared
by every ``Pkcs11Backend`` on that token (``_TokenSession``): opened lazily on first use,
reference-counted by the backends that use it, closed (and logged out) when the last one calls
``close``. PKCS#11 sessions are not safe to share between threads: every call into the token
holds the session's lock. A lost session (token removed, handles invalidated) is reopened once.

``python-pkcs11`` is an optional dependency (``jisr[pkcs11]``), imported only here. A key
generated in a transaction that is later rolled back stays in the token, unreferenced; that is
harmless (the label is its kid) and such keys can be deleted with the token's own tools.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from jisr.core.crypto import _der
from jisr.core.crypto.keystore import (
    NewKey,
    PublicKey,
    SigningKey,
    _check_backend,
    jwk_thumbprint,
    public_jwk_of,
)
from jisr.core.crypto.models import StoredKey
from jisr.core.errors import ConfigurationError, CryptoError
from jisr.core.settings import KeyAlgorithm, KeystoreBackend

T = TypeVar("T")


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "keystore_backend is pkcs11 but python-pkcs11 is not installed (install jisr[pkcs11])"
        ) from error
    return pkcs11


class Pkcs11SigningKey(SigningKey):
    def __init__(self, *, backend: Pkcs11Backend, record: StoredKey) -> None:
        super().__init__(
            kid=record.kid,
            key_algorithm=KeyAlgorithm(record.algorithm),
            public_jwk=record.public_jwk,
        )
        self._backend = backend
        self.label = record.pkcs11_label or record.kid

    def sign(self, data: bytes) -> bytes:
        return self._backend.sign(self.label, self.key_algorithm, data)


class _TokenSession:
    """The process's one logged-in session on one token, and the private-key handles found."""

    def __init__(self, module: Path, token_label: str, pin: str) -> None:
        self.module = module
        self.token_label = token_label
        self.pin = pin
        self.lock = threading.RLock()
        self.users = 0
        self.token: Any = None
        self.session: Any = None
        self.handles: dict[str, Any] = {}

    def open(self) -> Any:
        if self.session is not None:
            return self.session
        pkcs11 = _pkcs11()
        if not self.module.is_file():
            raise ConfigurationError(f"the PKCS#11 module {self.module} does not exist")
        try:
            library = pkcs11.lib(str(self.module))
            self.token = library.get_token(token_label=self.token_label)
            try:
                self.session = self.token.open(user_pin=self.pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # Logged in by this process through another session (not one of ours).
                self.session = self.token.open(rw=True)
        except pkcs11.exceptions.NoSuchToken as error:
            raise ConfigurationError(
                f"the PKCS#11 module {self.module} has no token labelled {self.token_label!r}"
            ) from error
        except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinInvalid) as error:
            raise ConfigurationError(
                f"the PIN of PKCS#11 token {self.token_label!r} was refused"
            ) from error
        except (OSError, RuntimeError) as error:
            raise ConfigurationError(
                f"cannot open PKCS#11 token {self.token_label!r} with {self.module}: {error!r}"
            ) from error
        return self.session

    def reset(self) -> None:
        self.session = None
        self.handles.clear()

    def close(self) -> None:
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # noqa: BLE001 - closing a broken session is best effort
                pass
        self.reset()


_SESSIONS: dict[tuple[str, str], _TokenSession] = {}
_SESSIONS_LOCK = threading.Lock()


class Pkcs11Backend:
    """Keys in a PKCS#11 token, found by label (= kid)."""

    def __init__(self, *, module: Path | str, token_label: str, pin: str) -> None:
        self.module = Path(module)
        self.token_label = token_label
        self._pin = pin
        self._shared: _TokenSession | None = None

    @property
    def name(self) -> KeystoreBackend:
        return KeystoreBackend.PKCS11

    # -- session ----------------------------------------------------------------------------

    def _token_session(self) -> _TokenSession:
        if self._shared is not None:
            return self._shared
        key = (str(self.module.resolve()), self.token_label)
        with _SESSIONS_LOCK:
            shared = _SESSIONS.get(key)
            if shared is None:
                shared = _SESSIONS[key] = _TokenSession(self.module, self.token_label, self._pin)
            elif shared.pin != self._pin:
                raise ConfigurationError(
                    f"PKCS#11 token {self.token_label!r} is already open in this process with "
                    "another PIN"
                )
            shared.users += 1
            self._shared = shared
        return shared

    def _call(self, action: Callable[[Any, _TokenSession], T]) -> T:
        """Run ``action(session, shared)`` under the lock, reopening a lost session once."""
        pkcs11 = _pkcs11()
        lost = (
            pkcs11.exceptions.SessionClosed,
            pkcs11.exceptions.SessionHandleInvalid,
            pkcs11.exceptions.ObjectHandleInvalid,
            pkcs11.exceptions.UserNotLoggedIn,
            pkcs11.exceptions.DeviceRemoved,
            pkcs11.exceptions.TokenNotPresent,
        )
        shared = self._token_session()
        with shared.lock:
            try:
                return action(shared.open(), shared)
            except lost:
                shared.reset()
                return action(shared.open(), shared)

    def close(self) -> None:
        """Stop using the token; the shared session closes when its last backend closes."""
        shared, self._shared = self._shared, None
        if shared is None:
            return
        with _SESSIONS_LOCK, shared.lock:
            shared.users -= 1
            if shared.users <= 0:
                shared.close()
                _SESSIONS.pop((str(shared.module.resolve()), shared.token_label), None)

    def supports(self, algorithm: KeyAlgorithm) -> bool:
        """Whether the token can generate and sign with ``algorithm``."""
        pkcs11 = _pkcs11()
        Mechanism = pkcs11.Mechanism

        def check(session: Any, shared: _TokenSession) -> bool:
            mechanisms = shared.token.slot.get_mechanisms()
            if algorithm is KeyAlgorithm.ED25519:
                needed = {Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA}
            else:
                needed = {Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA}
            return needed <= set(mechanisms)

        return self._call(check)

    # -- keys -------------------------------------------------------------------------------

    def generate(self, algorithm: KeyAlgorithm) -> NewKey:
        algorithm = KeyAlgorithm(algorithm)
        if not self.supports(algorithm):
            raise ConfigurationError(
                f"PKCS#11 token {self.token_label!r} cannot generate {algorithm.value} keys "
                "(mechanism missing); use ES256 or the software keystore"
            )
        pkcs11 = _pkcs11()
        Attribute, KeyType, Mechanism = pkcs11.Attribute, pkcs11.KeyType, pkcs11.Mechanism

        def generate(session: Any, shared: _TokenSession) -> NewKey:
            if algorithm is KeyAlgorithm.ED25519:
                key_type, params = KeyType.EC_EDWARDS, _der.ED25519_PARAMS
                mechanism = Mechanism.EC_EDWARDS_KEY_PAIR_GEN
            else:
                key_type, params = KeyType.EC, _der.P256_PARAMS
                mechanism = Mechanism.EC_KEY_PAIR_GEN
            domain = session.create_domain_parameters(
                key_type, {Attribute.EC_PARAMS: params}, local=True
            )
            temporary = "jisr-new-" + secrets.token_hex(8)
            public, private = domain.generate_keypair(
                mechanism=mechanism,
                store=True,
                label=temporary,
                id=temporary.encode(),
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )
            public_key = _public_key(algorithm, bytes(public[Attribute.EC_POINT]))
            jwk = public_jwk_of(public_key)
            kid = jwk_thumbprint(jwk)
            for half in (public, private):
                half[Attribute.LABEL] = kid
                half[Attribute.ID] = kid.encode("ascii")
            shared.handles[kid] = private
            return NewKey(kid=kid, algorithm=algorithm, public_jwk=jwk, pkcs11_label=kid)

        return self._call(generate)

    def load(self, record: StoredKey) -> SigningKey:
        _check_backend(record, self.name)
        return Pkcs11SigningKey(backend=self, record=record)

    def sign(self, label: str, algorithm: KeyAlgorithm, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        Mechanism, ObjectClass = pkcs11.Mechanism, pkcs11.ObjectClass

        def sign(session: Any, shared: _TokenSession) -> bytes:
            handle = shared.handles.get(label)
            if handle is None:
                try:
                    handle = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                except (
                    pkcs11.exceptions.NoSuchKey,
                    pkcs11.exceptions.MultipleObjectsReturned,
                ) as error:
                    raise ConfigurationError(
                        f"PKCS#11 token {self.token_label!r} holds no single private key "
                        f"labelled {label!r}"
                    ) from error
                shared.handles[label] = handle
            if algorithm is KeyAlgorithm.ED25519:
                return bytes(handle.sign(data, mechanism=Mechanism.EDDSA))
            digest = hashlib.sha256(data).digest()
            return bytes(handle.sign(digest, mechanism=Mechanism.ECDSA))

        try:
            return self._call(sign)
        except pkcs11.exceptions.PKCS11Error as error:
            raise CryptoError(f"PKCS#11 signing with {label!r} failed: {error!r}") from error


def _public_key(algorithm: KeyAlgorithm, ec_point: bytes) -> PublicKey:
    """The public key from ``CKA_EC_POINT`` (DER OCTET STRING, or raw on some tokens)."""
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(
            _der.unwrap_octet_string(ec_point, raw_length=32)
        )
    point = _der.unwrap_octet_string(ec_point, raw_length=65)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
