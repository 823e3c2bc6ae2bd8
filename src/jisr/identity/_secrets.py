"""Secrets the identity block derives from the instance's keystore passphrase.

Design
------
The block needs a few symmetric keys of its own: one encrypts TOTP seeds at rest, one keys
the pairwise subject identifiers, one signs CSRF tokens of the login forms. Rather than store
more secrets, each is derived with HKDF-SHA256 from ``Settings.keystore_passphrase`` (the one
secret ``jisr init`` writes to ``secrets.toml``), with the instance code as salt and a
purpose label as ``info``; keys for different purposes are thus independent, and rotating the
passphrase rotates them all (TOTP seeds must then be enrolled again, pairwise ``sub`` values
change: both are documented consequences in docs/identity.md).

TOTP seeds are sealed with AES-256-GCM: ``version(1) || nonce(12) || ciphertext+tag``, the
account's person id as associated data so a sealed seed cannot be moved to another account.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jisr.core.errors import ConfigurationError
from jisr.core.settings import Settings

TOTP_PURPOSE = "jisr/identity/totp-seed/v1"
PAIRWISE_PURPOSE = "jisr/identity/pairwise-sub/v1"
CSRF_PURPOSE = "jisr/identity/csrf/v1"
_SEAL_VERSION = b"\x01"
_NONCE_BYTES = 12


@lru_cache(maxsize=64)
def _derive(passphrase: str, instance_code: str, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=f"jisr:{instance_code}".encode(),
        info=purpose.encode(),
    ).derive(passphrase.encode("utf-8"))


def derive_key(settings: Settings, purpose: str) -> bytes:
    """A 256-bit key for ``purpose``, derived from the keystore passphrase (HKDF-SHA256)."""
    passphrase = settings.keystore_passphrase.get_secret_value()
    if not passphrase:
        raise ConfigurationError("the keystore passphrase is empty")
    return _derive(passphrase, settings.instance_code, purpose)


def seal(settings: Settings, plaintext: bytes, *, context: bytes) -> bytes:
    """Encrypt ``plaintext`` with AES-256-GCM under the TOTP key, bound to ``context``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(derive_key(settings, TOTP_PURPOSE)).encrypt(nonce, plaintext, context)
    return _SEAL_VERSION + nonce + sealed


def unseal(settings: Settings, blob: bytes, *, context: bytes) -> bytes:
    """Decrypt what ``seal`` made; ``ConfigurationError`` if it was not made with this key."""
    if blob[:1] != _SEAL_VERSION or len(blob) < 1 + _NONCE_BYTES + 16:
        raise ConfigurationError("a sealed TOTP seed has an unknown format")
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return AESGCM(derive_key(settings, TOTP_PURPOSE)).decrypt(nonce, sealed, context)
    except InvalidTag as error:
        raise ConfigurationError(
            "a TOTP seed does not decrypt: was the keystore passphrase changed?"
        ) from error


def keyed_hash(settings: Settings, purpose: str, message: str) -> bytes:
    """HMAC-SHA256 of ``message`` under the key of ``purpose``."""
    return hmac.new(derive_key(settings, purpose), message.encode("utf-8"), hashlib.sha256).digest()
