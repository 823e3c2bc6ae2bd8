"""Printed documents: the QR round trip and every refusal, without a database."""

from __future__ import annotations

import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import base45
import cbor2

from jisr.credentials import qr
from jisr.credentials.verify import StaticTrust, Verifier

from .conftest import ISSUER, VCT, FakeStatus, Issuer, software_key

CID = str(uuid.uuid4())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "iat": now,
        "exp": now + 3600,
        "vct": VCT,
        "given_name": "Fatima Zahra",
        "family_name_ar": "العمراني",
        "birthdate": "1990-04-12",
        "status": {"status_list": {"idx": 7, "uri": "https://x/status/1"}},
        "address": {"country": "MA"},
    }
    return base | overrides


def failed(result: Any) -> dict[str, str]:
    return {c.check: c.reason for c in result.failed}


def test_round_trip_is_small_and_valid(issuer: Issuer) -> None:
    text = qr.qr_text(claims(), issuer.key, credential_id=CID)
    assert text.startswith("JISR1:") and len(text) < 700
    result = qr.verify_qr(text, issuer.verifier())
    assert result.valid, result.to_dict()
    assert result.claims["credential_id"] == CID
    assert result.claims["family_name_ar"] == "العمراني"
    assert "address" not in result.claims  # only the essential, flat claims


def test_png_and_svg_render_and_read_back(issuer: Issuer, tmp_path: Path) -> None:
    text = qr.qr_text(claims(), issuer.key, credential_id=CID)
    png = qr.render(text, tmp_path / "doc.png")
    svg = qr.render(text, tmp_path / "doc.svg")
    assert png.read_bytes().startswith(qr.PNG_MAGIC)
    assert svg.read_text().lstrip().startswith("<?xml") or "<svg" in svg.read_text()
    assert qr.read_image(png.read_bytes()) == text


def test_damaged_cose_signature(issuer: Issuer) -> None:
    text = qr.qr_text(claims(), issuer.key, credential_id=CID)
    cose = cbor2.loads(qr.decode_text(text))
    protected, unprotected, payload, signature = cose.value
    damaged = bytes([signature[0] ^ 1]) + signature[1:]
    forged = qr.encode_text(
        cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, damaged]))
    )
    assert failed(qr.verify_qr(forged, issuer.verifier())) == {
        "signature": "bad-signature",
        "status": "not-checked",
    }


def test_changed_claims_break_the_signature(issuer: Issuer) -> None:
    text = qr.qr_text(claims(), issuer.key, credential_id=CID)
    protected, unprotected, payload, signature = cbor2.loads(qr.decode_text(text)).value
    body = cbor2.loads(payload)
    body["c"]["birthdate"] = "1970-01-01"
    forged = qr.encode_text(
        cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(body), signature]))
    )
    assert failed(qr.verify_qr(forged, issuer.verifier()))["signature"] == "bad-signature"


def test_damaged_base45(issuer: Issuer) -> None:
    text = qr.qr_text(claims(), issuer.key, credential_id=CID)
    damaged = text[:20] + "~" + text[21:]
    assert failed(qr.verify_qr(damaged, issuer.verifier())) == {"format": "bad-base45"}


def test_not_zlib_and_not_cose(issuer: Issuer) -> None:
    not_zlib = "JISR1:" + base45.b45encode(b"plain bytes").decode()
    assert failed(qr.verify_qr(not_zlib, issuer.verifier())) == {"format": "bad-compression"}
    not_cose = "JISR1:" + base45.b45encode(zlib.compress(cbor2.dumps([1, 2]))).decode()
    assert failed(qr.verify_qr(not_cose, issuer.verifier())) == {"format": "malformed"}
    assert failed(qr.verify_qr("HC1:ABC", issuer.verifier())) == {"format": "wrong-prefix"}


def test_expired(issuer: Issuer) -> None:
    now = int(time.time())
    text = qr.qr_text(claims(iat=now - 7200, exp=now - 3600), issuer.key, credential_id=CID)
    assert failed(qr.verify_qr(text, issuer.verifier()))["validity"] == "expired"


def test_unknown_kid_and_untrusted_issuer(issuer: Issuer) -> None:
    stranger = software_key()
    text = qr.qr_text(claims(), stranger, credential_id=CID)
    assert failed(qr.verify_qr(text, issuer.verifier()))["signature"] == "unknown-key"
    other = qr.qr_text(claims(iss="https://evil.example/issuers/x"), issuer.key, credential_id=CID)
    verifier = Verifier(StaticTrust({ISSUER: issuer.jwks}), status=FakeStatus())
    assert failed(qr.verify_qr(other, verifier))["issuer"] == "untrusted-issuer"


def test_revoked_when_a_status_source_is_reachable(issuer: Issuer) -> None:
    text = qr.qr_text(claims(), issuer.key, credential_id=CID)
    result = qr.verify_qr(text, issuer.verifier(status=FakeStatus({7: 1})))
    assert failed(result) == {"status": "revoked"}
