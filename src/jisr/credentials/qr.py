"""Printed documents: a compact QR code for offline verification (in the style of the EU
Digital COVID Certificate).

A full SD-JWT VC needs QR version 38 or more, too large to print; the QR carries instead a
CWT (RFC 8392) with the essential claims of the document and a reference to the full
credential::

    QR text = "JISR1:" + Base45( zlib( COSE_Sign1( CWT claims ) ) )

* COSE_Sign1 (RFC 9052 §4.2), tagged 18: ``[protected, {}, payload, signature]``; the
  protected header is ``{1: -7 (ES256), 4: kid}`` (kid: the issuer key's RFC 7638
  thumbprint, UTF-8); the signature is over ``Sig_structure = ["Signature1", protected,
  h'', payload]``. ES256 in COSE is the raw ``r||s`` of 64 bytes, exactly what
  ``SigningKey.sign`` returns, so software and PKCS#11 keys sign through the keystore.
* CWT claims: ``1`` iss (the issuer identifier of the SD-JWT VC), ``4`` exp, ``6`` iat, then
  text keys: ``vct``, ``cid`` (the credential id: the reference to the full credential),
  ``st`` (``[status list uri, index]``), ``c`` (the essential claims, see ``ESSENTIAL``).

Why no COSE library: pycose cannot sign with a key it does not hold (a PKCS#11 key cannot be
handed to it) and brings its own key model; COSE_Sign1 is a 4-element CBOR array whose
signature input is one more CBOR array, about 40 lines over ``cbor2``, with a strict
decoder that refuses anything else (unprotected headers are ignored, never trusted).

``verify_qr(text, verifier)`` never raises for a bad QR: it returns a
``VerificationResult`` with the checks ``format`` (reasons ``wrong-prefix``, ``bad-base45``,
``bad-compression``, ``malformed``), ``type``, ``issuer``, ``signature``, ``validity`` and
``status``, using the same issuer trust, algorithms, leeway and accepted types as the
SD-JWT verifier it is given.
"""

from __future__ import annotations

import io
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import base45
import cbor2
import segno
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy.orm import Session

from jisr.core.crypto.keystore import SigningKey
from jisr.core.i18n import _
from jisr.core.instance import Node
from jisr.credentials.errors import CredentialNotFound, MalformedCredential
from jisr.credentials.models import IssuedCredential, StatusList
from jisr.credentials.verify import Check, VerificationResult, Verifier

PREFIX = "JISR1:"
COSE_SIGN1_TAG = 18
COSE_ALG, COSE_KID = 1, 4
COSE_ES256 = -7
CWT_ISS, CWT_EXP, CWT_IAT = 1, 4, 6
MAX_QR_TEXT = 4096
MAX_INFLATED = 16 * 1024
# The claims a printed document carries, when its type has them (flat values only).
ESSENTIAL = (
    "national_id",
    "qid",
    "given_name",
    "family_name",
    "given_name_ar",
    "family_name_ar",
    "birthdate",
    "sex",
    "permit_type",
    "registration_number",
    "trade_name",
    "owner_given_name",
    "owner_family_name",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class QrRefused(Exception):
    """A QR that cannot even be decoded; ``reason`` is the machine-readable reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- COSE_Sign1 over cbor2 -------------------------------------------------------------------


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def sign_cose(claims: Mapping[Any, Any], key: SigningKey) -> bytes:
    """A tagged COSE_Sign1 of the CWT ``claims``, ES256, signed through the keystore."""
    if key.algorithm != "ES256":
        raise MalformedCredential(
            _("Printed documents are signed with ES256, not {alg}."), alg=key.algorithm
        )
    protected = cbor2.dumps({COSE_ALG: COSE_ES256, COSE_KID: key.kid.encode("utf-8")})
    payload = cbor2.dumps(dict(claims))
    signature = key.sign(_sig_structure(protected, payload))
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def parse_cose(data: bytes) -> tuple[dict[Any, Any], dict[Any, Any], bytes, bytes]:
    """Protected header, claims, signing input and signature of a COSE_Sign1 (not verified);
    ``QrRefused("malformed")`` for anything else."""
    try:
        item = cbor2.loads(data)
        if isinstance(item, cbor2.CBORTag):
            if item.tag != COSE_SIGN1_TAG:
                raise ValueError(f"CBOR tag {item.tag} is not COSE_Sign1")
            item = item.value
        if not isinstance(item, list | tuple) or len(item) != 4:
            raise ValueError("a COSE_Sign1 is an array of 4 elements")
        protected, _unprotected, payload, signature = item
        if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
            raise ValueError("COSE_Sign1 members have the wrong types")
        header = cbor2.loads(protected) if protected else {}
        claims = cbor2.loads(payload)
        if not isinstance(header, Mapping) or not isinstance(claims, Mapping):
            raise ValueError("the protected header and the claims are CBOR maps")
    except (ValueError, cbor2.CBORDecodeError, TypeError) as error:
        raise QrRefused("malformed", f"not a COSE_Sign1 CWT: {error}") from error
    return dict(header), dict(claims), _sig_structure(protected, payload), signature


# --- QR text ---------------------------------------------------------------------------------


def encode_text(cose: bytes) -> str:
    return PREFIX + str(base45.b45encode(zlib.compress(cose, 9)).decode("ascii"))


def decode_text(text: str) -> bytes:
    """The COSE bytes of a QR text; ``QrRefused`` with ``wrong-prefix``, ``bad-base45`` or
    ``bad-compression``."""
    text = text.strip()
    if len(text) > MAX_QR_TEXT or not text.startswith(PREFIX):
        raise QrRefused("wrong-prefix", f"a Jisr QR starts with {PREFIX}")
    try:
        compressed = base45.b45decode(text[len(PREFIX) :])
    except (ValueError, KeyError, TypeError) as error:
        raise QrRefused("bad-base45", f"the QR is not Base45: {error}") from error
    try:
        inflater = zlib.decompressobj()
        data: bytes = inflater.decompress(compressed, MAX_INFLATED)
        if inflater.unconsumed_tail or not inflater.eof:
            raise zlib.error("truncated or too large")
    except zlib.error as error:
        raise QrRefused("bad-compression", f"the QR is not zlib data: {error}") from error
    return data


def cwt_claims(verified: Mapping[str, Any], *, credential_id: str | None) -> dict[Any, Any]:
    """The CWT claims of a printed document from a verified SD-JWT VC's processed claims."""
    claims: dict[Any, Any] = {
        CWT_ISS: verified["iss"],
        CWT_IAT: int(verified["iat"]),
        CWT_EXP: int(verified["exp"]),
        "vct": verified["vct"],
    }
    if credential_id:
        claims["cid"] = uuid.UUID(credential_id).bytes
    entry = (verified.get("status") or {}).get("status_list")
    if isinstance(entry, dict):
        claims["st"] = [entry["uri"], entry["idx"]]
    claims["c"] = {
        name: verified[name]
        for name in ESSENTIAL
        if isinstance(verified.get(name), str | int | bool)
    }
    return claims


def qr_text(verified: Mapping[str, Any], key: SigningKey, *, credential_id: str | None) -> str:
    return encode_text(sign_cose(cwt_claims(verified, credential_id=credential_id), key))


# --- rendering and reading images ------------------------------------------------------------


def render(text: str, path: Path, *, scale: int = 4) -> Path:
    """Write the QR to ``path``: SVG when it ends with ``.svg``, PNG otherwise (segno; error
    correction Q, as printed documents get creased). Base45 fits QR's alphanumeric mode."""
    code = segno.make_qr(text, error="q")
    kind = "svg" if path.suffix.lower() == ".svg" else "png"
    code.save(str(path), kind=kind, scale=scale, border=4)
    return path


def read_image(data: bytes) -> str:
    """The text of the (first) QR code in an image (PNG, JPEG…), decoded by zxing-cpp."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise MalformedCredential(
            _("The file is not an image: {reason}"), reason=str(error)
        ) from error
    found = zxingcpp.read_barcodes(image)
    if not found:
        raise MalformedCredential(_("No QR code was found in the image."))
    return str(found[0].text)


def is_image(data: bytes) -> bool:
    return data.startswith((PNG_MAGIC, b"\xff\xd8\xff", b"GIF8", b"BM"))


# --- verification ----------------------------------------------------------------------------


def _fail(name: str, reason: str, detail: str) -> Check:
    return Check(name, False, reason, detail)


def _es256_ok(key: Any, signing_input: bytes, signature: bytes) -> bool:
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 64:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_qr(text: str, verifier: Verifier) -> VerificationResult:
    """Check a QR text with ``verifier``'s trust, clock, leeway, accepted types and status
    source. ``claims`` of the result: iss, iat, exp, vct, credential_id, the essential
    claims."""
    try:
        header, claims, signing_input, signature = parse_cose(decode_text(text))
    except QrRefused as error:
        return VerificationResult([_fail("format", error.reason, str(error))])
    checks = [Check("format", True)]
    vct = claims.get("vct")
    if not isinstance(vct, str) or not vct:
        checks.append(_fail("type", "missing-vct", "the document has no vct"))
    elif verifier.accepted_vcts is not None and vct not in verifier.accepted_vcts:
        checks.append(_fail("type", "unaccepted-vct", f"{vct} is not accepted here"))
    else:
        checks.append(Check("type", True, None, vct))
    issuer = claims.get(CWT_ISS)
    keys = verifier.trust.keys_for(issuer) if isinstance(issuer, str) else None
    if keys is None:
        checks.append(_fail("issuer", "untrusted-issuer", f"{issuer} is not a trusted issuer"))
        checks.append(_fail("signature", "not-checked", "the issuer is not trusted"))
    else:
        checks.append(Check("issuer", True, None, str(issuer)))
        kid_bytes = header.get(COSE_KID)
        kid = kid_bytes.decode("utf-8", "replace") if isinstance(kid_bytes, bytes) else None
        chosen = [k for k in keys if k.kid is None or k.kid == kid]
        if header.get(COSE_ALG) != COSE_ES256 or "ES256" not in verifier.algorithms:
            checks.append(_fail("signature", "algorithm-refused", "only ES256 (-7) is allowed"))
        elif not chosen:
            checks.append(_fail("signature", "unknown-key", f"no trusted key {kid!r}"))
        elif any(_es256_ok(k.public_key, signing_input, signature) for k in chosen):
            checks.append(Check("signature", True, None, f"ES256 kid {kid}"))
        else:
            checks.append(_fail("signature", "bad-signature", "the COSE signature does not verify"))
    payload = {"exp": claims.get(CWT_EXP), "iat": claims.get(CWT_IAT)}
    checks.append(
        verifier._validity(
            {k: v for k, v in payload.items() if v is not None}, now=verifier.clock()
        )
    )
    trusted = all(c.ok for c in checks[2:])
    entry = claims.get("st")
    status_claim = (
        {"status_list": {"uri": entry[0], "idx": entry[1]}}
        if isinstance(entry, list | tuple) and len(entry) == 2
        else None
    )
    checks.append(
        verifier._status({"status": status_claim} if status_claim else {}, trusted=trusted)
    )
    cid = claims.get("cid")
    shown: dict[str, Any] = {
        "iss": issuer,
        "iat": claims.get(CWT_IAT),
        "exp": claims.get(CWT_EXP),
        "vct": vct,
        "credential_id": str(uuid.UUID(bytes=cid))
        if isinstance(cid, bytes) and len(cid) == 16
        else None,
    }
    if isinstance(claims.get("c"), Mapping):
        shown.update(claims["c"])
    return VerificationResult(
        checks, claims=shown, header={"alg": "ES256", "kid": str(header.get(COSE_KID, b""))}
    )


# --- the service: print an issued credential -------------------------------------------------


def printed_document(session: Session, *, node: Node, token: str) -> str:
    """The QR text of an SD-JWT VC this node issued (all its disclosures present): verified
    first with the node's own verifier, signed with the same agency issuer key."""
    from jisr.credentials import service

    result = service.local_verifier(session, node=node).verify(token.strip())
    if not result.valid:
        failed = ", ".join(f"{c.check}: {c.reason}" for c in result.failed)
        raise MalformedCredential(
            _("Only a valid credential issued here can be printed ({failed})."), failed=failed
        )
    entry = result.claims["status"]["status_list"]
    name = service.status_list_name(entry["uri"], public_url=node.settings.public_url)
    issued = session.scalars(
        sa.select(IssuedCredential)
        .join(StatusList, StatusList.id == IssuedCredential.status_list_id)
        .where(StatusList.name == name, IssuedCredential.status_index == entry["idx"])
    ).one_or_none()
    if issued is None:
        raise CredentialNotFound(_("No credential with this status entry was issued here."))
    key = service.issuer_key(session, node=node, agency=issued.agency)
    node.record(
        session,
        "credential.printed",
        {"id": issued.credential_id, "type": issued.doc_type},
        subject=issued.subject_national_id,
    )
    return qr_text(result.claims, key, credential_id=issued.credential_id)


__all__ = [
    "ESSENTIAL",
    "PREFIX",
    "QrRefused",
    "cwt_claims",
    "decode_text",
    "encode_text",
    "is_image",
    "parse_cose",
    "printed_document",
    "qr_text",
    "read_image",
    "render",
    "sign_cose",
    "verify_qr",
]
