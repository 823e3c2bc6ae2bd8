"""The one verifier of SD-JWT VCs: used by the API, the CLI, the demo and (later) the
verifier page.

``Verifier(trust, status=…).verify(presentation, nonce=…, aud=…)`` never raises for a bad
credential: it returns a ``VerificationResult`` whose ``checks`` list every check with
``ok`` and, when it failed, a machine-readable ``reason``. ``valid`` is true only when every
check passed. The checks, in order:

=============  =============================================================================
``format``     compact SD-JWT, JSON header and payload, ``typ`` (``dc+sd-jwt``); a credential
               that fails here gets no other check (reasons: ``malformed``, ``wrong-typ``)
``type``       a ``vct`` string (and one the verifier accepts, when it names some)
``issuer``     ``iss`` is an issuer the trust source knows (``missing-issuer``,
               ``untrusted-issuer``)
``signature``  ``alg`` on the allow-list (``algorithm-refused``: ``none`` and ``HS*`` are never
               on it), ``kid`` among the issuer's keys (``unknown-key``), signature
               (``bad-signature``); ``not-checked`` when the issuer is not trusted
``validity``   ``exp`` (``expired``), ``nbf`` (``not-yet-valid``), ``iat`` not in the future
               (``issued-in-future``), with ``leeway`` seconds of clock skew
``disclosures`` every Disclosure well formed (``malformed-disclosure``), presented once
               (``duplicate-disclosure``), referenced by exactly one digest
               (``unreferenced-disclosure``, ``duplicate-digest``), no name clash
               (``claim-clash``), ``_sd_alg`` sha-256 (``unsupported-sd-alg``)
``key_binding`` KB-JWT present when required (``missing``), ``cnf.jwk`` in the credential
               (``no-holder-key``), ``typ: kb+jwt`` (``wrong-typ``), signature by the holder key
               (``bad-signature``), ``nonce`` and ``aud`` as expected (``nonce-mismatch``,
               ``aud-mismatch``), ``iat`` fresh (``stale``, ``issued-in-future``), ``sd_hash``
               over the presentation (``sd-hash-mismatch``)
``status``     the Token Status List entry: ``revoked``, ``suspended``, or why the list could
               not be used (``status-list-unavailable``…); ``not-checked`` when the credential
               already failed signature, issuer or validity (the draft forbids fetching then)
=============  =============================================================================

Issuer trust is pluggable (``IssuerTrust``): ``StaticTrust`` (issuer -> JWKS) here, and
``jisr.credentials.trust.FederatedTrust`` (this instance's issuers and its federated peers',
from their pinned trust lists), which the API, the CLI and OpenID4VP use.

Performance: public keys are imported once (``import_jwk`` is cached), signatures are
checked with ``cryptography`` directly, each segment is decoded once (headers once per
distinct header). Measured by ``benchmarks/credentials_verify.py``; see docs/credentials.md.
"""

from __future__ import annotations

import functools
import hmac
import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jisr.core.crypto.keystore import PublicKey, public_key_from_jwk
from jisr.core.errors import JisrError
from jisr.credentials import sdjwt
from jisr.credentials.status_list import (
    INVALID,
    STATUS_LIST_TYP,
    SUSPENDED,
    VALID,
    StatusUnavailable,
)

ALGORITHMS: tuple[str, ...] = ("ES256", "EdDSA")
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
CHECKS = (
    "format",
    "type",
    "issuer",
    "signature",
    "validity",
    "disclosures",
    "key_binding",
    "status",
)


@dataclass(frozen=True)
class TrustedKey:
    """An issuer's public key the verifier trusts, with its JOSE ``alg``."""

    kid: str | None
    alg: str
    public_key: PublicKey


@functools.lru_cache(maxsize=4096)
def _import(kty: str, crv: str, x: str, y: str | None) -> PublicKey:
    jwk = {"kty": kty, "crv": crv, "x": x} | ({"y": y} if y is not None else {})
    return public_key_from_jwk(jwk)


def import_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """The ``cryptography`` key of a P-256 or Ed25519 JWK, imported once per key."""
    try:
        return _import(str(jwk["kty"]), str(jwk["crv"]), str(jwk["x"]), jwk.get("y"))
    except (KeyError, TypeError, JisrError) as error:
        raise ValueError(f"not a usable public JWK: {error}") from error


def trusted_key(jwk: Mapping[str, Any]) -> TrustedKey:
    key = import_jwk(jwk)
    alg = jwk.get("alg") or ("EdDSA" if isinstance(key, ed25519.Ed25519PublicKey) else "ES256")
    return TrustedKey(kid=jwk.get("kid"), alg=str(alg), public_key=key)


class IssuerTrust(Protocol):
    """Which issuers a verifier trusts, and their keys."""

    def keys_for(self, issuer: str) -> Collection[TrustedKey] | None:
        """The issuer's keys, or None when the issuer is not trusted."""


class StaticTrust:
    """A fixed set of trusted issuers: issuer identifier -> JWKS (imported once)."""

    def __init__(self, issuers: Mapping[str, Mapping[str, Any]]) -> None:
        self._keys: dict[str, tuple[TrustedKey, ...]] = {
            issuer: tuple(trusted_key(jwk) for jwk in jwks.get("keys", ()))
            for issuer, jwks in issuers.items()
        }

    def keys_for(self, issuer: str) -> Collection[TrustedKey] | None:
        return self._keys.get(issuer)

    @property
    def issuers(self) -> list[str]:
        return list(self._keys)


class StatusSource(Protocol):
    def status(self, uri: str, index: int) -> int: ...


class Check(NamedTuple):
    """One check's outcome. A named tuple, not a frozen dataclass: a verification makes eight
    and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) cost 0.62 us each
    against 0.31 us (measured)."""

    check: str
    ok: bool
    reason: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "reason": self.reason, "detail": self.detail}


@dataclass
class VerificationResult:
    """Every check, and what was verified (``claims``: the processed payload)."""

    checks: list[Check]
    claims: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.check == name)

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "checks": [check.to_dict() for check in self.checks]}


def _ok(name: str, detail: str = "") -> Check:
    return Check(name, True, None, detail)


def _fail(name: str, reason: str, detail: str) -> Check:
    return Check(name, False, reason, detail)


def _signature_ok(key: PublicKey, alg: str, signing_input: bytes, signature: bytes) -> bool:
    try:
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, _ECDSA_SHA256)
            return True
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
            return True
    except InvalidSignature:
        return False
    return False


@functools.lru_cache(maxsize=256)
def _header(segment: str) -> Any:
    # A verifier sees few distinct headers: one per issuer key, and the same KB-JWT header
    # from every wallet of an algorithm; decoded once (saves 2 x 1.0 us a verification,
    # measured). Callers get a copy. Errors are not cached (lru_cache does not keep them).
    return sdjwt.decode_segment(segment)


def _split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS (not verified)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise sdjwt.SdJwtRefused("malformed", "a JWT has three dot-separated parts")
    header = _header(parts[0])
    header = dict(header) if isinstance(header, dict) else header
    payload = sdjwt.decode_segment(parts[1])
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise sdjwt.SdJwtRefused("malformed", "a JWT header and payload are JSON objects")
    try:
        signature = sdjwt.b64url_decode(parts[2])
    except ValueError as error:
        raise sdjwt.SdJwtRefused("malformed", "the JWT signature is not base64url") from error
    signing_input = token[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")
    return header, payload, signing_input, signature


class Verifier:
    """Verifies SD-JWT VC presentations; see the module docstring for the checks."""

    def __init__(
        self,
        trust: IssuerTrust,
        *,
        status: StatusSource | None = None,
        typ: Collection[str] = (sdjwt.SD_JWT_VC_TYP,),
        require_vct: bool = True,
        require_issuer: bool = True,
        accepted_vcts: Collection[str] | None = None,
        algorithms: Iterable[str] = ALGORITHMS,
        leeway: int = 60,
        kb_max_age: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trust = trust
        self.status = status
        self.typ = frozenset(typ)
        self.require_vct = require_vct
        self.require_issuer = require_issuer
        self.accepted_vcts = frozenset(accepted_vcts) if accepted_vcts is not None else None
        self.algorithms = frozenset(a for a in algorithms if a in ALGORITHMS)
        self.leeway = leeway
        self.kb_max_age = kb_max_age
        self.clock = clock

    # -- the issuer-signed part --------------------------------------------------------------

    def _issuer_key(self, issuer: Any, header: Mapping[str, Any]) -> tuple[Check, list[TrustedKey]]:
        if not isinstance(issuer, str) or not issuer:
            if self.require_issuer:
                return _fail("issuer", "missing-issuer", "the credential names no issuer"), []
            issuer = ""
        keys = self.trust.keys_for(issuer)
        if keys is None:
            return _fail("issuer", "untrusted-issuer", f"{issuer} is not a trusted issuer"), []
        kid = header.get("kid")
        # A kid selects the key; a trusted key published without a kid is tried as well.
        chosen = [k for k in keys if kid is None or k.kid is None or k.kid == kid]
        return _ok("issuer", issuer), chosen

    def _signature(
        self,
        header: Mapping[str, Any],
        keys: list[TrustedKey] | None,
        signing_input: bytes,
        signature: bytes,
    ) -> Check:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            return _fail("signature", "algorithm-refused", f"algorithm {alg!r} is not allowed")
        if keys is None:
            return _fail("signature", "not-checked", "the issuer is not trusted")
        if not keys:
            return _fail("signature", "unknown-key", f"no trusted key {header.get('kid')!r}")
        for key in keys:
            if key.alg == alg and _signature_ok(key.public_key, alg, signing_input, signature):
                return _ok("signature", f"{alg} kid {key.kid}")
        return _fail("signature", "bad-signature", "the issuer signature does not verify")

    def _validity(self, payload: Mapping[str, Any], now: float) -> Check:
        for claim in ("exp", "nbf", "iat"):
            if claim in payload and not isinstance(payload[claim], int | float):
                return _fail("validity", "malformed", f"{claim} is not a number")
        if "exp" in payload and now - self.leeway >= payload["exp"]:
            return _fail("validity", "expired", f"expired at {int(payload['exp'])}")
        if "nbf" in payload and now + self.leeway < payload["nbf"]:
            return _fail("validity", "not-yet-valid", f"valid from {int(payload['nbf'])}")
        if "iat" in payload and now + self.leeway < payload["iat"]:
            return _fail("validity", "issued-in-future", f"issued at {int(payload['iat'])}")
        return _ok("validity")

    # -- the holder-signed part --------------------------------------------------------------

    def _key_binding(
        self,
        parsed: sdjwt.Parsed,
        payload: Mapping[str, Any],
        *,
        nonce: str | None,
        aud: str | None,
        required: bool,
        now: float,
    ) -> Check:
        if parsed.kb_jwt is None:
            if required:
                return _fail("key_binding", "missing", "a key-binding JWT is required")
            return _ok("key_binding", "not required")
        cnf = payload.get("cnf")
        jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
        if not isinstance(jwk, dict):
            return _fail("key_binding", "no-holder-key", "the credential has no cnf.jwk")
        try:
            header, body, signing_input, signature = _split_jws(parsed.kb_jwt)
            holder = import_jwk(jwk)
        except (sdjwt.SdJwtRefused, ValueError) as error:
            return _fail("key_binding", "malformed", str(error))
        if header.get("typ") != sdjwt.KB_TYP:
            return _fail("key_binding", "wrong-typ", f"typ is {header.get('typ')!r}")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            return _fail("key_binding", "algorithm-refused", f"algorithm {alg!r} is not allowed")
        if not _signature_ok(holder, alg, signing_input, signature):
            return _fail("key_binding", "bad-signature", "the holder signature does not verify")
        if nonce is not None and body.get("nonce") != nonce:
            return _fail("key_binding", "nonce-mismatch", "the nonce is not the one asked for")
        if aud is not None and body.get("aud") != aud:
            return _fail("key_binding", "aud-mismatch", "the KB-JWT is for another audience")
        iat = body.get("iat")
        if not isinstance(iat, int | float):
            return _fail("key_binding", "malformed", "the KB-JWT has no iat")
        if iat > now + self.leeway:
            return _fail("key_binding", "issued-in-future", f"KB-JWT iat {int(iat)}")
        if iat < now - self.kb_max_age - self.leeway:
            return _fail("key_binding", "stale", f"the KB-JWT is older than {self.kb_max_age}s")
        expected = sdjwt.sd_hash(parsed.without_kb)
        if not hmac.compare_digest(str(body.get("sd_hash", "")), expected):
            return _fail("key_binding", "sd-hash-mismatch", "sd_hash does not cover this SD-JWT")
        return _ok("key_binding")

    def _status(self, payload: Mapping[str, Any], *, trusted: bool) -> Check:
        claim = payload.get("status")
        if claim is None:
            return _ok("status", "no status claim")
        if not trusted:
            return _fail("status", "not-checked", "not fetched for a credential already refused")
        entry = claim.get("status_list") if isinstance(claim, dict) else None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("idx"), int)
            or not isinstance(entry.get("uri"), str)
        ):
            return _fail("status", "malformed", "status.status_list needs idx and uri")
        if self.status is None:
            return _fail("status", "status-list-unavailable", "no status source configured")
        try:
            value = self.status.status(entry["uri"], entry["idx"])
        except StatusUnavailable as error:
            return _fail("status", error.reason, str(error))
        if value == VALID:
            return _ok("status")
        if value == INVALID:
            return _fail("status", "revoked", "the issuer has revoked this credential")
        if value == SUSPENDED:
            return _fail("status", "suspended", "the issuer has suspended this credential")
        return _fail("status", "unknown-status", f"status value {value}")

    # -- the whole -----------------------------------------------------------------------------

    def verify(
        self,
        presentation: str,
        *,
        nonce: str | None = None,
        aud: str | None = None,
        require_key_binding: bool | None = None,
    ) -> VerificationResult:
        """Check ``presentation`` (SD-JWT or SD-JWT+KB, or a W3C ``vc+jwt``: see
        ``jisr.credentials.vcjose``). ``nonce``/``aud``, when given, make key binding
        required (as ``require_key_binding=True`` does)."""
        if "~" not in presentation:
            from jisr.credentials import vcjose

            if vcjose.is_vc_jose(presentation):
                return vcjose.verify(
                    self,
                    presentation,
                    nonce=nonce,
                    aud=aud,
                    require_key_binding=require_key_binding,
                )
        now = self.clock()
        try:
            parsed = sdjwt.parse(presentation)
            header, payload, signing_input, signature = _split_jws(parsed.jwt)
        except sdjwt.SdJwtRefused as error:
            return VerificationResult([_fail("format", error.reason, str(error))])
        if self.typ and header.get("typ") not in self.typ:
            typ = header.get("typ")
            return VerificationResult([_fail("format", "wrong-typ", f"typ is {typ!r}")])
        checks = [_ok("format")]
        if self.require_vct:
            vct = payload.get("vct")
            if not isinstance(vct, str) or not vct:
                checks.append(_fail("type", "missing-vct", "the credential has no vct"))
            elif self.accepted_vcts is not None and vct not in self.accepted_vcts:
                checks.append(_fail("type", "unaccepted-vct", f"{vct} is not accepted here"))
            else:
                checks.append(_ok("type", vct))
        issuer_check, keys = self._issuer_key(payload.get("iss"), header)
        checks.append(issuer_check)
        signature_check = self._signature(
            header, keys if issuer_check.ok else None, signing_input, signature
        )
        checks.append(signature_check)
        validity = self._validity(payload, now)
        checks.append(validity)
        claims: dict[str, Any] = {}
        try:
            claims = sdjwt.unpack(payload, parsed.disclosures)
            checks.append(_ok("disclosures", f"{len(parsed.disclosures)} disclosed"))
        except sdjwt.SdJwtRefused as error:
            checks.append(_fail("disclosures", error.reason, str(error)))
        required = require_key_binding or nonce is not None or aud is not None
        checks.append(
            self._key_binding(parsed, payload, nonce=nonce, aud=aud, required=required, now=now)
        )
        trusted = issuer_check.ok and signature_check.ok and validity.ok
        checks.append(self._status(payload, trusted=trusted))
        return VerificationResult(checks, claims=claims, header=header)

    def verify_status_token(self, token: str) -> dict[str, Any]:
        """Verify a Status List Token with the issuer keys this verifier trusts; its payload,
        or ``ValueError`` saying why not (the ``TokenVerifier`` of ``StatusListCache``)."""
        header, payload, signing_input, signature = _split_jws(token)
        if header.get("typ") != STATUS_LIST_TYP:
            raise ValueError(f"typ is {header.get('typ')!r}, not {STATUS_LIST_TYP}")
        issuer_check, keys = self._issuer_key(payload.get("iss"), header)
        if not issuer_check.ok:
            raise ValueError(issuer_check.detail)
        check = self._signature(header, keys, signing_input, signature)
        if not check.ok:
            raise ValueError(check.detail)
        return payload


def result_json(result: VerificationResult) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False)


__all__ = [
    "ALGORITHMS",
    "CHECKS",
    "Check",
    "IssuerTrust",
    "StaticTrust",
    "StatusSource",
    "TrustedKey",
    "VerificationResult",
    "Verifier",
    "import_jwk",
    "result_json",
    "trusted_key",
]
