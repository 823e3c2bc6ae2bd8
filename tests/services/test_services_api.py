"""The catalogue's read API on the portal node: GovStack services and the full entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from jisr.services import service
from jisr.web.app import create_app


@pytest.fixture(scope="module")
def client(instance_factory: Any) -> Iterator[TestClient]:
    with TestClient(create_app(instance_factory("MA"), roles=["portal"])) as test_client:
        yield test_client


@pytest.fixture
def govstack_service_schema(shared_specs: Path) -> dict[str, Any]:
    import json

    spec = json.loads(
        (shared_specs / "govstack/registration/GovStack_Registration_BB_API.json").read_text()
    )
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return {**schemas["service"], "components": {"schemas": schemas}}


def test_govstack_list(client: TestClient, govstack_service_schema: dict[str, Any]) -> None:
    response = client.get("/services", headers={"accept-language": "fr"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    services = response.json()
    assert len(services) == len(service.list_procedures())
    for item in services:
        jsonschema.validate(item, govstack_service_schema)
    names = {s["id"]: s["name"] for s in services}
    assert names["ma-residence-certificate"] == "Certificat de résidence"


def test_govstack_list_by_name(client: TestClient) -> None:
    response = client.get("/services", params={"name": "résidence"})
    ids = {s["id"] for s in response.json()}
    assert "ma-residence-certificate" in ids
    assert all("ma-birth" not in i for i in ids)
    assert client.get("/services", params={"name": "zzzz"}).json() == []


def test_govstack_one(client: TestClient, govstack_service_schema: dict[str, Any]) -> None:
    response = client.get("/services/ma-residence-certificate")
    assert response.status_code == 200
    body = response.json()
    jsonschema.validate(body, govstack_service_schema)
    assert body["name"] == "شهادة السكنى"  # Arabic by default
    codes = {p["code"] for p in body["serviceBody"]}
    assert {"country", "agency", "fees", "processingTime", "documentFetched"} <= codes


def test_full_entries(client: TestClient) -> None:
    everything = client.get("/api/services").json()
    assert len(everything) == len(service.list_procedures())
    qatari = client.get("/api/services", params={"country": "QA"}).json()
    assert qatari and {p["country"] for p in qatari} == {"QA"}
    one = client.get("/api/services/ma-residence-certificate").json()
    assert one["title"]["en"] == "Certificate of residence"
    assert client.get("/api/services", params={"country": "FR"}).status_code == 400


@pytest.mark.parametrize("path", ["/services/ma-nothing", "/api/services/ma-nothing"])
def test_not_found(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"accept-language": "en"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "procedure-not-found"
    assert response.json()["id"] == "ma-nothing"
