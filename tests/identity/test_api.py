"""The register's HTTP API on the idp node: each route and each refusal, as problem details."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from register_factories import FATIMA, MOHAMMED, person_data

from jisr.core.instance import Instance
from jisr.identity.api import router
from jisr.web import create_app
from jisr.web.app import ROLE_ROUTERS

pytestmark = pytest.mark.db

BASE = "/api/identity/persons"


@pytest.fixture(scope="module")
def client(instance_factory: Any) -> Iterator[TestClient]:
    instance: Instance = instance_factory("MA")
    with TestClient(create_app(instance, roles=["idp"])) as test_client:
        for data in (FATIMA, MOHAMMED):
            assert test_client.post(BASE, json=data).status_code == 201
        yield test_client


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


class TestRead:
    @pytest.mark.parametrize("form", ["MA:AB123456", "MAAB123456", "ma%3Aab123456"])
    def test_by_identifier(self, client: TestClient, form: str) -> None:
        body = client.get(f"{BASE}/{form}").json()
        assert body["national_id"] == "MAAB123456"
        assert body["national_id_display"] == "MA:AB123456"
        assert body["family_name_ar"] == "العمراني"
        assert body["status"] == "alive"

    def test_unknown(self, client: TestClient) -> None:
        body = problem(
            client.get(f"{BASE}/MA:ZZ999999", headers={"accept-language": "en"}),
            404,
            "person-not-found",
        )
        assert body["national_id"] == "MA:ZZ999999"
        assert body["detail"] == "No person with identifier MA:ZZ999999."

    def test_malformed_identifier_in_arabic(self, client: TestClient) -> None:
        body = problem(client.get(f"{BASE}/nonsense"), 400, "invalid-national-id")
        assert body["title"] != "The national identifier is not valid"


class TestSearch:
    def test_arabic_variant(self, client: TestClient) -> None:
        body = client.get(BASE, params={"q": "فاطمه الزهرا العمرانى"}).json()
        assert body["count"] == 1
        assert body["persons"][0]["national_id"] == "MAAB123456"

    def test_latin_variant_and_country(self, client: TestClient) -> None:
        body = client.get(BASE, params={"q": "Muhammad Al Kuwari", "country": "QA"}).json()
        assert [p["national_id"] for p in body["persons"]] == ["QA28435612345"]
        assert client.get(BASE, params={"q": "Muhammad", "country": "MA"}).json()["count"] == 0

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"q": ""},
            {"q": "x", "limit": 0},
            {"q": "x", "limit": 1000},
            {"q": "x", "country": "MAR"},
        ],
    )
    def test_bad_query(self, client: TestClient, params: dict[str, Any]) -> None:
        problem(client.get(BASE, params=params), 400, "invalid-input")

    def test_blank_query(self, client: TestClient) -> None:
        problem(client.get(BASE, params={"q": "   "}), 400, "invalid-person")


class TestCreate:
    def test_duplicate(self, client: TestClient) -> None:
        body = problem(
            client.post(BASE, json=person_data(national_id="maab123456")),
            409,
            "person-already-exists",
        )
        assert body["national_id"] == "MA:AB123456"

    def test_bad_identifier(self, client: TestClient) -> None:
        problem(client.post(BASE, json=person_data(national_id="MA:1")), 400, "invalid-national-id")

    def test_bad_fields(self, client: TestClient) -> None:
        body = problem(
            client.post(BASE, json=person_data(national_id="MA:C1", sex="X", extra=1)),
            400,
            "invalid-input",
        )
        assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "sex"), ("body", "extra")}

    def test_created(self, client: TestClient) -> None:
        response = client.post(BASE, json=person_data(national_id="MA:J654321"))
        assert response.status_code == 201
        assert response.json()["national_id"] == "MAJ654321"


class TestUpdate:
    def test_change_and_death(self, client: TestClient) -> None:
        client.post(BASE, json=person_data(national_id="MA:D111111"))
        response = client.patch(f"{BASE}/MA:D111111", json={"address": "Agdal, Rabat"})
        assert response.status_code == 200
        assert response.json()["address"] == "Agdal, Rabat"
        response = client.post(f"{BASE}/MA:D111111/death", json={"death_date": "2024-01-02"})
        assert response.json()["status"] == "deceased"
        problem(
            client.post(f"{BASE}/MA:D111111/death", json={"death_date": "2024-01-02"}),
            409,
            "person-already-deceased",
        )

    def test_unknown(self, client: TestClient) -> None:
        problem(client.patch(f"{BASE}/MA:ZZ999999", json={"address": "x"}), 404, "person-not-found")

    def test_identifier_cannot_change(self, client: TestClient) -> None:
        response = client.patch(f"{BASE}/MA:AB123456", json={"national_id": "MA:C1"})
        problem(response, 400, "invalid-input")

    def test_required_cannot_be_cleared(self, client: TestClient) -> None:
        problem(
            client.patch(f"{BASE}/MA:AB123456", json={"given_name_ar": None}), 400, "invalid-input"
        )

    def test_death_in_future(self, client: TestClient) -> None:
        problem(
            client.post(f"{BASE}/MA:AB123456/death", json={"death_date": "2999-01-01"}),
            400,
            "invalid-input",
        )


def test_only_on_the_idp_node(instance_factory: Any) -> None:
    instance: Instance = instance_factory("MA")
    client = TestClient(create_app(instance, roles=["portal"]))
    assert client.get(f"{BASE}/MA:AB123456").status_code == 404
    assert "jisr.identity.api:router" in ROLE_ROUTERS["idp"]


def test_openapi_lists_the_refusals() -> None:
    app = FastAPI()
    app.include_router(router)
    spec = app.openapi()
    assert set(spec["paths"][BASE + "/{national_id}"]["get"]["responses"]) >= {"200", "400", "404"}
    assert "409" in spec["paths"][BASE]["post"]["responses"]
