"""W3C VC 2.0 secured with JOSE (``vc+jwt``): issued by the portal, checked by the one
verifier with the same checks and reasons, through the service and the CLI contract."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jisr.cli import app as cli_app
from jisr.credentials import sdjwt, service, vcjose

from .conftest import software_key

pytestmark = pytest.mark.db
PERSON = "MA:AB123456"


def _issue(instance: Any, **kwargs: Any) -> service.Issued:
    portal = instance.node("portal")
    with instance.node("idp").session() as register, portal.session() as session:
        return service.issue_credential(
            session,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=PERSON,
            format="vc-jose",
            **kwargs,
        )


def _verify(instance: Any, token: str, **kwargs: Any) -> Any:
    portal = instance.node("portal")
    with portal.session() as session:
        return service.local_verifier(session, node=portal).verify(token, **kwargs)


def _failed(result: Any) -> dict[str, str]:
    return {c.check: c.reason for c in result.failed}


def test_round_trip(portal_instance: Any) -> None:
    holder = software_key()
    issued = _issue(portal_instance, holder_key=holder.public_jwk)
    assert issued.format == "vc-jose" and "~" not in issued.token
    header = sdjwt.decode_segment(issued.token.split(".")[0])
    payload = sdjwt.decode_segment(issued.token.split(".")[1])
    assert header["typ"] == "vc+jwt" and header["alg"] == "ES256" and header["cty"] == "vc"
    assert payload["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert payload["type"][0] == "VerifiableCredential"
    assert payload["type"][1].endswith("/credentials/types/birth-certificate/v1")
    assert payload["issuer"].endswith("/credentials/issuers/civil-registry")
    assert payload["id"] == f"urn:uuid:{issued.credential_id}"
    assert payload["validFrom"].endswith("Z") and payload["validUntil"].endswith("Z")
    assert payload["credentialSubject"]["given_name"] == "Fatima Zahra"
    status = payload["credentialStatus"]
    assert status["type"] == vcjose.STATUS_TYPE and status["uri"].endswith("civil-registry-1")
    assert payload["cnf"]["jwk"] == holder.public_jwk
    result = _verify(portal_instance, issued.token)
    assert result.valid, result.to_dict()
    assert [c.check for c in result.checks] == [
        "format",
        "type",
        "issuer",
        "signature",
        "validity",
        "disclosures",
        "key_binding",
        "status",
    ]
    assert result.claims["family_name"] == "El Amrani"


def test_tampered(portal_instance: Any) -> None:
    token = _issue(portal_instance).token
    head, body, signature = token.split(".")
    payload = sdjwt.decode_segment(body)
    payload["credentialSubject"]["given_name"] = "Mallory"
    forged = ".".join((head, sdjwt.b64url(sdjwt.json_bytes(payload)), signature))
    assert _failed(_verify(portal_instance, forged)) == {
        "signature": "bad-signature",
        "status": "not-checked",
    }


def test_expired(portal_instance: Any) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    result = _verify(portal_instance, _issue(portal_instance, now=old).token)
    assert _failed(result) == {"validity": "expired", "status": "not-checked"}


def test_revoked(portal_instance: Any) -> None:
    issued = _issue(portal_instance)
    portal = portal_instance.node("portal")
    with portal.session() as session:
        service.revoke_credential(session, node=portal, credential_id=issued.credential_id)
    assert _failed(_verify(portal_instance, issued.token)) == {"status": "revoked"}


def test_no_holder_proof_when_one_is_asked(portal_instance: Any) -> None:
    result = _verify(portal_instance, _issue(portal_instance).token, nonce="n", aud="a")
    assert _failed(result) == {"key_binding": "missing"}


def test_not_a_vc_document(portal_instance: Any) -> None:
    key = software_key()
    from jisr.core.crypto import jws

    token = jws.sign_compact({"iss": "x"}, key, typ="vc+jwt")
    assert _failed(_verify(portal_instance, token)) == {"format": "malformed"}


def test_cli_contract(portal_instance: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "birth.vcjwt"
    directory = str(portal_instance.path)
    issued = runner.invoke(
        cli_app,
        ["credentials", "issue", "--dir", directory, "--type", "birth-certificate"]
        + ["--person", PERSON, "--format", "vc-jose", "--out", str(out), "--json"],
    )
    assert issued.exit_code == 0, issued.output
    answer = json.loads(issued.output)
    assert answer["format"] == "vc-jose" and answer["out"] == str(out)
    checked = runner.invoke(
        cli_app, ["credentials", "verify", "--dir", directory, "--json", str(out)]
    )
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["valid"] is True
    out.write_text(out.read_text()[:-10] + "AAAAAAAAAA\n")
    refused = runner.invoke(
        cli_app, ["credentials", "verify", "--dir", directory, "--json", str(out)]
    )
    assert refused.exit_code == 1 and json.loads(refused.output)["valid"] is False
