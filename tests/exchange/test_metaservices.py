"""Service metadata through the client gateway: exact answers of ``listClients``,
``listMethods``, ``allowedMethods`` and ``getOpenAPI``, and their refusals."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from jisr.core.instance import REGISTRY_NODE
from jisr.exchange import metaservices, service
from jisr.exchange.errors import ExchangeError
from jisr.exchange.identifiers import ServiceId

from .conftest import BIRTHS, OTHER, PORTAL, ExchangeWorld, build_world, message_log

pytestmark = [pytest.mark.db, pytest.mark.slow]

LOOKUP = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/lookup")
SPARE = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/spare")
DOCUMENT = json.dumps(
    {
        "openapi": "3.0.0",
        "info": {"title": "Lookup", "version": "1"},
        "paths": {
            "/people/{id}": {"get": {}, "delete": {}},
            "/people": {"post": {}, "summary": "not an operation"},
        },
    }
)
META = "/r1/MA/GOV/CIVIL-REGISTRY/BIRTHS"


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[ExchangeWorld]:
    made = build_world(instance_factory("MA"))
    try:
        registry = made.instance.node(REGISTRY_NODE)
        with registry.session() as session:
            # The spare document is unique to this world: gateways cache documents by SHA-256
            # for the whole process, and the SQLite and PostgreSQL worlds share a process.
            made.spare_document = DOCUMENT.replace("Lookup", f"S-{uuid.uuid4().hex}")  # type: ignore[attr-defined]
            for extra, document in ((LOOKUP, DOCUMENT), (SPARE, made.spare_document)):  # type: ignore[attr-defined]
                service.add_service(
                    session, service=extra, base_url=made.provider.url, openapi=document
                )
            service.grant_access(session, service=LOOKUP, client=PORTAL, method="GET")
        for running in made.gateways.values():
            assert running.refresh_now(), running.runtime.last_refresh_error
    except BaseException:
        made.close()
        raise
    yield made
    made.close()


def get(world: ExchangeWorld, path: str, client: str | None = str(PORTAL), **params: str) -> Any:
    headers = {"X-Road-Client": client} if client else {}
    return httpx.get(world.client_url + path, headers=headers, params=params, timeout=20)


def endpoints(body: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        s["serviceCode"]: [(e["method"], e["path"]) for e in s["endpointList"]["member"]]
        for s in body["member"]
    }


def test_a_document_changed_at_the_registry_is_refused(world: ExchangeWorld) -> None:
    """The gateway accepts only the document whose SHA-256 its signed configuration lists
    (run before anything fetched ``spare``'s document)."""
    registry = world.instance.node(REGISTRY_NODE)
    update = sa.text("UPDATE exchange_services SET openapi = :doc WHERE code = 'spare'")
    with registry.engine.begin() as connection:
        connection.execute(update, {"doc": DOCUMENT.replace("Lookup", "Forged")})
    try:
        refused = get(world, META + "/getOpenAPI", serviceCode="spare")
        assert refused.status_code == 404
        assert "configuration lists" in refused.json()["message"]
    finally:
        with registry.engine.begin() as connection:
            connection.execute(update, {"doc": world.spare_document})  # type: ignore[attr-defined]


def test_list_methods(world: ExchangeWorld) -> None:
    response = get(world, META + "/listMethods")
    assert response.status_code == 200, response.text
    body = response.json()
    assert endpoints(body) == {
        "birth-record": [("*", "*")],
        "lookup": [("GET", "/people/*"), ("DELETE", "/people/*"), ("POST", "/people")],
        "spare": [("GET", "/people/*"), ("DELETE", "/people/*"), ("POST", "/people")],
    }
    lookup = next(s for s in body["member"] if s["serviceCode"] == "lookup")
    assert lookup | {"endpointList": None} == {
        "objectType": "SERVICE",
        "serviceType": "OPENAPI",
        "instanceId": "MA",
        "memberClass": "GOV",
        "memberCode": "CIVIL-REGISTRY",
        "applicationCode": "BIRTHS",
        "serviceCode": "lookup",
        "endpointList": None,
    }
    only = get(world, META + "/listMethods", serviceId="lookup").json()
    assert list(endpoints(only)) == ["lookup"]
    assert get(world, META + "/listMethods", serviceId="nothing").json() == {"member": []}


def test_allowed_methods_are_the_clients_rights(world: ExchangeWorld) -> None:
    body = get(world, META + "/allowedMethods").json()
    assert endpoints(body) == {
        "birth-record": [("GET", "/births/*"), ("POST", "/echo")],
        "lookup": [("GET", "*")],
    }
    assert get(world, META + "/allowedMethods", client=str(OTHER)).json() == {"member": []}


def test_get_openapi(world: ExchangeWorld) -> None:
    response = get(world, META + "/getOpenAPI", serviceCode="lookup")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.text == DOCUMENT
    for params, type_, status in (
        ({}, "Client.BadRequest", 400),
        ({"serviceCode": "_bad"}, "Client.BadRequest", 400),
        ({"serviceCode": "nothing"}, "Server.ClientProxy.UnknownService", 400),
        ({"serviceCode": "birth-record"}, "Server.ClientProxy.ServiceDescriptionNotFound", 404),
    ):
        refused = get(world, META + "/getOpenAPI", **params)
        assert (refused.status_code, refused.headers["x-road-error"]) == (status, type_)


def test_list_clients(world: ExchangeWorld) -> None:
    response = get(world, "/listClients", client=None)
    assert response.status_code == 200
    clients = response.json()["member"]
    assert {"name": "Civil registry", "id": {"objectType": "MEMBER", "instanceId": "MA",
            "memberClass": "GOV", "memberCode": "CIVIL-REGISTRY"}} in clients  # fmt: skip
    applications = [c["id"].get("applicationCode") for c in clients]
    assert applications.count(BIRTHS.code) == 1 and len(clients) == 5
    assert get(world, "/listClients", client=None, instanceId="QA").json() == {"member": []}


def test_metaservice_needs_a_known_client_and_get(world: ExchangeWorld) -> None:
    assert get(world, META + "/listMethods").status_code == 200  # logged as a meta call
    refused = get(world, META + "/listMethods", client=None)
    assert refused.headers["x-road-error"] == "Client.InvalidClientIdentifier"
    posted = httpx.post(
        world.client_url + META + "/listMethods", headers={"X-Road-Client": str(PORTAL)}
    )
    assert posted.headers["x-road-error"] == "Client.BadRequest"
    unknown = get(world, "/r1/MA/GOV/CIVIL-REGISTRY/NOPE/listMethods")
    assert unknown.headers["x-road-error"] == "Server.ClientProxy.UnknownService"
    logged = [d for e, d in message_log(world, "gateway-eservices") if e == "meta"]
    assert logged and all(d["status"] == 200 for d in logged)


def test_metaservice_names_are_reserved(world: ExchangeWorld) -> None:
    registry = world.instance.node(REGISTRY_NODE)
    with registry.session() as session, pytest.raises(ExchangeError, match="metaservice"):
        service.add_service(
            session,
            service=ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/listMethods"),
            base_url="http://127.0.0.1:9",
        )


def test_endpoints_without_a_json_document() -> None:
    assert metaservices.endpoints_of(None) == [{"method": "*", "path": "*"}]
    assert metaservices.endpoints_of("openapi: 3.0.0") == [{"method": "*", "path": "*"}]
