"""Steps of the GovStack Digital Registries features (``test_registries_govstack``).

Not a conftest (the folder's conftest belongs to the Registration features): the feature
module imports these steps and fixtures by name. See that module's docstring for how the
features' words map to our registries and which scenarios are skipped, and why.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, then, when

from jisr.core.instance import Instance
from jisr.services import registries
from jisr.web.app import create_app

FOLDER = (
    Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "govstack"
) / "digital-registries"
DATA_API = FOLDER / "GovStack_Digital_registries_BB_Data_API_template-1.3.0.json"
DATABASE_API = FOLDER / "GovStack_Digital_registries_BB_Database_API_template-1.3.0.json"
GOVSTACK_CLIENT = "eGovStack/GOV/90000009/digitalregistries"
# East Hospital's back office (test data "PersonalData"), as an exchange client id.
HOSPITAL = "EE/GOV/EE70049837/healthcare-back-office"
REGISTRY, EMPTY, VERSION = "registryname", "registryempty", "111"
CODE = "MCTS"

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ID": {"type": "string", "primaryKey": True, "description": "Citizen's identifier"},
        "FirstName": {"type": "string"},
        "LastName": {"type": "string"},
        "BirthCertificateID": {"type": "string"},
    },
    "required": ["ID", "FirstName", "LastName"],
    "additionalProperties": False,
}

# feature file -> (spec file, path, method) of the operation it exercises
OPERATIONS: dict[str, tuple[Path, str, str]] = {
    "data_create": (DATA_API, "/data/{registryName}/{versionNumber}/create", "post"),
    "data_delete": (DATA_API, "/data/{registryName}/{versionNumber}/{id}/delete", "delete"),
    "data_exist": (DATA_API, "/data/{registryName}/{versionNumber}/exists", "post"),
    "data_list": (DATA_API, "/data/{registryName}/{versionNumber}", "get"),
    "data_my_personal_data_usage": (DATA_API, "/data/mypersonalDataUsage", "get"),
    "data_read": (DATA_API, "/data/{registryName}/{versionNumber}/read", "post"),
    "data_read_value": (
        DATA_API,
        "/data/{registryName}/{versionNumber}/{uuid}/readValue/{field}.{ext}",
        "get",
    ),
    "data_update": (DATA_API, "/data/{registryName}/{versionNumber}/update", "put"),
    "data_update_entries": (DATA_API, "/data/{registryName}/{versionNumber}/updateEntries", "put"),
    "data_update_or_create": (
        DATA_API,
        "/data/{registryName}/{versionNumber}/updateOrCreate",
        "post",
    ),
    "db_delete": (DATABASE_API, "/database/{id}", "delete"),
    "db_list": (DATABASE_API, "/databases", "get"),
    "db_modify": (DATABASE_API, "/database/modify", "post"),
    "db_read": (DATABASE_API, "/database/{id}", "get"),
}

# Scenarios we deliberately answer otherwise (scenario name, or name + example value).
_NOT_IN_TEST_DATA = (
    "no record of test-data.json has {what}; the feature expects 200, we answer 404 "
    "(no record found), as the feature's own negative scenario expects for a missing record"
)
SKIPPED: dict[str, str] = {
    "User obtains a searched record from the database smoke type test": _NOT_IN_TEST_DATA.format(
        what='FirstName "John Helmut" (it is the Example schema\'s example value)'
    ),
    "EE6546273487865": _NOT_IN_TEST_DATA.format(
        what='BirthCertificateID "EE6546273487865" (it is the ID of Emma and Tobias Smith)'
    ),
}


# --- hooks (registered from the feature module before it reads the features) ----------------


class GovStackHooks:
    """GovStack's tags (@smoke, @unit, @method=POST…) are not our markers, and the scenarios
    in ``SKIPPED`` skip with their reason (only for this folder's features)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_bdd_apply_tag(self, tag: str, function: Callable[..., object]) -> bool | None:
        return True

    def pytest_bdd_before_scenario(self, request: Any, feature: Any, scenario: Any) -> None:
        if Path(feature.filename).resolve().parent != (FOLDER / "features").resolve():
            return
        request.getfixturevalue("ctx")["feature"] = Path(feature.filename).stem
        reason = SKIPPED.get(scenario.name)
        texts = " ".join(step.name for step in scenario.steps)
        for marker, why in SKIPPED.items():
            if reason is None and f'"{marker}"' in texts:
                reason = why
        if reason:
            pytest.skip(f"deliberate difference: {reason}")


def register_hooks() -> None:
    from pytest_bdd.utils import CONFIG_STACK

    manager = CONFIG_STACK[-1].pluginmanager
    if manager.get_plugin("jisr-registries-govstack") is None:
        manager.register(GovStackHooks(), "jisr-registries-govstack")


# --- the world ---------------------------------------------------------------------------------


def govstack_test_data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FOLDER / "test-data" / "test-data.json").read_text())
    return loaded


def defaults() -> dict[str, str]:
    loaded: dict[str, str] = json.loads(
        (FOLDER / "test-data" / "testDefaultParameters.json").read_text()
    )
    return loaded


def seed(instance: Instance) -> None:
    """Wipe the registers node and load GovStack's test data (before every scenario)."""
    node = instance.node(registries.REGISTERS_NODE)
    data = govstack_test_data()
    with node.session() as session:
        auditor = registries.node_auditor(node, session, "bdd-seed")
        for database in registries.list_databases(session):
            while registries.count_records(session, database):
                page = registries.list_records(
                    session, database=database, reader="MA/GOV/BDD/SEED", page_size=100
                )
                for record in page.results:
                    registries.delete_record(
                        session, database=database, ref=record.uuid, auditor=auditor
                    )
            registries.delete_database(session, database_id=database.id, auditor=auditor)
        flags = [{"name": registries.PERSONAL_ID_FLAG, "path": "/ID"}]
        main = registries.create_database(
            session, name=REGISTRY, version=VERSION, code=CODE, schema=RECORD_SCHEMA,
            auditor=auditor, catalog_name="Mother and Child", schema_flags=flags,
            database_id=10_000,
        )  # fmt: skip
        registries.create_database(
            session, name=EMPTY, version=VERSION, code=CODE, schema=RECORD_SCHEMA,
            auditor=auditor, catalog_name="Mother and Child", schema_flags=flags,
        )  # fmt: skip
        seen: set[str] = set()
        contents, uuids, readers = [], [], []
        for record in data["registries"]["records"]:
            if record["id"] in seen:  # test data reuses EE6546273487865: keys are unique here
                continue
            seen.add(record["id"])
            contents.append(
                {
                    "ID": record["id"],
                    "FirstName": record["FirstName"],
                    "LastName": record["LastName"],
                    "BirthCertificateID": record["BirthCertificateID"],
                }
            )
            uuids.append(record["uuid"])
            if record["PersonalData"]:
                readers.append(record["id"])
        registries.create_records(
            session, database=main, contents=contents, auditor=auditor, uuids=uuids
        )
        for reference in readers:  # the test data's past reads, made for real
            registries.read_record(session, database=main, query={"ID": reference}, reader=HOSPITAL)
        for group in data["databases"]:
            for item in group["databases"]:
                if not isinstance(item, dict):
                    continue  # the test data's comment strings
                registries.create_database(
                    session,
                    name=item["name"],
                    # test data gives ten databases one name and version; ours are
                    # addressed by (name, version), so each after id 1 gets its id appended
                    version=item["version"]
                    if item["id"] == 1
                    else f"{item['version']}.{item['id']}",
                    code=group["code"],
                    schema=item["schema"],
                    auditor=auditor,
                    group_name=group["name"],
                    catalog_name=group["name"],
                    description=item["description"],
                    institution=item["institution"],
                    database_id=item["id"],
                )


# --- the OpenAPI templates' schemas -------------------------------------------------------------


def _spec(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    # the Database template's refs say DatabasesSchema/databaseInfo for databasesSchema/
    # DatabaseInfo: resolve names whatever the case of their first letter
    for name in list(schemas):
        schemas.setdefault(name[0].upper() + name[1:], schemas[name])
        schemas.setdefault(name[0].lower() + name[1:], schemas[name])
    return spec


def response_schema(feature: str, status: int) -> dict[str, Any] | None:
    spec_path, path, method = OPERATIONS[feature]
    spec = _spec(spec_path)
    response = spec["paths"][path][method]["responses"].get(str(status))
    if response is None or "content" not in response:
        return None
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registers(instance_factory: Any) -> Iterator[TestClient]:
    instance: Instance = instance_factory("MA")
    registries.ensure_registers_node(instance)
    with TestClient(create_app(instance, roles=["registers"])) as client:
        client.app.state.registries_instance = instance
        yield client


@pytest.fixture
def ctx(registers: TestClient) -> dict[str, Any]:
    """What a scenario's steps pass each other; the registers node seeded afresh."""
    seed(registers.app.state.registries_instance)
    # "feature" (the feature file's stem) is set by GovStackHooks.pytest_bdd_before_scenario
    return {"headers": {}, "values": {}, "query": None, "write": None}


# --- when ----------------------------------------------------------------------------------------

_PAIRS = re.compile(r'"([^"]*)" as (?:invalid )?"?(\w+)"?')


def pairs(text: str) -> dict[str, str]:
    """``"x" as ID, "y" as "FirstName"`` → ``{"ID": "x", "FirstName": "y"}``; ``${ID_0}`` →
    its value in testDefaultParameters.json."""
    values = defaults()
    found = {}
    for value, name in _PAIRS.findall(text):
        placeholder = re.fullmatch(r"\$\{(\w+)\}", value)
        found[name] = values[placeholder.group(1)] if placeholder else value
    return found


@given(parsers.re(r"(?P<text>.+)"))
def intent(ctx: dict[str, Any], text: str) -> None:
    """A scenario's first step states an intent."""
    ctx["intent"] = text


@when(parsers.re(r"(?P<text>.+)"))
def request_parts(ctx: dict[str, Any], text: str) -> None:
    """Every When/And step adds what it names: the header, path parameters, the query and
    the written objects (split where the step names the write object)."""
    if "Information-Mediator-Client header" in text:
        ctx["headers"]["Information-Mediator-Client"] = GOVSTACK_CLIENT
    if "both contain content object" in text:
        ctx["query"] = ctx["write"] = _content(pairs(text))
        return
    parts = re.split(r"the request overwrites the record with|write object", text, maxsplit=1)
    if len(parts) == 2:
        ctx["query"] = _content(pairs(parts[0]))
        ctx["write"] = _content(pairs(parts[1]))
    else:
        ctx["values"].update(pairs(text))


_CONTENT_FIELDS = ("ID", "FirstName", "LastName", "BirthCertificateID")


def _content(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if k in _CONTENT_FIELDS}


def send(client: TestClient, ctx: dict[str, Any]) -> httpx.Response:
    """Send the scenario's request once (the first Then step does)."""
    if "response" in ctx:
        response: httpx.Response = ctx["response"]
        return response
    feature, values = ctx["feature"], ctx["values"]
    registry = values.get("registryname", REGISTRY)
    version = values.get("versionnumber", VERSION)
    base = f"/data/{registry}/{version}"
    headers = {**ctx["headers"], "Accept-Language": "en"}
    content = _content(values)
    if feature == "data_update_or_create" and "previously created" in ctx.get("intent", ""):
        made = client.post(
            f"{base}/create", json={"write": {"content": ctx["query"]}}, headers=headers
        )
        assert made.status_code == 200, made.text
    calls: dict[str, Callable[[], httpx.Response]] = {
        "data_create": lambda: client.post(
            f"{base}/create", json={"write": {"content": content}}, headers=headers
        ),
        "data_delete": lambda: client.delete(f"{base}/{values['ID']}/delete", headers=headers),
        "data_exist": lambda: client.post(
            f"{base}/exists", json={"query": {"content": content}}, headers=headers
        ),
        "data_list": lambda: client.get(
            base,
            params={k: values[k] for k in ("search", "filter", "ordering") if k in values},
            headers=headers,
        ),
        "data_my_personal_data_usage": lambda: client.get(
            "/data/MyPersonalDataUsage/1.0",
            params={"userId": values["userID"], "databaseId": values["DatabaseID"]},
            headers=headers,
        ),
        "data_read": lambda: client.post(
            f"{base}/read", json={"query": {"content": content}}, headers=headers
        ),
        "data_read_value": lambda: client.get(
            f"{base}/{values['uuid']}/read-value/{values['field']}.{values['ext']}",
            headers=headers,
        ),
        "data_update": lambda: client.put(
            f"{base}/update",
            json={"query": {"content": ctx["query"]}, "write": {"content": ctx["write"]}},
            headers=headers,
        ),
        "data_update_entries": lambda: client.put(
            f"{base}/update-entries",
            json={"query": {"content": ctx["query"]}, "write": {"content": ctx["write"]}},
            headers=headers,
        ),
        "data_update_or_create": lambda: client.post(
            f"{base}/update-or-create",
            json={"query": {"content": ctx["query"]}, "write": {"content": ctx["write"]}},
            headers=headers,
        ),
        "db_delete": lambda: client.delete(f"/database/{values['id']}", headers=headers),
        "db_list": lambda: client.get("/databases", headers=headers),
        "db_modify": lambda: client.post("/database/modify", json=modify_body(), headers=headers),
        "db_read": lambda: client.get(f"/database/{values['id']}", headers=headers),
    }
    started = time.monotonic()
    response = calls[feature]()
    ctx["elapsed_ms"] = (time.monotonic() - started) * 1000
    ctx["response"] = response
    return response


def modify_body() -> dict[str, Any]:
    """The Database template's example request: its field examples, the test data's schema
    plus the three fields the template requires of it."""
    schema = govstack_test_data()["databases"][0]["databases"][0]["schema"]
    return {
        "groupName": "Test",
        "catalogName": "Mother and Child",
        "code": "MCR",
        "schema": {
            **schema,
            "creationDate": "2021-10-03T08:35:01Z",
            "description": "Mother and child registration",
            "filename": "mcr.json",
        },
    }


# --- then ----------------------------------------------------------------------------------------


@then(parsers.re(r"(?:User receives|receive) a response from the .+"))
@then(parsers.re(r"(?:the|The) response from \S+ is received"))
def received(registers: TestClient, ctx: dict[str, Any]) -> None:
    assert send(registers, ctx).status_code > 0


@then(parsers.re(r".+ should be returned in a timely manner (?P<limit>\d+)ms"))
def timely(registers: TestClient, ctx: dict[str, Any], limit: str) -> None:
    """Timed assertions do not belong in our tests (shared CI machines): the time is kept
    in ``ctx`` and the step only checks an answer came."""
    assert send(registers, ctx).status_code > 0 and ctx["elapsed_ms"] >= 0


@then(parsers.re(r".+ should have status (?P<status>\d+)"))
def status(registers: TestClient, ctx: dict[str, Any], status: str) -> None:
    response = send(registers, ctx)
    assert response.status_code == int(status), response.text[:500]


@then(parsers.re(r'.+ should have "content-type": "(?P<media>[^"]+)" header'))
def content_type(registers: TestClient, ctx: dict[str, Any], media: str) -> None:
    response = send(registers, ctx)
    got = response.headers["content-type"].split(";")[0].strip()
    if response.status_code >= 400:  # RFC 9457, a JSON media type
        assert got == "application/problem+json" and media == "application/json"
    else:
        assert got == media


@then(parsers.re(r".+ should match json schema"))
@then(parsers.re(r".+ should match json schema with error message"))
def matches_schema(registers: TestClient, ctx: dict[str, Any]) -> None:
    response = send(registers, ctx)
    schema = response_schema(ctx["feature"], response.status_code)
    assert schema is not None, f"the template has no schema for {response.status_code}"
    body = response.json()
    if ctx["feature"] == "db_list":  # a list of databasesSchema objects (see module doc)
        assert isinstance(body, list) and body
        for item in body:
            jsonschema.validate(item, schema)
        return
    jsonschema.validate(body, schema)


@then(parsers.re(r'.+ is filtered by "(?P<search>[^"]*)" and "(?P<field>[^"]*)" provided .+'))
def filtered(registers: TestClient, ctx: dict[str, Any], search: str, field: str) -> None:
    results = send(registers, ctx).json()["results"]
    assert results, "an empty answer proves nothing here"
    assert all(search.casefold() in str(r[field]).casefold() for r in results)


@then("results array length is consistent with count field value")
def consistent(registers: TestClient, ctx: dict[str, Any]) -> None:
    body = send(registers, ctx).json()
    if "next" in body:  # a full page, and more after it
        assert len(body["results"]) == registries.DEFAULT_PAGE_SIZE < body["count"]
    else:
        assert len(body["results"]) == body["count"]


@then("results field should be an empty array")
def empty(registers: TestClient, ctx: dict[str, Any]) -> None:
    assert send(registers, ctx).json()["results"] == []


@then(parsers.re(r".+ should return status (?P<answer>true|false) for .+"))
def exists_answer(registers: TestClient, ctx: dict[str, Any], answer: str) -> None:
    assert send(registers, ctx).json()["answer"]["status"] is (answer == "true")


@then(parsers.re(r'.+ should contain "(?P<name>\w+)" property equals "(?P<value>[^"]*)"'))
def property_equals(registers: TestClient, ctx: dict[str, Any], name: str, value: str) -> None:
    assert send(registers, ctx).json()["content"][name] == value


@then(parsers.re(r'.+ should have body "(?P<value>[^"]*)"'))
def body_is(registers: TestClient, ctx: dict[str, Any], value: str) -> None:
    assert send(registers, ctx).json() == value
