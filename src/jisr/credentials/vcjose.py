"""W3C Verifiable Credentials 2.0 secured with JOSE (VC-JOSE-COSE, ``vc+jwt``).

The same document as the SD-JWT VC, as one signed JWT whose payload *is* the VC JSON-LD
document (VC-JOSE-COSE §3.1.1, no ``vc`` wrapper claim)::

    header  {"alg": "ES256", "kid": …, "typ": "vc+jwt", "cty": "vc"}
    payload {"@context": ["https://www.w3.org/ns/credentials/v2"],
             "id": "urn:uuid:<credential id>",
             "type": ["VerifiableCredential", "<vct URL>"],
             "issuer": "<public_url>/credentials/issuers/<agency>",
             "validFrom": "2026-…Z", "validUntil": "2026-…Z",
             "credentialSubject": {<the document's claims>},
             "credentialStatus": {"id": "<status list URI>#<idx>",
                                  "type": "TokenStatusListEntry",
                                  "statusPurpose": "revocation",
                                  "idx": <idx>, "uri": "<status list URI>"},
             "cnf": {"jwk": <holder key>}}            (with a holder key)

Revocation uses the same IETF Token Status List entry as the SD-JWT VC, so one bit
revokes both forms. ``TokenStatusListEntry`` is our own status type (no JSON-LD context
defines it yet; W3C BitstringStatusList is the alternative, not done). Nothing is
selectively disclosable: a verifier sees every claim, so prefer SD-JWT VC for holders.

Verification goes through the one verifier (``jisr.credentials.verify.Verifier``), which
detects the format (a JWT with ``typ: vc+jwt`` and no ``~``) and calls ``verify`` here: the
same checks with the same reasons (``disclosures`` is "none", ``key_binding`` is refused
with ``missing`` when a nonce or audience is asked, since a bare ``vc+jwt`` carries no
holder proof).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jisr.credentials import sdjwt

if TYPE_CHECKING:
    from jisr.credentials.verify import VerificationResult, Verifier

VC_JWT_TYP = "vc+jwt"
VC_CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"
STATUS_TYPE = "TokenStatusListEntry"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_payload(
    *,
    credential_id: str,
    issuer: str,
    vct: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    subject: Mapping[str, Any],
    status_uri: str,
    status_index: int,
    holder_key: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The VC 2.0 document (the JWT payload) of one credential."""
    payload: dict[str, Any] = {
        "@context": [VC_CONTEXT_V2],
        "id": f"urn:uuid:{credential_id}",
        "type": ["VerifiableCredential", vct],
        "issuer": issuer,
        "validFrom": _iso(valid_from),
        "validUntil": _iso(valid_until),
        "credentialSubject": dict(subject),
        "credentialStatus": {
            "id": f"{status_uri}#{status_index}",
            "type": STATUS_TYPE,
            "statusPurpose": "revocation",
            "idx": status_index,
            "uri": status_uri,
        },
    }
    if holder_key is not None:
        payload["cnf"] = {"jwk": dict(holder_key)}
    return payload


def is_vc_jose(token: str) -> bool:
    """Whether ``token`` looks like a ``vc+jwt`` (three segments, no ``~``, that typ)."""
    if "~" in token or token.count(".") != 2:
        return False
    try:
        header = sdjwt.decode_segment(token.split(".", 1)[0])
    except sdjwt.SdJwtRefused:
        return False
    return isinstance(header, dict) and header.get("typ") == VC_JWT_TYP


def _seconds(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def _issuer(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def verify(
    verifier: Verifier,
    token: str,
    *,
    nonce: str | None = None,
    aud: str | None = None,
    require_key_binding: bool | None = None,
) -> VerificationResult:
    """Check a ``vc+jwt`` with ``verifier``'s trust, algorithms, clock and status source."""
    from jisr.credentials.verify import Check, VerificationResult, _split_jws

    def fail(name: str, reason: str, detail: str) -> Check:
        return Check(name, False, reason, detail)

    now = verifier.clock()
    try:
        header, payload, signing_input, signature = _split_jws(token)
    except sdjwt.SdJwtRefused as error:
        return VerificationResult([fail("format", error.reason, str(error))])
    context = payload.get("@context")
    types = payload.get("type")
    if (
        not isinstance(context, list)
        or not context
        or context[0] != VC_CONTEXT_V2
        or not isinstance(types, list)
        or "VerifiableCredential" not in types
    ):
        detail = "not a VC 2.0 document (@context, type)"
        return VerificationResult([fail("format", "malformed", detail)], header=header)
    checks: list[Check] = [Check("format", True, None, VC_JWT_TYP)]
    vct = next((t for t in types if isinstance(t, str) and t != "VerifiableCredential"), None)
    if verifier.require_vct and vct is None:
        checks.append(fail("type", "missing-vct", "the credential has no specific type"))
    elif verifier.accepted_vcts is not None and vct not in verifier.accepted_vcts:
        checks.append(fail("type", "unaccepted-vct", f"{vct} is not accepted here"))
    else:
        checks.append(Check("type", True, None, str(vct)))
    issuer_check, keys = verifier._issuer_key(_issuer(payload.get("issuer")), header)
    checks.append(issuer_check)
    signature_check = verifier._signature(
        header, keys if issuer_check.ok else None, signing_input, signature
    )
    checks.append(signature_check)
    times: dict[str, Any] = {}
    for claim, member in (("nbf", "validFrom"), ("exp", "validUntil")):
        if member in payload:
            seconds = _seconds(payload[member])
            times[claim] = seconds if seconds is not None else payload[member]
    validity = verifier._validity(times, now)
    checks.append(validity)
    checks.append(Check("disclosures", True, None, "none (vc+jwt)"))
    if require_key_binding or nonce is not None or aud is not None:
        checks.append(fail("key_binding", "missing", "a vc+jwt carries no holder proof"))
    else:
        checks.append(Check("key_binding", True, None, "not required"))
    status = payload.get("credentialStatus")
    status_claim: dict[str, Any] = {}
    if isinstance(status, dict):
        if status.get("type") != STATUS_TYPE:
            status_claim = {"status": {"status_list": None}}
        else:
            entry = {"idx": status.get("idx"), "uri": status.get("uri")}
            status_claim = {"status": {"status_list": entry}}
    trusted = issuer_check.ok and signature_check.ok and validity.ok
    checks.append(verifier._status(status_claim, trusted=trusted))
    claims = dict(payload.get("credentialSubject") or {})
    claims |= {"iss": _issuer(payload.get("issuer")), "vct": vct}
    return VerificationResult(checks, claims=claims, header=header)


__all__ = ["STATUS_TYPE", "VC_CONTEXT_V2", "VC_JWT_TYP", "build_payload", "is_vc_jose", "verify"]
