"""Issuing, revoking, publishing and verifying on a real portal node, through the CLI
contract and over HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jisr.cli import app as cli_app
from jisr.core.audit.models import AuditRecord
from jisr.core.errors import InvalidInput
from jisr.credentials import doctypes, sdjwt, service
from jisr.credentials.errors import (
    CredentialAlreadyRevoked,
    DocumentTypeNotIssuedHere,
)
from jisr.web.app import create_app

from .conftest import AUD, NONCE, software_key

pytestmark = pytest.mark.db
PERSON = "MA:AB123456"


@pytest.fixture(scope="module")
def holder() -> Any:
    return software_key(ec.generate_private_key(ec.SECP256R1()))


def _issue(instance: Any, doc_type: str = "birth-certificate", **kwargs: Any) -> service.Issued:
    portal = instance.node("portal")
    with instance.node("idp").session() as register, portal.session() as session:
        return service.issue_credential(
            session, node=portal, register=register, doc_type=doc_type, national_id=PERSON, **kwargs
        )


def _verify(instance: Any, token: str, **kwargs: Any) -> Any:
    portal = instance.node("portal")
    with portal.session() as session:
        return service.local_verifier(session, node=portal).verify(token, **kwargs)


class TestIssue:
    @pytest.mark.parametrize(
        "doc_type",
        [
            "birth-certificate",
            "residence-certificate",
            "identity-attestation",
            "business-registration",
        ],
    )
    def test_every_moroccan_type(self, portal_instance: Any, doc_type: str) -> None:
        issued = _issue(portal_instance, doc_type)
        result = _verify(portal_instance, issued.token)
        assert result.valid, result.to_dict()
        doc = doctypes.get_type(doc_type)
        assert set(c.name for c in doc.claims) <= result.claims.keys()
        assert result.claims["vct"].endswith(doc.vct_path)
        header = sdjwt.decode_segment(issued.token.split(".")[0])
        assert header["typ"] == "dc+sd-jwt" and header["alg"] == "ES256"

    def test_qatari_type_is_not_issued_in_morocco(self, portal_instance: Any) -> None:
        with pytest.raises(DocumentTypeNotIssuedHere):
            _issue(portal_instance, "residence-permit")

    def test_unknown_format(self, portal_instance: Any) -> None:
        with pytest.raises(InvalidInput):
            _issue(portal_instance, format="jwt_vc_json")

    def test_holder_binding_and_audit(self, portal_instance: Any, holder: Any) -> None:
        issued = _issue(portal_instance, holder_key=holder.public_jwk, actor="test")
        shown = sdjwt.key_binding_jwt(
            sdjwt.present(issued.token, [("given_name",), ("birthdate",)]),
            holder,
            nonce=NONCE,
            aud=AUD,
            iat=int(time.time()),
        )
        result = _verify(portal_instance, shown, nonce=NONCE, aud=AUD)
        assert result.valid, result.to_dict()
        assert "family_name" not in result.claims
        with portal_instance.node("portal").session() as session:
            record = session.scalars(
                sa.select(AuditRecord)
                .where(AuditRecord.event == "credential.issued")
                .order_by(AuditRecord.id.desc())
            ).first()
            assert record is not None and record.subject == "MAAB123456"
            assert json.loads(record.data)["id"] == issued.credential_id

    def test_revoke(self, portal_instance: Any) -> None:
        issued = _issue(portal_instance)
        portal = portal_instance.node("portal")
        with portal.session() as session:
            service.revoke_credential(session, node=portal, credential_id=issued.credential_id)
        assert _verify(portal_instance, issued.token).check("status").reason == "revoked"
        with portal.session() as session, pytest.raises(CredentialAlreadyRevoked):
            service.revoke_credential(session, node=portal, credential_id=issued.credential_id)


class TestCli:
    def test_contract(self, portal_instance: Any, tmp_path: Path, holder: Any) -> None:
        runner = CliRunner()
        directory = str(portal_instance.path)
        key_file = tmp_path / "holder.jwk"
        key_file.write_text(json.dumps(holder.public_jwk))
        out = tmp_path / "birth.sdjwt"
        issued = runner.invoke(
            cli_app,
            [
                "credentials",
                "issue",
                "--dir",
                directory,
                "--type",
                "birth-certificate",
                "--person",
                PERSON,
                "--holder-key",
                str(key_file),
                "--out",
                str(out),
                "--json",
            ],
        )
        assert issued.exit_code == 0, issued.output
        answer = json.loads(issued.stdout)
        assert set(answer) == {"id", "format", "out"}
        assert answer["format"] == "sd-jwt" and answer["out"] == str(out)

        verified = runner.invoke(
            cli_app, ["credentials", "verify", "--dir", directory, "--json", str(out)]
        )
        assert verified.exit_code == 0, verified.output
        report = json.loads(verified.stdout)
        assert set(report) == {"valid", "checks"} and report["valid"] is True
        assert all({"check", "ok", "reason"} <= set(c) for c in report["checks"])

        revoked = runner.invoke(
            cli_app, ["credentials", "revoke", "--dir", directory, answer["id"]]
        )
        assert revoked.exit_code == 0, revoked.output
        refused = runner.invoke(
            cli_app, ["credentials", "verify", "--dir", directory, "--json", str(out)]
        )
        assert refused.exit_code == 1
        failed = [c for c in json.loads(refused.stdout)["checks"] if not c["ok"]]
        assert failed == [
            {"check": "status", "ok": False, "reason": "revoked", "detail": failed[0]["detail"]}
        ]

        jwks = runner.invoke(cli_app, ["credentials", "jwks", "--dir", directory])
        assert jwks.exit_code == 0
        assert all(k["kty"] == "EC" and k["kid"] for k in json.loads(jwks.stdout)["keys"])

    def test_errors_are_sentences(self, portal_instance: Any, tmp_path: Path) -> None:
        runner = CliRunner()
        result = runner.invoke(
            cli_app,
            [
                "credentials",
                "issue",
                "--dir",
                str(portal_instance.path),
                "--type",
                "passport",
                "--person",
                PERSON,
                "--out",
                str(tmp_path / "x"),
            ],
        )
        assert result.exit_code == 1 and "passport" in result.output
        vc_jose = runner.invoke(
            cli_app,
            [
                "credentials",
                "issue",
                "--dir",
                str(portal_instance.path),
                "--type",
                "birth-certificate",
                "--person",
                PERSON,
                "--format",
                "jwt_vc_json",
                "--out",
                str(tmp_path / "x"),
            ],
        )
        assert vc_jose.exit_code == 1 and "sd-jwt or vc-jose" in vc_jose.output


class TestHttp:
    @pytest.fixture
    def client(self, portal_instance: Any) -> Any:
        with TestClient(create_app(portal_instance, roles=["portal"], configure_logs=False)) as c:
            yield c

    def test_published_documents(self, portal_instance: Any, client: TestClient) -> None:
        issued = _issue(portal_instance)
        claims = sdjwt.unpack(
            sdjwt.decode_segment(issued.token.split(".")[1]), issued.token.split("~")[1:-1]
        )
        public_url = portal_instance.settings.public_url
        path = claims["iss"].removeprefix(public_url)
        metadata = client.get(f"/.well-known/jwt-vc-issuer{path}")
        assert metadata.status_code == 200
        assert metadata.json()["issuer"] == claims["iss"]
        assert metadata.json()["jwks"]["keys"]
        vct_path = claims["vct"].removeprefix(public_url)
        for url in (vct_path, f"/.well-known/vct{vct_path}"):
            type_metadata = client.get(url).json()
            assert type_metadata["vct"] == claims["vct"]
            assert {d["locale"] for d in type_metadata["display"]} == {"ar", "fr", "en"}
        status = client.get(claims["status"]["status_list"]["uri"].removeprefix(public_url))
        assert status.headers["content-type"].startswith("application/statuslist+jwt")
        assert "max-age=" in status.headers["cache-control"]
        assert sdjwt.decode_segment(status.text.split(".")[0])["typ"] == "statuslist+jwt"
        assert client.get("/credentials/jwks").json()["keys"]
        assert (
            client.get("/.well-known/jwt-vc-issuer/credentials/issuers/nobody").status_code == 404
        )

    def test_verify_endpoint(self, portal_instance: Any, client: TestClient, holder: Any) -> None:
        issued = _issue(portal_instance, holder_key=holder.public_jwk)
        raw = client.post(
            "/api/credentials/verify",
            content=issued.token,
            headers={"content-type": "application/dc+sd-jwt"},
        )
        assert raw.status_code == 200 and raw.json()["valid"] is True
        shown = sdjwt.key_binding_jwt(
            sdjwt.present(issued.token), holder, nonce="other", aud=AUD, iat=int(time.time())
        )
        answer = client.post(
            "/api/credentials/verify", json={"presentation": shown, "nonce": NONCE, "aud": AUD}
        ).json()
        assert answer["valid"] is False
        assert [(c["check"], c["reason"]) for c in answer["checks"] if not c["ok"]] == [
            ("key_binding", "nonce-mismatch")
        ]
        bad = client.post(
            "/api/credentials/verify", content=b"\xff\xfe", headers={"content-type": "text/plain"}
        )
        assert bad.status_code == 400
