"""GovStack Digital Registries API on the ``registers`` node: every endpoint, every refusal.

Each test makes its own registry database (a unique name), so tests share one server.
Refusals are checked to change nothing: the records and the audit chain stay as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from jisr.core.audit import service as audit
from jisr.core.instance import Instance
from jisr.services import registries
from jisr.web.app import create_app

pytestmark = pytest.mark.db

CLIENT = "MA/GOV/ESERVICES/PORTAL"
HEADERS = {"Information-Mediator-Client": CLIENT, "Accept-Language": "en"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "primaryKey": True},
        "firstName": {"type": "string", "minLength": 1},
        "lastName": {"type": "string"},
        "born": {"type": "string", "format": "date"},
        "children": {"type": "integer", "minimum": 0},
        "owner": {
            "type": "object",
            "properties": {"nid": {"type": "string"}, "name": {"type": "string"}},
        },
    },
    "required": ["firstName"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def instance(instance_factory: Any) -> Instance:
    made: Instance = instance_factory("MA")
    registries.ensure_registers_node(made)
    return made


@pytest.fixture(scope="module")
def client(instance: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(instance, roles=["registers"])) as test_client:
        test_client.headers.update(HEADERS)
        yield test_client


@pytest.fixture
def registry(client: TestClient, unique: str) -> str:
    """A fresh registry ``reg-<unique>`` 1.0 (keys ``P-1``, ``P-2``…; subject ``/owner/nid``)."""
    name = f"reg-{unique}"
    response = client.post(
        "/database/modify",
        json={
            "groupName": "Test",
            "catalogName": "Tests",
            "code": f"T{unique[:8]}",
            "name": name,
            "version": "1.0",
            "schema": SCHEMA,
            "numberFormat": "P-{indexNoByCode}",
            "schemaFlags": [{"name": "personal-id", "path": "/owner/nid"}],
        },
    )
    assert response.status_code == 200, response.text
    return name


def create(client: TestClient, name: str, content: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/data/{name}/1.0/create", json={"write": {"content": content}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contents(client: TestClient, name: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/data/{name}/1.0", params={"pageSize": 100, **params})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def chain_length(instance: Instance) -> int:
    with instance.node("registers").session() as session:
        try:
            return audit.verify_chain(session, registries.AUDIT_CHAIN).records_checked
        except Exception:
            return 0


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def spec_schema(shared_specs: Path, name: str, *path: str) -> dict[str, Any]:
    """A schema of the Database API's JSON template, its refs resolvable."""
    spec = json.loads(
        (shared_specs / "govstack/digital-registries" / name).read_text(encoding="utf-8")
    )
    node: Any = spec
    for part in path:
        node = node[part]
    return {**node, "components": spec["components"]}


# --- create ------------------------------------------------------------------------------------


def test_create_numbers_the_key_and_audits(
    client: TestClient, registry: str, instance: Instance
) -> None:
    before = chain_length(instance)
    body = create(client, registry, {"firstName": "Fatima", "owner": {"nid": "MA:AB123456"}})
    assert body["content"]["id"] == "P-1"
    assert set(body) >= {"content", "uuid", "createdAt", "modifiedAt"}
    second = create(client, registry, {"firstName": "Omar"})
    assert second["content"]["id"] == "P-2"
    given = create(client, registry, {"id": "X-9", "firstName": "Salma"})
    assert given["content"]["id"] == "X-9"
    with instance.node("registers").session() as session:
        report = audit.verify_chain(session, registries.AUDIT_CHAIN)
        assert report.ok
        assert report.records_checked == before + 3
        records = list(audit.export_chain(session, registries.AUDIT_CHAIN))
    last = [r for r in records if r.get("event") == "registries.record.created"][-3:]
    assert [r["actor"] for r in last] == [CLIENT] * 3
    assert last[0]["subject"] == "MA:AB123456"
    assert "Fatima" not in json.dumps(records, ensure_ascii=False)  # hashes, not personal data


def test_create_refuses_schema_violation_and_changes_nothing(
    client: TestClient, registry: str, instance: Instance
) -> None:
    create(client, registry, {"firstName": "Fatima"})
    before = chain_length(instance)
    for bad in (
        {"firstName": ""},
        {"firstName": "A", "born": "1990-13-45"},
        {"firstName": "A", "nickname": "x"},
        {"lastName": "no first name"},
        {"firstName": "A", "children": -1},
    ):
        response = client.post(f"/data/{registry}/1.0/create", json={"write": {"content": bad}})
        assert_problem(response, 422, "schema-violation")
    assert len(contents(client, registry)) == 1
    assert chain_length(instance) == before
    # the numbering did not advance for refused records
    assert create(client, registry, {"firstName": "Omar"})["content"]["id"] == "P-2"


def test_create_refuses_a_duplicate_key(client: TestClient, registry: str) -> None:
    create(client, registry, {"id": "K1", "firstName": "A"})
    response = client.post(
        f"/data/{registry}/1.0/create", json={"write": {"content": {"id": "K1", "firstName": "B"}}}
    )
    assert_problem(response, 409, "duplicate-record")
    assert [c["firstName"] for c in contents(client, registry)] == ["A"]


def test_unknown_registry_is_404(client: TestClient, registry: str) -> None:
    for response in (
        client.post("/data/nope/1.0/create", json={"write": {"content": {"firstName": "A"}}}),
        client.get(f"/data/{registry}/9.9"),
        client.post("/data/nope/1.0/read", json={"query": {"content": {}}}),
        client.delete("/data/nope/1.0/x/delete"),
        client.get("/data/nope/1.0/x/readValue/firstName.json"),
    ):
        assert_problem(response, 404, "registry-not-found")


def test_malformed_bodies_are_400(client: TestClient, registry: str) -> None:
    for body in ({}, {"write": {}}, {"write": {"content": "text"}}, {"write": {"content": [1]}}):
        response = client.post(f"/data/{registry}/1.0/create", json=body)
        assert_problem(response, 400, "invalid-input")
    response = client.post(f"/data/{registry}/1.0/read", json={"write": {"content": {}}})
    assert_problem(response, 400, "invalid-input")


def test_the_client_header_is_required_and_checked(client: TestClient, registry: str) -> None:
    url = f"/data/{registry}/1.0"
    response = client.get(url, headers={"Information-Mediator-Client": ""})
    assert response.status_code == 400
    for bad in ("portal", "MA/GOV", "a b/c/d/e", "MA/GOV/X/Y/Z/W"):
        response = client.get(url, headers={"Information-Mediator-Client": bad})
        assert_problem(response, 400, "bad-query")
    bare = TestClient(client.app)
    assert bare.get(url).status_code == 400
    assert bare.get("/databases").status_code == 400


def test_the_client_may_come_as_x_road_client(
    client: TestClient, registry: str, instance: Instance
) -> None:
    """What a Jisr gateway forwards: the authenticated client as ``X-Road-Client``."""
    create(client, registry, {"id": "XR-1", "firstName": "Fatima", "owner": {"nid": "MA:XR1"}})
    bare = TestClient(client.app)
    forwarded = "MA/GOV/ESERVICES/FORWARDED"
    url = f"/data/{registry}/1.0/read"
    body = {"query": {"content": {"id": "XR-1"}}}
    response = bare.post(url, json=body, headers={"X-Road-Client": forwarded})
    assert response.status_code == 200, response.text
    same = {"X-Road-Client": forwarded, "Information-Mediator-Client": forwarded}
    assert bare.post(url, json=body, headers=same).status_code == 200
    with instance.node("registers").session() as session:
        database = registries.get_database(session, registry, "1.0")
        code = database.code
    usage = bare.get(
        "/data/myPersonalDataUsage",
        params={"userId": "MA:XR1", "databaseId": code},
        headers={"X-Road-Client": forwarded},
    ).json()
    assert [u["readerId"] for u in usage] == [forwarded, forwarded]
    for bad in ("portal", "MA/GOV"):
        refused = bare.post(url, json=body, headers={"X-Road-Client": bad})
        assert_problem(refused, 400, "bad-query")


def test_two_different_clients_are_refused(client: TestClient, registry: str) -> None:
    response = TestClient(client.app).get(
        f"/data/{registry}/1.0",
        headers={"X-Road-Client": CLIENT, "Information-Mediator-Client": "MA/GOV/OTHER/X"},
    )
    assert_problem(response, 400, "bad-query")


def test_the_public_app_does_not_serve_the_registers(instance: Instance) -> None:
    """The registers trust the client id they are sent: served only when named."""
    assert "registers" in instance.nodes
    with TestClient(create_app(instance)) as public:
        public.headers.update(HEADERS)
        for path in ("/databases", "/data/anything/1.0", "/data/myPersonalDataUsage"):
            assert_problem(public.get(path), 404, "not-found")
        assert "registers" not in public.get("/readyz").json()["nodes"]
    with TestClient(create_app(instance, roles=["registers"])) as named:
        named.headers.update(HEADERS)
        assert named.get("/databases").status_code == 200
        assert list(named.get("/readyz").json()["nodes"]) == ["registers"]


# --- read, exists, read-value ----------------------------------------------------------------


def test_read_first_match_and_404(client: TestClient, registry: str) -> None:
    create(client, registry, {"firstName": "Eva", "lastName": "Smith"})
    create(client, registry, {"firstName": "John", "lastName": "Smith", "children": 2})
    response = client.post(
        f"/data/{registry}/1.0/read", json={"query": {"content": {"lastName": "Smith"}}}
    )
    assert response.status_code == 200
    assert response.json()["content"]["firstName"] == "Eva"  # the oldest match
    response = client.post(
        f"/data/{registry}/1.0/read", json={"query": {"content": {"children": 2}}}
    )
    assert response.json()["content"]["firstName"] == "John"
    response = client.post(
        f"/data/{registry}/1.0/read", json={"query": {"content": {"children": "2"}}}
    )
    body = assert_problem(response, 404, "record-not-found")
    assert body["detail"] == "no record found"  # the GovStack message, word for word
    french = client.post(
        f"/data/{registry}/1.0/read",
        json={"query": {"content": {"firstName": "Nobody"}}},
        headers={"Accept-Language": "fr"},
    )
    assert french.status_code == 404 and french.json()["detail"] != "no record found"


def test_read_refuses_unknown_fields(client: TestClient, registry: str) -> None:
    response = client.post(
        f"/data/{registry}/1.0/read", json={"query": {"content": {"FirstName": "Eva"}}}
    )
    assert_problem(response, 400, "bad-query")


def test_nested_query(client: TestClient, registry: str) -> None:
    create(client, registry, {"firstName": "A", "owner": {"nid": "MA:A1", "name": "x"}})
    create(client, registry, {"firstName": "B", "owner": {"nid": "MA:B2", "name": "y"}})
    response = client.post(
        f"/data/{registry}/1.0/read", json={"query": {"content": {"owner": {"nid": "MA:B2"}}}}
    )
    assert response.json()["content"]["firstName"] == "B"


def test_exists(client: TestClient, registry: str) -> None:
    create(client, registry, {"firstName": "John", "lastName": "Bon"})
    url = f"/data/{registry}/1.0/exists"
    yes = client.post(url, json={"query": {"content": {"firstName": "John", "lastName": "Bon"}}})
    assert yes.status_code == 200
    assert yes.json() == {"answer": {"status": True, "message": "Object found from database"}}
    no = client.post(url, json={"query": {"content": {"firstName": "John", "lastName": "X"}}})
    assert no.json()["answer"]["status"] is False
    arabic = client.post(
        url, json={"query": {"content": {"firstName": "John"}}}, headers={"Accept-Language": "ar"}
    )
    assert arabic.json()["answer"]["message"] != "Object found from database"


def test_read_value(client: TestClient, registry: str) -> None:
    made = create(client, registry, {"firstName": "Fatima", "owner": {"nid": "MA:1", "name": "F"}})
    base = f"/data/{registry}/1.0"
    for ref in (made["uuid"], "P-1"):
        response = client.get(f"{base}/{ref}/readValue/firstName.json")
        assert response.status_code == 200
        assert response.json() == {"value": "Fatima"}
    assert client.get(f"{base}/P-1/read-value/owner.json").json() == {
        "value": {"nid": "MA:1", "name": "F"}
    }
    assert client.get(f"{base}/P-1/readValue/owner.nid.json").json() == {"value": "MA:1"}
    text = client.get(f"{base}/P-1/readValue/firstName.txt")
    assert text.status_code == 200 and text.text == "Fatima"
    assert text.headers["content-type"].startswith("text/plain")
    assert_problem(client.get(f"{base}/P-1/readValue/lastName.json"), 404, "field-not-found")
    assert_problem(client.get(f"{base}/P-1/readValue/nickname.json"), 400, "bad-query")
    assert_problem(client.get(f"{base}/P-404/readValue/firstName.json"), 404, "record-not-found")
    assert_problem(client.get(f"{base}/P-1/readValue/firstName.xml"), 400, "bad-query")


# --- list ----------------------------------------------------------------------------------------


def test_list_search_filter_order_and_pages(client: TestClient, registry: str) -> None:
    for first, last in (
        ("John", "Smith"),
        ("Alice", "Johnson"),
        ("Bob", "Small"),
        ("johnny", "Bon"),
        ("Eva", "Sorenz"),
    ):
        create(client, registry, {"firstName": first, "lastName": last})
    everyone = client.get(f"/data/{registry}/1.0").json()
    assert everyone["count"] == 5 and len(everyone["results"]) == 5
    assert "next" not in everyone and "previous" not in everyone
    anywhere = contents(client, registry, search="JOHN")
    assert {c["firstName"] for c in anywhere} == {"John", "Alice", "johnny"}
    in_field = contents(client, registry, search="john", filter="firstName")
    assert [c["firstName"] for c in in_field] == ["John", "johnny"]
    ordered = contents(client, registry, search="john", filter="firstName", ordering="descending")
    assert [c["firstName"] for c in ordered] == ["johnny", "John"]
    by_last = contents(client, registry, ordering="-lastName")
    assert [c["lastName"] for c in by_last] == ["Sorenz", "Smith", "Small", "Johnson", "Bon"]
    exact = contents(client, registry, **{"query.lastName": "Small"})
    assert [c["firstName"] for c in exact] == ["Bob"]
    newest_first = contents(client, registry, ordering="descending")
    assert newest_first[0]["firstName"] == "Eva"

    first = client.get(f"/data/{registry}/1.0", params={"pageSize": 2}).json()
    assert first["count"] == 5 and len(first["results"]) == 2
    assert first["next"].endswith("page=2") and "previous" not in first
    last = client.get(f"/data/{registry}/1.0", params={"pageSize": 2, "page": 3}).json()
    assert len(last["results"]) == 1 and "next" not in last and "page=2" in last["previous"]
    sorted_page = client.get(
        f"/data/{registry}/1.0", params={"pageSize": 2, "page": 2, "ordering": "lastName"}
    ).json()
    assert [c["lastName"] for c in sorted_page["results"]] == ["Small", "Smith"]
    assert sorted_page["count"] == 5


def test_list_arabic_search(client: TestClient, registry: str) -> None:
    create(client, registry, {"firstName": "فاطمة الزهراء", "lastName": "العمراني"})
    found = contents(client, registry, search="فاطمه الزهرا")
    assert [c["lastName"] for c in found] == ["العمراني"]
    assert contents(client, registry, search="%") == []  # LIKE wildcards are literal


def test_list_nested_exact_query(client: TestClient, registry: str) -> None:
    create(client, registry, {"firstName": "A", "owner": {"nid": "MA:A1"}})
    create(client, registry, {"firstName": "B", "owner": {"nid": "MA:B2"}})
    found = contents(client, registry, **{"query.owner.nid": "MA:B2"})
    assert [c["firstName"] for c in found] == ["B"]


def test_list_of_an_empty_registry(client: TestClient, registry: str) -> None:
    body = client.get(f"/data/{registry}/1.0").json()
    assert body == {"count": 0, "results": []}


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"pageSize": 0},
        {"pageSize": 101},
        {"page": "two"},
        {"filter": "FirstName", "search": "x"},
        {"ordering": "shoeSize"},
        {"query.shoeSize": "42"},
        {"query.": "x"},
        {"search": "x" * 201},
    ],
)
def test_list_refuses_bad_queries(
    client: TestClient, registry: str, params: dict[str, Any]
) -> None:
    response = client.get(f"/data/{registry}/1.0", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- update, update-entries, update-or-create, delete -----------------------------------------


def test_update_merges_and_audits(client: TestClient, registry: str, instance: Instance) -> None:
    made = create(client, registry, {"firstName": "Philip", "lastName": "Red", "children": 1})
    before = chain_length(instance)
    response = client.put(
        f"/data/{registry}/1.0/update",
        json={
            "query": {"content": {"firstName": "Philip"}},
            "write": {"content": {"firstName": "Elsa", "children": None}},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["content"] == {"id": "P-1", "firstName": "Elsa", "lastName": "Red"}
    assert body["uuid"] == made["uuid"] and body["modifiedAt"] > made["modifiedAt"]
    # without a query, the primary key in the written data names the record
    response = client.put(
        f"/data/{registry}/1.0/update", json={"write": {"content": {"id": "P-1", "lastName": "W"}}}
    )
    assert response.json()["content"]["lastName"] == "W"
    assert chain_length(instance) == before + 2


def test_update_refusals_change_nothing(
    client: TestClient, registry: str, instance: Instance
) -> None:
    create(client, registry, {"firstName": "Ana", "lastName": "Smith"})
    create(client, registry, {"firstName": "Bob", "lastName": "Smith"})
    before = (contents(client, registry), chain_length(instance))
    url = f"/data/{registry}/1.0/update"
    write = {"content": {"lastName": "Jones"}}
    assert_problem(
        client.put(url, json={"query": {"content": {"lastName": "Smith"}}, "write": write}),
        409,
        "ambiguous-query",
    )
    assert_problem(
        client.put(url, json={"query": {"content": {"firstName": "Zed"}}, "write": write}),
        404,
        "record-not-found",
    )
    assert_problem(
        client.put(
            url,
            json={
                "query": {"content": {"firstName": "Ana"}},
                "write": {"content": {"children": "many"}},
            },
        ),
        422,
        "schema-violation",
    )
    assert_problem(
        client.put(
            url,
            json={"query": {"content": {"firstName": "Ana"}}, "write": {"content": {"id": "P-2"}}},
        ),
        409,
        "duplicate-record",
    )
    assert_problem(client.put(url, json={"write": write}), 400, "bad-query")
    assert (contents(client, registry), chain_length(instance)) == before


def test_update_entries_all_or_none(client: TestClient, registry: str) -> None:
    for first in ("Olga", "Olga", "Casandra"):
        create(client, registry, {"firstName": first})
    url = f"/data/{registry}/1.0/updateEntries"
    body = {"query": {"content": {"firstName": "Olga"}}, "write": {"content": {"firstName": "Al"}}}
    response = client.put(url, json=body)
    assert response.status_code == 200 and response.json()["count"] == 2
    assert [c["firstName"] for c in contents(client, registry)] == ["Al", "Al", "Casandra"]
    # the other spelling; one record would break the schema: none changes
    client.put(
        f"/data/{registry}/1.0/update",
        json={"query": {"content": {"id": "P-3"}}, "write": {"content": {"children": 3}}},
    )
    before = contents(client, registry)
    breaking = {"write": {"content": {"children": 4, "id": "same"}}}
    assert_problem(
        client.put(f"/data/{registry}/1.0/update-entries", json=breaking), 409, "duplicate-record"
    )
    assert contents(client, registry) == before
    nothing = client.put(
        url, json={"query": {"content": {"firstName": "Zed"}}, "write": {"content": {}}}
    )
    assert nothing.json()["count"] == 0


def test_update_or_create(client: TestClient, registry: str) -> None:
    url = f"/data/{registry}/1.0/updateOrCreate"
    body = {
        "query": {"content": {"id": "EE1"}},
        "write": {"content": {"id": "EE1", "firstName": "John", "lastName": "Smith"}},
    }
    created = client.post(url, json=body)
    assert created.status_code == 200 and created.json()["created"] is True
    body["write"]["content"] = {"firstName": "Jack", "lastName": "Sparrow"}
    updated = client.post(f"/data/{registry}/1.0/update-or-create", json=body)
    assert updated.json()["created"] is False
    assert updated.json()["content"] == {"id": "EE1", "firstName": "Jack", "lastName": "Sparrow"}
    assert updated.json()["uuid"] == created.json()["uuid"]
    refused = client.post(
        url,
        json={"query": {"content": {"id": "EE2"}}, "write": {"content": {"lastName": "x"}}},
    )
    assert_problem(refused, 422, "schema-violation")
    assert len(contents(client, registry)) == 1


def test_delete(client: TestClient, registry: str, instance: Instance) -> None:
    made = create(client, registry, {"firstName": "A"})
    create(client, registry, {"firstName": "B"})
    before = chain_length(instance)
    response = client.delete(f"/data/{registry}/1.0/{made['uuid']}/delete")
    assert response.status_code == 204 and response.content == b""
    assert client.delete(f"/data/{registry}/1.0/P-2/delete").status_code == 204
    assert contents(client, registry) == []
    assert_problem(client.delete(f"/data/{registry}/1.0/P-2/delete"), 404, "record-not-found")
    assert chain_length(instance) == before + 2


# --- personal data usage -----------------------------------------------------------------------


def test_my_personal_data_usage(client: TestClient, registry: str, unique: str) -> None:
    code = f"T{unique[:8]}"
    create(client, registry, {"firstName": "F", "owner": {"nid": "MA:AB123456"}})
    create(client, registry, {"firstName": "G", "owner": {"nid": "MA:OTHER1"}})
    hospital = {"Information-Mediator-Client": "MA/GOV/HEALTH/RECORDS"}
    client.post(
        f"/data/{registry}/1.0/read",
        json={"query": {"content": {"firstName": "F"}}},
        headers=hospital,
    )
    client.get(f"/data/{registry}/1.0/P-1/readValue/firstName.json")
    params = {"userId": "MA:AB123456", "databaseId": code}
    for path in ("/data/myPersonalDataUsage", "/data/MyPersonalDataUsage/1.0"):
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        usage = response.json()
        assert [u["readerId"] for u in usage] == [CLIENT, "MA/GOV/HEALTH/RECORDS"]
        assert usage[1]["readerInstitutionId"] == "MA/GOV/HEALTH"
        assert usage[1]["readerApplicationName"] == "RECORDS"
        assert usage[1]["refrences"] == [{"ReferenceID": "P-1"}]
    nobody = client.get("/data/myPersonalDataUsage", params={**params, "userId": "MA:NOONE1"})
    assert nobody.json() == []
    assert_problem(
        client.get("/data/myPersonalDataUsage", params={**params, "userId": "..."}),
        400,
        "bad-query",
    )
    assert_problem(
        client.get("/data/myPersonalDataUsage", params={**params, "databaseId": "..."}),
        400,
        "bad-query",
    )
    assert_problem(
        client.get("/data/myPersonalDataUsage", params={**params, "databaseId": "NOPE"}),
        404,
        "registry-not-found",
    )
    assert client.get("/data/myPersonalDataUsage", params={"userId": "x"}).status_code == 400


# --- Database API --------------------------------------------------------------------------------


def test_database_read_and_list(client: TestClient, registry: str, shared_specs: Path) -> None:
    listed = client.get("/databases")
    assert listed.status_code == 200
    catalogues = listed.json()
    group = spec_schema(
        shared_specs,
        "GovStack_Digital_registries_BB_Database_API_template-1.3.0.json",
        "components",
        "schemas",
        "databasesSchema",
    )
    for catalogue in catalogues:
        jsonschema.validate(catalogue, group)
    ours = next(c for c in catalogues if c["name"] == "Tests")
    database = next(d for d in ours["databases"] if d["name"] == registry)
    response = client.get(f"/database/{database['id']}")
    assert response.status_code == 200
    info = response.json()
    jsonschema.validate(
        info,
        spec_schema(
            shared_specs,
            "GovStack_Digital_registries_BB_Database_API_template-1.3.0.json",
            "components",
            "schemas",
            "DatabaseInfo",
        ),
    )
    assert info["schema"] == SCHEMA and info["version"] == "1.0"
    assert {"name": "personal-id", "path": "/owner/nid"} in info["schemaFlags"]
    assert info["numberFormat"] == "P-{indexNoByCode}"
    assert_problem(client.get("/database/987654321"), 404, "registry-not-found")
    assert client.get("/database/abc").status_code == 400


def test_database_modify_and_delete(client: TestClient, unique: str, instance: Instance) -> None:
    name = f"mod-{unique}"
    body: dict[str, Any] = {"code": f"M{unique[:8]}", "name": name, "schema": SCHEMA}
    first = client.post("/database/modify", json=body)
    assert first.status_code == 200 and first.json() == SCHEMA
    made = create(client, name, {"firstName": "A", "children": 5})
    assert "id" not in made["content"]  # no number format: no key is made up
    # a schema the record would break is refused; the old one stays
    stricter = {**SCHEMA, "properties": {**SCHEMA["properties"], "children": {"maximum": 2}}}
    assert_problem(
        client.post("/database/modify", json={**body, "schema": stricter}), 422, "schema-violation"
    )
    wider = {**SCHEMA, "required": []}
    assert client.post("/database/modify", json={**body, "schema": wider}).status_code == 200
    databases = [
        d for c in client.get("/databases").json() for d in c["databases"] if d["name"] == name
    ]
    assert len(databases) == 1 and databases[0]["schema"]["required"] == []
    database_id = databases[0]["id"]
    # a second version is a second database
    other = client.post("/database/modify", json={**body, "version": "2.0"})
    assert other.status_code == 200
    assert_problem(client.delete(f"/database/{database_id}"), 409, "registry-in-use")
    assert client.delete(f"/data/{name}/1.0/{made['uuid']}/delete").status_code == 204
    deleted = client.delete(f"/database/{database_id}")
    assert deleted.status_code == 200 and deleted.json() == "Success"
    assert_problem(client.get(f"/database/{database_id}"), 404, "registry-not-found")
    assert_problem(client.delete(f"/database/{database_id}"), 404, "registry-not-found")
    assert client.get(f"/data/{name}/2.0").status_code == 200


@pytest.mark.parametrize(
    ("schema", "code"),
    [
        ({"type": "array"}, "invalid-schema"),
        ({"type": "object", "properties": {"a": {"type": "nonsense"}}}, "invalid-schema"),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"type": "string", "primaryKey": True},
                    "b": {"type": "string", "primaryKey": True},
                },
            },
            "invalid-schema",
        ),
    ],
)
def test_database_modify_refuses_bad_schemas(
    client: TestClient, unique: str, schema: dict[str, Any], code: str
) -> None:
    response = client.post(
        "/database/modify", json={"code": "BAD", "name": f"bad-{unique}", "schema": schema}
    )
    assert_problem(response, 422, code)
    assert all(
        d["name"] != f"bad-{unique}"
        for c in client.get("/databases").json()
        for d in c["databases"]
    )


def test_database_modify_refuses_bad_names_and_formats(client: TestClient, unique: str) -> None:
    good = {"code": "OK", "name": f"n-{unique}", "schema": SCHEMA}
    for change, status, code in (
        ({"name": "has space"}, 400, "bad-query"),
        ({"name": "MyPersonalDataUsage", "version": "1.0"}, 400, "bad-query"),
        ({"name": "statistics"}, 400, "bad-query"),
        ({"version": "../1"}, 400, "bad-query"),
        ({"code": "a/b"}, 400, "bad-query"),
        ({"numberFormat": "{code}"}, 422, "invalid-schema"),
        ({"numberFormat": "{evil.__class__}{indexNoByCode}"}, 422, "invalid-schema"),
        ({"schemaFlags": [{"name": "personal-id", "path": "no-slash"}]}, 422, "invalid-schema"),
    ):
        assert_problem(client.post("/database/modify", json={**good, **change}), status, code)
    assert client.post("/database/modify", json={"name": "x", "schema": SCHEMA}).status_code == 400
