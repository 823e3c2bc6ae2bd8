"""POST /api/credentials/offers: an agency desk's client (client_credentials token of the
idp with the ``credential_offer`` scope) makes an OpenID4VCI offer; every refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from jisr.credentials import oid4vci
from jisr.demo.people import FATIMA
from jisr.identity.oidc import service as oidc

pytestmark = pytest.mark.db
PATH = "/api/credentials/offers"


@pytest.fixture(scope="module")
def client(portal_instance: Any) -> Iterator[TestClient]:
    from jisr.web import create_app

    # a loopback URL: Authlib refuses OAuth over plain HTTP elsewhere
    with TestClient(create_app(portal_instance), base_url="http://127.0.0.1:8000") as http:
        yield http


def _token(portal_instance: Any, client: TestClient, scopes: list[str]) -> str:
    with portal_instance.node("idp").session() as session:
        made = oidc.create_client(
            session,
            name="Civil registry desk",
            redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=scopes,
        )
    assert made.secret is not None
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
        auth=(made.client.client_id, made.secret),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_a_desk_makes_an_offer_a_wallet_redeems(portal_instance: Any, client: TestClient) -> None:
    token = _token(portal_instance, client, ["credential_offer"])
    answer = client.post(
        PATH,
        json={"type": "birth-certificate", "person": FATIMA["national_id"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["uri"].startswith("openid-credential-offer://") and len(made["tx_code"]) == 6
    offer = json.loads(parse_qs(urlsplit(made["uri"]).query)["credential_offer"][0])
    grant = offer["grants"][oid4vci.PRE_AUTHORIZED_GRANT]
    redeemed = client.post(
        "/credentials/oid4vci/token",
        data={
            "grant_type": oid4vci.PRE_AUTHORIZED_GRANT,
            "pre-authorized_code": grant["pre-authorized_code"],
            "tx_code": made["tx_code"],
        },
    )
    assert redeemed.status_code == 200, redeemed.text


def test_offers_refused(portal_instance: Any, client: TestClient) -> None:
    body = {"type": "birth-certificate", "person": FATIMA["national_id"]}
    assert client.post(PATH, json=body).status_code == 401
    bogus = client.post(PATH, json=body, headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401
    assert bogus.headers["content-type"].startswith("application/problem+json")
    other = _token(portal_instance, client, ["client_mgmt"])
    wrong_scope = client.post(PATH, json=body, headers={"Authorization": f"Bearer {other}"})
    assert wrong_scope.status_code == 403
    token = _token(portal_instance, client, ["credential_offer"])
    auth = {"Authorization": f"Bearer {token}"}
    nobody = client.post(PATH, json={**body, "person": "MA:ZZ999999"}, headers=auth)
    assert nobody.status_code == 404, nobody.text
    foreign = client.post(PATH, json={**body, "type": "residence-permit"}, headers=auth)
    assert foreign.status_code == 409, foreign.text
    unknown = client.post(PATH, json={**body, "type": "passport"}, headers=auth)
    assert unknown.status_code == 404, unknown.text
