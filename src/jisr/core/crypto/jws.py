"""JWS compact serialization (RFC 7515): sign with any keystore key, verify with joserfc.

Design
------
Signing builds the compact form by hand and signs the signing input with ``SigningKey.sign``,
so software and PKCS#11 keys share one path (a token key cannot be handed to a JOSE library).

Verifying refuses, in this order and each with its own error:

1. anything that is not three base64url segments with a JSON-object header → ``CryptoError``;
2. an ``alg`` outside the caller's allow-list, ``none`` included → ``AlgorithmRefused``; the
   allow-list itself may only name public-key algorithms (no ``HS*``: a public key used as an
   HMAC secret is the classic algorithm-confusion attack);
3. ``crit`` extensions and unencoded payloads (RFC 7797 ``b64``) → ``CryptoError``;
4. a missing kid, or one the key source does not know → ``UnknownKey``;
5. a key whose type does not fit the ``alg`` (an EC key under ``EdDSA``, a JWK whose own
   ``alg`` differs) → ``AlgorithmRefused``;
6. a signature that does not verify (tampered header or payload) → ``SignatureInvalid``.

ES256 (P-256) and EdDSA/Ed25519 signatures are checked with ``cryptography`` directly, on
public keys imported once per JWK; the other public-key algorithms (ES384, ES512, RSA, PS*,
Ed448) by ``joserfc.jws.deserialize_compact`` with an allow-list of exactly that one
algorithm and the imported JWK. joserfc warns that ``EdDSA`` is deprecated (RFC 9864);
accepting it is our explicit choice, so our registry returns it without warning.

Performance (the gateways verify one envelope per message, see docs/exchange.md): each
segment is decoded once (base64url with pybase64 and payloads parsed with orjson when
installed, ``jisr.core.crypto.keystore``), a header segment is parsed once (cached: a
verifier sees few distinct headers, one per key and ``typ``), and a signer's header segment
is encoded once per (alg, kid, typ).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwk as jose_jwk
from joserfc import jws as jose_jws
from joserfc.errors import BadSignatureError, JoseError, UnsupportedAlgorithmError
from sqlalchemy.orm import Session

from jisr.core.crypto.keystore import (
    PublicKey,
    SigningKey,
    b64url_decode,
    b64url_encode,
    json_loads,
    public_key_by_kid,
    public_key_from_jwk,
)
from jisr.core.errors import (
    AlgorithmRefused,
    ConfigurationError,
    CryptoError,
    InvalidInput,
    JisrError,
    SignatureInvalid,
    UnknownKey,
)

DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "EdDSA")
# Public-key algorithms a caller may allow, with the key each needs: (kty, curves or None).
_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}
_RESERVED_HEADERS = frozenset({"alg", "kid", "typ"})
_DEFAULT_ALLOWED = frozenset(DEFAULT_ALGORITHMS)
MAX_HEADER_BYTES = 16 * 1024
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024

KeySource = Mapping[str, Any] | Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class VerifiedJWS:
    """A JWS whose signature checked out: its protected header, payload bytes and kid."""

    header: dict[str, Any]
    payload: bytes
    kid: str

    def json(self) -> Any:
        """The payload parsed as JSON; ``CryptoError`` if it is not JSON."""
        try:
            return json_loads(self.payload)
        except ValueError as error:
            raise CryptoError("the JWS payload is not JSON") from error


class _Registry(jose_jws.JWSRegistry):
    """joserfc's registry with our limits and without the EdDSA deprecation warning."""

    max_header_length = MAX_HEADER_BYTES
    max_payload_length = MAX_PAYLOAD_BYTES * 4 // 3 + 4

    def get_alg(self, name: str) -> Any:
        if name not in self.algorithms or not self.allowed or name not in self.allowed:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_compact(
    payload: bytes | Mapping[str, Any],
    key: SigningKey,
    *,
    typ: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of ``payload`` (mappings as compact JSON) signed with ``key``.

    The protected header holds ``alg`` and ``kid`` of the key, ``typ`` when given, then
    ``headers`` (which may not set ``alg``, ``kid`` or ``typ``).
    """
    if headers:
        header: dict[str, Any] = {"alg": key.algorithm, "kid": key.kid}
        if typ is not None:
            header["typ"] = typ
        for name, value in headers.items():
            if name in _RESERVED_HEADERS:
                raise InvalidInput(f"header {name!r} is set by sign_compact; pass it differently")
            header[name] = value
        segment = b64url_encode(_json_bytes(header))
    else:
        segment = _header_segment(key.algorithm, key.kid, typ)
    body = payload if isinstance(payload, bytes) else _json_bytes(dict(payload))
    signing_input = segment + "." + b64url_encode(body)
    return signing_input + "." + b64url_encode(key.sign(signing_input.encode("ascii")))


@functools.lru_cache(maxsize=256)
def _header_segment(alg: str, kid: str, typ: str | None) -> str:
    # A signer's header is the same at every signature: encoded once (saves a json.dumps
    # and a base64url encoding per envelope, 3-4 us).
    header = {"alg": alg, "kid": kid} | ({"typ": typ} if typ is not None else {})
    return b64url_encode(_json_bytes(header))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate header parameter")  # RFC 7515 §4: reject, never guess
    return dict(pairs)


_MALFORMED = (
    "the JWS is malformed: a part is not base64url, or the header is not JSON or repeats a "
    "parameter"
)


@functools.lru_cache(maxsize=1024)
def _decoded_header(segment: str) -> dict[str, Any]:
    # Parsed once per distinct header segment (a verifier sees one per key and typ): the
    # duplicate-refusing JSON parse cost more than the signature check of an envelope.
    # Callers get a copy; errors are not cached (lru_cache keeps results only).
    try:
        header = json.loads(b64url_decode(segment), object_pairs_hook=_unique_members)
    except ValueError as error:
        raise CryptoError(_MALFORMED) from error
    if not isinstance(header, dict):
        raise CryptoError("the JWS header is not a JSON object")
    return header


def _split(token: str) -> tuple[list[str], dict[str, Any], bytes, bytes]:
    """The three segments, the header (shared: do not change it), payload and signature."""
    if not isinstance(token, str):
        raise CryptoError("a compact JWS is a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise CryptoError(f"a compact JWS has 3 dot-separated parts, this one has {len(parts)}")
    if len(parts[0]) > MAX_HEADER_BYTES or len(parts[1]) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
        raise CryptoError("the JWS is too large")
    try:
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError as error:
        raise CryptoError(_MALFORMED) from error
    return parts, _decoded_header(parts[0]), payload, signature


def _check_allow_list(algorithms: Collection[str]) -> frozenset[str]:
    allowed = frozenset(algorithms)
    refused = sorted(allowed - _KEY_TYPES.keys())
    if refused or not allowed:
        raise ConfigurationError(
            f"only public-key JWS algorithms may be allowed, not {refused or 'none at all'}"
        )
    return allowed


def _resolve(keys: KeySource, kid: str) -> Mapping[str, Any]:
    found: Mapping[str, Any] | None = None
    if callable(keys):
        try:
            found = keys(kid)
        except UnknownKey:
            raise
        except (JisrError, LookupError):
            found = None
    else:
        found = next((k for k in keys.get("keys", ()) if k.get("kid") == kid), None)
    if found is None:
        raise UnknownKey(f"no key with kid {kid!r} is trusted here", kid=kid)
    return found


def _check_key_fits(jwk: Mapping[str, Any], alg: str, kid: str) -> None:
    kty, curves = _KEY_TYPES[alg]
    if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
        raise AlgorithmRefused(
            f"key {kid!r} is a {jwk.get('kty')}/{jwk.get('crv', '-')} key; it cannot verify {alg}",
            alg=alg,
            kid=kid,
        )
    if "alg" in jwk and jwk["alg"] != alg:
        raise AlgorithmRefused(
            f"key {kid!r} is for {jwk['alg']}, the JWS says {alg}", alg=alg, kid=kid
        )
    if "use" in jwk and jwk["use"] != "sig":
        raise AlgorithmRefused(
            f"key {kid!r} is not a signature key (use {jwk['use']!r})", alg=alg, kid=kid
        )


# Importing a JWK and building a registry cost more than the signature check itself
# (benchmarks/crypto_verify.py measured JWS verification at 41% of the raw ES256 rate
# without these caches); both are immutable, so they are kept per key and per algorithm.
@functools.lru_cache(maxsize=4096)
def _imported_key(jwk_json: str) -> Any:
    return jose_jwk.import_key(json.loads(jwk_json))


@functools.lru_cache(maxsize=16)
def _registry_for(alg: str) -> _Registry:
    return _Registry(algorithms=[alg], strict_check_header=False)


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_NATIVE = frozenset(
    {("ES256", "EC", "P-256"), ("EdDSA", "OKP", "Ed25519"), ("Ed25519", "OKP", "Ed25519")}
)


@functools.lru_cache(maxsize=4096)
def _native_key(kty: str, crv: str, x: str, y: str | None) -> PublicKey:
    return public_key_from_jwk({"kty": kty, "crv": crv, "x": x} | ({"y": y} if y else {}))


def _native_verify(
    jwk: Mapping[str, Any], alg: str, kid: str, signing_input: bytes, signature: bytes
) -> bool:
    """ES256 and Ed25519 checked with ``cryptography`` on a key imported once per JWK:
    joserfc's parsing and checks around the same verification cost twice the ES256 check
    itself (py-spy on the gateways, docs/exchange.md)."""
    try:
        key = _native_key(jwk["kty"], jwk["crv"], jwk["x"], jwk.get("y"))
    except (JisrError, KeyError, TypeError, ValueError) as error:
        raise CryptoError(f"the key {kid!r} is not a valid JWK") from error
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, _ECDSA_SHA256)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
        else:  # pragma: no cover - _NATIVE names only P-256 and Ed25519 keys
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_compact(
    token: str,
    keys: KeySource,
    *,
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    typ: str | None = None,
) -> VerifiedJWS:
    """Verify a compact JWS against ``keys``: a JWKS (``{"keys": [...]}``) or a callable
    kid → JWK (returning None or raising ``UnknownKey`` when it does not know the kid).

    ``typ``, when given, must equal the header's ``typ``. See the module docstring for the
    refusals.
    """
    allowed = (
        _DEFAULT_ALLOWED if algorithms is DEFAULT_ALGORITHMS else _check_allow_list(algorithms)
    )
    parts, header, payload, signature = _split(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise AlgorithmRefused(
            f"JWS algorithm {alg!r} is not allowed here (allowed: {', '.join(sorted(allowed))})",
            alg=str(alg),
        )
    if not parts[2]:
        raise CryptoError("the JWS has no signature")
    if "crit" in header:
        raise CryptoError(f"critical JWS extensions are not supported: {header['crit']!r}")
    if "b64" in header:
        raise CryptoError("unencoded JWS payloads (RFC 7797 b64) are not accepted")
    if typ is not None and header.get("typ") != typ:
        raise CryptoError(f"the JWS typ is {header.get('typ')!r}, expected {typ!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnknownKey("the JWS header names no key (kid)", kid="")
    jwk = _resolve(keys, kid)
    _check_key_fits(jwk, alg, kid)
    if (alg, jwk.get("kty"), jwk.get("crv")) in _NATIVE:
        signing_input = token[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")
        if not _native_verify(jwk, alg, kid, signing_input, signature):
            raise SignatureInvalid(f"the JWS signature does not verify with key {kid!r}", kid=kid)
        return VerifiedJWS(header=dict(header), payload=payload, kid=kid)
    try:
        key = _imported_key(json.dumps(jwk, sort_keys=True))
    except (JoseError, ValueError, TypeError) as error:
        raise CryptoError(f"the key {kid!r} is not a valid JWK") from error
    try:
        verified = jose_jws.deserialize_compact(token, key, registry=_registry_for(alg))
    except BadSignatureError as error:
        raise SignatureInvalid(
            f"the JWS signature does not verify with key {kid!r}", kid=kid
        ) from error
    except (JoseError, ValueError) as error:
        raise CryptoError(f"the JWS was refused: {error}") from error
    return VerifiedJWS(header=dict(verified.headers()), payload=verified.payload, kid=kid)


def verify_with_keystore(
    session: Session,
    token: str,
    *,
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    purpose: str | None = None,
    typ: str | None = None,
) -> VerifiedJWS:
    """Verify a JWS signed by one of this node's keys, active or retired (by kid); with
    ``purpose``, only keys of that purpose are accepted."""

    def lookup(kid: str) -> Mapping[str, Any]:
        return public_key_by_kid(session, kid, purpose=purpose)

    return verify_compact(token, lookup, algorithms=algorithms, typ=typ)


class JwsSigner:
    """A keystore key as a compact-JWS signer: ``kid`` and ``sign(payload) -> token``
    (the shape the audit log's ``CheckpointSigner`` expects)."""

    def __init__(self, key: SigningKey, *, typ: str | None = None) -> None:
        self._key = key
        self._typ = typ

    @property
    def kid(self) -> str:
        return self._key.kid

    @property
    def algorithm(self) -> str:
        return self._key.algorithm

    def sign(self, payload: bytes) -> str:
        return sign_compact(payload, self._key, typ=self._typ)


def keystore_verifier(
    session: Session,
    *,
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    purpose: str | None = None,
    typ: str | None = None,
) -> Callable[[str], bytes]:
    """A function token → payload that verifies with this node's keys (``verify_with_keystore``)
    and raises on any refusal (the shape of the audit log's ``CheckpointVerifier``)."""

    def verify(token: str) -> bytes:
        return verify_with_keystore(
            session, token, algorithms=algorithms, purpose=purpose, typ=typ
        ).payload

    return verify
