"""Keys, JWS, X.509 and the instance certificate authority.

* ``keystore``: key backends (software, PKCS#11), key generation, rotation and the JWKS;
* ``jws``: compact JWS signed with any keystore key, verified with joserfc;
* ``ca``: the instance CA (root, certificates, revocation, CRLs, validation);
* ``pkcs11``: the PKCS#11 backend (python-pkcs11, imported only when chosen).

Import the public names from here.
"""

from jisr.core.crypto._der import load_certificate, load_crl, to_der, to_pem
from jisr.core.crypto.ca import (
    CertificateInfo,
    CertificateUsage,
    ca_certificate,
    create_ca,
    issue_certificate,
    latest_crl,
    list_certificates,
    publish_crl,
    revoke_certificate,
    validate_certificate,
)
from jisr.core.crypto.jws import (
    DEFAULT_ALGORITHMS,
    JwsSigner,
    VerifiedJWS,
    keystore_verifier,
    sign_compact,
    verify_compact,
    verify_with_keystore,
)
from jisr.core.crypto.keystore import (
    KeyBackend,
    KeyInfo,
    KeyStatus,
    SigningKey,
    SoftwareBackend,
    active_key,
    generate_key,
    jwk_thumbprint,
    list_keys,
    open_backend,
    public_jwk_of,
    public_jwks,
    public_key_by_kid,
    rotate_key,
    signing_key,
)
from jisr.core.settings import KeyAlgorithm, KeystoreBackend

__all__ = [
    "DEFAULT_ALGORITHMS",
    "CertificateInfo",
    "CertificateUsage",
    "JwsSigner",
    "KeyAlgorithm",
    "KeyBackend",
    "KeyInfo",
    "KeyStatus",
    "KeystoreBackend",
    "SigningKey",
    "SoftwareBackend",
    "VerifiedJWS",
    "active_key",
    "ca_certificate",
    "create_ca",
    "generate_key",
    "issue_certificate",
    "jwk_thumbprint",
    "keystore_verifier",
    "latest_crl",
    "list_certificates",
    "list_keys",
    "load_certificate",
    "load_crl",
    "open_backend",
    "public_jwk_of",
    "public_jwks",
    "public_key_by_kid",
    "publish_crl",
    "revoke_certificate",
    "rotate_key",
    "sign_compact",
    "signing_key",
    "to_der",
    "to_pem",
    "validate_certificate",
    "verify_compact",
    "verify_with_keystore",
]
