"""The few DER operations the keystore and the CA need, written out by hand.

* ``split_signed`` / ``assemble_signed``: an X.509 certificate and a CRL are both
  ``SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }`` (RFC 5280 §4.1, §5.1). The CA
  takes the to-be-signed part and the algorithm identifier from a structure that
  ``cryptography`` built and signed with a throw-away key, and puts its real signature in.
* ``unwrap_octet_string``: PKCS#11 tokens give ``CKA_EC_POINT`` DER-wrapped in an OCTET STRING
  (some give it raw).

* PEM/DER loading and writing of certificates and CRLs (re-exported by ``ca``).
* ``sign_certificate`` / ``sign_crl``: build with ``cryptography``, sign with a keystore key.
  ``cryptography`` signs X.509 only with its own private-key objects (it has no external-signer
  API), so a PKCS#11 key cannot sign through it. The builder signs with a throw-away software
  key of the same algorithm, which fixes the to-be-signed bytes and the signature algorithm
  identifier; the tbs bytes are then signed with ``SigningKey.x509_signature`` (ECDSA: raw
  r||s re-encoded as DER ``Ecdsa-Sig-Value``) and the structure re-assembled. The result is
  loaded again and verified with the issuer's public key. Software keys take the same path.

Only definite-length encodings are accepted, as DER requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from jisr.core.errors import CryptoError
from jisr.core.settings import KeyAlgorithm

if TYPE_CHECKING:
    from jisr.core.crypto.keystore import SigningKey

# Curve OIDs as DER, the value of CKA_EC_PARAMS: secp256r1 (1.2.840.10045.3.1.7), Ed25519
# (1.3.101.112, RFC 8410).
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
ED25519_PARAMS = bytes.fromhex("06032b6570")

_SEQUENCE = 0x30
_BIT_STRING = 0x03
_OCTET_STRING = 0x04


class DerError(ValueError):
    """The bytes are not the DER structure expected."""


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """One DER element: tag, length, value."""
    return bytes([tag]) + encode_length(len(value)) + value


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """``(tag, start of value, end of value)`` of the element at ``offset``."""
    if offset + 2 > len(data):
        raise DerError("truncated DER element")
    tag = data[offset]
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or position + count > len(data):
            raise DerError("unsupported or truncated DER length")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    end = position + length
    if end > len(data):
        raise DerError("DER element longer than its data")
    return tag, position, end


def split_signed(der: bytes) -> tuple[bytes, bytes, bytes]:
    """The three encoded parts of a signed structure: tbs, algorithm identifier, signature.

    The first two are returned whole (tag and length included); the signature is the content
    of the BIT STRING without its unused-bits byte.
    """
    tag, start, end = read_tlv(der)
    if tag != _SEQUENCE or end != len(der):
        raise DerError("a signed structure is one DER SEQUENCE")
    parts: list[bytes] = []
    position = start
    while position < end:
        _, _, part_end = read_tlv(der, position)
        parts.append(der[position:part_end])
        position = part_end
    if len(parts) != 3:
        raise DerError(f"a signed structure has 3 elements, found {len(parts)}")
    tbs, algorithm, bit_string = parts
    tag, value_start, value_end = read_tlv(bit_string)
    if tag != _BIT_STRING or value_end == value_start or bit_string[value_start] != 0:
        raise DerError("the signature is not a whole-byte BIT STRING")
    return tbs, algorithm, bit_string[value_start + 1 : value_end]


def assemble_signed(tbs: bytes, algorithm: bytes, signature: bytes) -> bytes:
    """``SEQUENCE { tbs, algorithm, BIT STRING signature }`` from already-encoded parts."""
    return tlv(_SEQUENCE, tbs + algorithm + tlv(_BIT_STRING, b"\x00" + signature))


def unwrap_octet_string(value: bytes, *, raw_length: int) -> bytes:
    """``value`` without its OCTET STRING wrapper, or as is when it is already ``raw_length``
    bytes long (tokens differ on CKA_EC_POINT)."""
    if len(value) == raw_length:
        return value
    tag, start, end = read_tlv(value)
    if tag != _OCTET_STRING or end != len(value) or end - start != raw_length:
        raise DerError(f"expected an OCTET STRING of {raw_length} bytes")
    return value[start:end]


# --- PEM / DER -------------------------------------------------------------------------------


def to_pem(value: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return value.public_bytes(serialization.Encoding.PEM)


def to_der(value: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return value.public_bytes(serialization.Encoding.DER)


def load_certificate(data: str | bytes) -> x509.Certificate:
    """A certificate from PEM or DER; ``CryptoError`` if it is neither."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as error:
        raise CryptoError("not a valid X.509 certificate (PEM or DER)") from error


def load_crl(data: str | bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER; ``CryptoError`` if it is neither."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(raw)
        return x509.load_der_x509_crl(raw)
    except ValueError as error:
        raise CryptoError("not a valid CRL (PEM or DER)") from error


# --- X.509 signed through the keystore -------------------------------------------------------


def _throwaway(
    algorithm: KeyAlgorithm,
) -> tuple[ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, hashes.SHA256 | None]:
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate(), None
    return ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()


def _resign(draft_der: bytes, tbs: bytes, key: SigningKey) -> bytes:
    """``draft_der`` (signed by a throw-away key) with its signature replaced by ``key``'s."""
    draft_tbs, algorithm, _ = split_signed(draft_der)
    if draft_tbs != tbs:  # pragma: no cover - would mean cryptography changed its encoding
        raise CryptoError("unexpected DER layout of a signed X.509 structure")
    return assemble_signed(tbs, algorithm, key.x509_signature(tbs))


def sign_certificate(
    builder: x509.CertificateBuilder, key: SigningKey, issuer: x509.Certificate | None
) -> x509.Certificate:
    """Sign through the keystore; ``issuer`` None means self-signed."""
    private, algorithm = _throwaway(key.key_algorithm)
    draft = builder.sign(private, algorithm)
    der = _resign(draft.public_bytes(serialization.Encoding.DER), draft.tbs_certificate_bytes, key)
    certificate = x509.load_der_x509_certificate(der)
    try:
        certificate.verify_directly_issued_by(issuer or certificate)
    except (InvalidSignature, TypeError, ValueError) as error:
        raise CryptoError(
            f"the CA key {key.kid} produced a certificate that does not verify"
        ) from error
    return certificate


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, key: SigningKey, ca_cert: x509.Certificate
) -> x509.CertificateRevocationList:
    private, algorithm = _throwaway(key.key_algorithm)
    draft = builder.sign(private, algorithm)
    crl = x509.load_der_x509_crl(
        _resign(draft.public_bytes(serialization.Encoding.DER), draft.tbs_certlist_bytes, key)
    )
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) or (
        not crl.is_signature_valid(public_key)
    ):
        raise CryptoError(f"the CA key {key.kid} produced a CRL that does not verify")
    return crl
