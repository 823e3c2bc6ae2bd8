"""The GovStack client management API over real HTTP: an administrative client's token
(client_credentials, scope client_mgmt) registers and updates relying parties; every other
caller is refused, and every decision is audited."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from oidc_support import (
    ADMIN_CLIENT,
    CLIENT_MGMT,
    Idp,
    admin_token,
    begin,
    create_request,
    exchange,
    register_admin,
    register_client,
    register_person,
    sign_in,
    start_idp,
    update_request,
)
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.audit import AuditRecord
from jisr.identity.oidc import service
from jisr.identity.oidc.models import OidcToken

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def idp(instance_factory: Any) -> Iterator[Idp]:
    for served in start_idp(instance_factory("MA")):
        register_admin(served)
        register_admin(served, "no-scope-admin")
        register_client(served, "portal-ma")
        register_person(served, "MAAB123456")
        yield served


@pytest.fixture(scope="module")
def token(idp: Idp) -> str:
    return admin_token(idp)


def post(idp: Idp, body: Any, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(idp.endpoint(CLIENT_MGMT), json=body, headers=headers)


def put(idp: Idp, client_id: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.put(idp.endpoint(f"{CLIENT_MGMT}/{client_id}"), json=body, headers=headers)


def error_code(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response"] is None and len(body["errors"]) == 1
    code: str = body["errors"][0]["errorCode"]
    return code


def audit_events(idp: Idp, event: str) -> list[dict[str, Any]]:
    with idp.instance.node("idp").session() as session:
        rows = session.scalars(
            sa.select(AuditRecord).where(AuditRecord.event == event).order_by(AuditRecord.seq)
        )
        return [json.loads(row.data) | {"actor": row.actor} for row in rows]


class TestAdministrativeClient:
    def test_cli_registers_one_and_it_gets_a_token(self, idp: Idp) -> None:
        result = CliRunner().invoke(
            app,
            [
                "identity",
                "client",
                "add",
                "--dir",
                str(idp.instance.path),
                "--name",
                "IAM",
                "--client-id",
                "iam-cli",
                "--grant",
                "client_credentials",
                "--scope",
                "client_mgmt",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        idp.secrets["iam-cli"] = json.loads(result.output)["client_secret"]
        response = httpx.post(
            idp.endpoint("/oauth/token"),
            data={"grant_type": "client_credentials", "scope": "client_mgmt"},
            auth=("iam-cli", idp.secrets["iam-cli"]),
        )
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "client_mgmt"
        assert "refresh_token" not in response.json() and "id_token" not in response.json()

    def test_an_administrative_client_cannot_log_people_in(self, idp: Idp) -> None:
        response = httpx.get(
            idp.endpoint("/authorize"),
            params={"client_id": ADMIN_CLIENT, "response_type": "code", "scope": "openid"},
        )
        assert response.status_code == 400

    def test_a_relying_party_cannot_use_client_credentials(self, idp: Idp) -> None:
        response = httpx.post(
            idp.endpoint("/oauth/token"),
            data={"grant_type": "client_credentials", "scope": "client_mgmt"},
            auth=("portal-ma", idp.secrets["portal-ma"]),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "unauthorized_client"

    def test_client_credentials_goes_alone(self, idp: Idp) -> None:
        with pytest.raises(Exception, match="administrative"):
            register_client(idp, "mixed", grant_types=["client_credentials", "authorization_code"])


class TestCreate:
    def test_registers_a_private_key_jwt_client(self, idp: Idp, token: str) -> None:
        response = post(idp, create_request("e-health-service"), token)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["response"] == {"clientId": "e-health-service"}
        assert body["errors"] == []
        with idp.instance.node("idp").session() as session:
            info = service.client_info(session, client_id="e-health-service")
        assert info.auth_method == "private_key_jwt" and info.status == "active"
        registered = audit_events(idp, "identity.client.registered")
        assert {"client_id": "e-health-service", "via": "client-mgmt", "actor": ADMIN_CLIENT} in [
            {k: e.get(k) for k in ("client_id", "via", "actor")} for e in registered
        ]

    def test_duplicate_client_id(self, idp: Idp, token: str) -> None:
        post(idp, create_request("dup-service"), token)
        assert error_code(post(idp, create_request("dup-service"), token)) == (
            "duplicate_client_id"
        )
        rejected = audit_events(idp, "identity.client_mgmt.rejected")
        assert any(e["error"] == "duplicate_client_id" for e in rejected)

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"clientId": ""}, "invalid_client_id"),
            ({"clientName": ""}, "invalid_client_name"),
            ({"relyingPartyId": ""}, "invalid_rp_id"),
            ({"logoUri": ""}, "invalid_uri"),
            ({"redirectUris": []}, "invalid_redirect_uri"),
            ({"authContextRefs": ["idbb:acr:invalid"]}, "invalid_acr"),
            ({"userClaims": ["invalid_claims"]}, "invalid_claim"),
            ({"grantTypes": ["invalid_code"]}, "invalid_grant_type"),
            ({"grantTypes": ["client_credentials"]}, "invalid_grant_type"),
            ({"clientAuthMethods": ["invalid_auth_method"]}, "invalid_client_auth"),
            ({"clientAuthMethods": ["client_secret_basic"]}, "invalid_client_auth"),
            ({"publicKey": "not a JWK"}, "invalid_public_key"),
            ({"publicKey": {"kty": "oct", "k": "c2VjcmV0"}}, "invalid_public_key"),
        ],
    )
    def test_invalid_metadata(
        self, idp: Idp, token: str, unique: str, overrides: dict[str, Any], code: str
    ) -> None:
        assert error_code(post(idp, create_request(f"c-{unique}", **overrides), token)) == code
        with idp.instance.node("idp").session() as session:
            assert service.get_client(session, f"c-{unique}") is None

    @pytest.mark.parametrize(
        "body",
        [
            None,
            [],
            {"requestTime": "2011-10-05"},
            {"request": "x"},
        ],
    )
    def test_invalid_body(self, idp: Idp, token: str, body: Any) -> None:
        assert error_code(post(idp, body, token)) == "invalid_request"

    def test_missing_field_names_its_code(self, idp: Idp, token: str) -> None:
        body = create_request("m-service")
        del body["request"]["redirectUris"]
        assert error_code(post(idp, body, token)) == "invalid_redirect_uri"

    @pytest.mark.parametrize("when", ["2011-10-05", "2011-10-05T14:48:00.000Z", "tomorrow"])
    def test_invalid_request_time(self, idp: Idp, token: str, unique: str, when: str) -> None:
        body = create_request(f"t-{unique}") | {"requestTime": when}
        assert error_code(post(idp, body, token)) == "invalid_request"

    def test_error_messages_follow_the_language(self, idp: Idp, token: str) -> None:
        body = create_request("", clientName="x")
        headers = {"authorization": f"Bearer {token}", "accept-language": "fr"}
        response = httpx.post(idp.endpoint(CLIENT_MGMT), json=body, headers=headers)
        assert response.json()["errors"][0]["errorMessage"].startswith("Un identifiant")


class TestAuthorisation:
    def test_no_token(self, idp: Idp) -> None:
        response = post(idp, create_request("x-none"), None)
        assert response.status_code == 401
        assert response.json()["error"] == "missing_authorization"

    def test_bad_token(self, idp: Idp) -> None:
        response = post(idp, create_request("x-bad"), "not-a-token")
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert "invalid_token" in response.headers["www-authenticate"]

    def test_expired_token(self, idp: Idp) -> None:
        expired = admin_token(idp)
        with idp.instance.node("idp").session() as session:
            row = session.scalars(
                sa.select(OidcToken).where(OidcToken.access_token_hash == service.digest(expired))
            ).one()
            row.expires_at = row.issued_at - dt.timedelta(seconds=1)
        response = put(idp, "portal-ma", update_request(), expired)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"

    def test_token_without_the_scope(self, idp: Idp) -> None:
        scopeless = admin_token(idp, "no-scope-admin", scope="")
        response = post(idp, create_request("x-scope"), scopeless)
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"

    def test_a_persons_access_token_is_refused(self, idp: Idp) -> None:
        rp = idp.client("portal-ma")
        with httpx.Client(base_url=idp.url, headers={"accept": "text/html"}) as browser:
            flow = sign_in(browser, begin(idp, rp), "MA:AB123456")
        access = exchange(idp, rp, flow)["access_token"]
        response = post(idp, create_request("x-person"), access)
        assert response.status_code == 403

    def test_refusals_are_audited(self, idp: Idp) -> None:
        post(idp, create_request("x-audit"), "forged")
        refused = audit_events(idp, "identity.client_mgmt.refused")
        assert any(e["client_id"] == "x-audit" and e["error"] == "invalid_token" for e in refused)


class TestUpdate:
    def test_updates_metadata(self, idp: Idp, token: str) -> None:
        post(idp, create_request("upd-service"), token)
        body = update_request(
            clientName="Health Service 2",
            status="inactive",
            redirectUris=["http://example.com/new"],
        )
        response = put(idp, "upd-service", body, token)
        assert response.status_code == 200
        assert response.json() == {
            "responseTime": response.json()["responseTime"],
            "response": {"clientId": "upd-service"},
            "errors": [],
        }
        with idp.instance.node("idp").session() as session:
            info = service.client_info(session, client_id="upd-service")
        assert info.name == "Health Service 2" and info.status == "inactive"
        assert info.redirect_uris == ["http://example.com/new"]

    def test_unknown_client(self, idp: Idp, token: str) -> None:
        assert error_code(put(idp, "e-service", update_request(), token)) == "invalid_client_id"

    def test_a_refused_update_changes_nothing(self, idp: Idp, token: str) -> None:
        post(idp, create_request("keep-service"), token)
        body = update_request(clientName="Changed", redirectUris=[""])
        assert error_code(put(idp, "keep-service", body, token)) == "invalid_redirect_uri"
        with idp.instance.node("idp").session() as session:
            assert service.client_info(session, client_id="keep-service").name == ("Health Service")

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"clientName": ""}, "invalid_client_name"),
            ({"logoUri": ""}, "invalid_uri"),
            ({"status": "gone"}, "invalid_request"),
            ({"userClaims": ["invalid_claims"]}, "invalid_claim"),
            ({"authContextRefs": ["idbb:acr:invalid"]}, "invalid_acr"),
            ({"grantTypes": ["invalid_code"]}, "invalid_grant_type"),
            ({"clientAuthMethods": ["invalid_auth_method"]}, "invalid_client_auth"),
        ],
    )
    def test_invalid_metadata(
        self, idp: Idp, token: str, overrides: dict[str, Any], code: str
    ) -> None:
        post(idp, create_request("inv-service"), token)
        assert error_code(put(idp, "inv-service", update_request(**overrides), token)) == code
