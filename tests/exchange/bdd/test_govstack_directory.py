"""GovStack IM Directory features (``listClients``, ``listMethods``, ``allowedMethods``,
``getOpenAPI``) against a real client gateway (pytest-bdd).

The ``.feature`` files are read in place from
``../shared/specs/govstack/information-mediator/features`` (never copied); where that folder
is absent this module defines one test per feature that skips and says so.

The features name providers with GovStack's test data (``test-data/test-data.json``: instance
``identifier``, class ``identifier``…), which are not valid identifiers here (instance codes
are ISO-like, classes GOV/COM/NGO). Each provider of the test data stands for one subsystem of
our world (``PROVIDERS``), its services keep their code (``alp4aNum3r1c``), its ``serviceId``
values name that code, its instance ids our instance, and the calling client
``eGovStack/GOV/90000009/digitalregistries`` our ``MA/GOV/ESERVICES/PORTAL``. Any other value
is sent as written (the negative scenarios' invalid identifiers). "Should match json schema"
checks the body against the operation's schema in ``GovStack_IM_Directory_Services_API.yaml``;
for an error (the YAML gives no schema) against the X-Road error body ``{type, message,
detail}``; for ``getOpenAPI`` (``type: string``: the document's text) that it is an OpenAPI
document. No scenario is skipped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from jisr.core.instance import REGISTRY_NODE
from jisr.exchange import service
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId

from ..conftest import ExchangeWorld, build_world

pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.usefixtures("world")]

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "govstack"
FOLDER = SPECS / "information-mediator"
FEATURES = ("list_clients", "list_methods", "allowed_methods", "get_open_api")

for _name in FEATURES:
    _path = FOLDER / "features" / f"{_name}.feature"
    if _path.is_file():
        scenarios(str(_path))
    else:

        def _absent(path: Path = _path) -> None:
            pytest.skip(f"the GovStack feature {path} is absent (../shared is not here)")

        globals()[f"test_{_name}_absent"] = _absent

CODE = "alp4aNum3r1c"
CLIENT = "MA/GOV/ESERVICES/PORTAL"
GOVSTACK_CLIENT = "eGovStack/GOV/90000009/digitalregistries"
# GovStack test-data providers (instance, class, member, application) -> our subsystems.
PROVIDERS = {
    ("identifier", "identifier", "alp4aNum3r1c", "alp4aNum3r1c"): "MA/GOV/CIVIL-REGISTRY/BIRTHS",
    ("a11a11a11a", "asd2211a", "12as12", "m3mb3rc0d3"): "MA/GOV/HEALTH/RECORDS",
    ("a552example", "zzz321a", "m3mb3rc0d3", "aa15"): "MA/COM/BANK/KYC",
    ("valid1dentifi3r", "rand0mid3nt", "str1ng", "azxcv55"): "MA/NGO/RELIEF/AID",
}
SERVICE_IDS = {"serviceId", "serviceId1", "serviceId2", "serviceId3", "serviceId4"}
INSTANCE_IDS = {"instanceId", "instanceId1", "instanceId2", "instanceId3", "instanceId4"}
TIMELY_MS = 3000


def openapi_document(title: str) -> str:
    return json.dumps(
        {
            "openapi": "3.0.0",
            "info": {"title": title, "version": "1.0"},
            "paths": {
                "/records/{id}": {"get": {"responses": {"200": {"description": "a record"}}}},
                "/records": {"post": {"responses": {"201": {"description": "created"}}}},
            },
        }
    )


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[ExchangeWorld]:
    made = build_world(instance_factory("MA"))
    try:
        registry = made.instance.node(REGISTRY_NODE)
        with registry.session() as session:
            for member, name in (
                ("MA/GOV/HEALTH", "Health"),
                ("MA/COM/BANK", "Bank"),
                ("MA/NGO/RELIEF", "Relief"),
            ):
                service.add_member(session, member=MemberId.parse(member), name=name)
            for subsystem in PROVIDERS.values():
                parsed = SubsystemId.parse(subsystem)
                if subsystem != "MA/GOV/CIVIL-REGISTRY/BIRTHS":
                    service.add_subsystem(session, subsystem=parsed)
                provided = ServiceId.parse(f"{subsystem}/{CODE}")
                service.add_service(
                    session,
                    service=provided,
                    base_url=made.provider.url,
                    openapi=openapi_document(subsystem),
                )
                service.grant_access(
                    session,
                    service=provided,
                    client=SubsystemId.parse(CLIENT),
                    method="GET",
                    path="/records/*",
                )
        for running in made.gateways.values():
            assert running.refresh_now(), running.runtime.last_refresh_error
    except BaseException:
        made.close()
        raise
    yield made
    made.close()


@pytest.fixture
def ctx() -> dict[str, Any]:
    return {"headers": {}, "params": {}, "parts": None}


def _unquote(value: str) -> str:
    return value.strip().strip('"')


def _pairs(text: str) -> dict[str, str]:
    return {name: value for value, name in re.findall(r'"([^"]*)" as (\w+)', text)}


def _map_client(value: str) -> str:
    return CLIENT if value == GOVSTACK_CLIENT else value


def _map_param(name: str, value: str) -> str:
    if name == "serviceId" and value in SERVICE_IDS:
        return CODE
    if name == "instanceId" and value in INSTANCE_IDS:
        return "MA"
    return value


def _provider(values: dict[str, str]) -> str | None:
    keys = ("GovStackInstance", "memberClass", "memberCode", "applicationCode")
    if not all(k in values for k in keys):
        return None
    parts = tuple(values[k] for k in keys)
    return PROVIDERS.get(parts, "/".join(parts))  # type: ignore[arg-type]


def _send(world: ExchangeWorld, ctx: dict[str, Any]) -> httpx.Response:
    if "response" in ctx:
        response: httpx.Response = ctx["response"]
        return response
    op = ctx["op"]
    url = world.client_url + (f"/r1/{ctx['provider']}/{op}" if op != "listClients" else "/" + op)
    started = time.monotonic()
    response = httpx.get(url, headers=ctx["headers"], params=ctx["params"], timeout=20)
    ctx["elapsed_ms"] = (time.monotonic() - started) * 1000
    ctx["response"] = response
    return response


# --- given ------------------------------------------------------------------------------------


@given("User wants to retrieve the the list of Clients of GovStack")
def want_clients(ctx: dict[str, Any]) -> None:
    ctx["op"] = "listClients"


@given("Wants to retrieve the list of REST services and endpoints for a service provider")
def want_methods(ctx: dict[str, Any]) -> None:
    ctx["op"] = "listMethods"


@given("Wants to retrieve the list of allowed REST services and endpoints for a service provider")
def want_allowed(ctx: dict[str, Any]) -> None:
    ctx["op"] = "allowedMethods"


@given("User wants to retrieve the openAPI description of the specified REST service")
def want_openapi(ctx: dict[str, Any]) -> None:
    ctx["op"] = "getOpenAPI"


# --- when -------------------------------------------------------------------------------------


@when(parsers.re(r"User sends GET request with given (?P<rest>.+)"))
def request_with(ctx: dict[str, Any], rest: str) -> None:
    values = _pairs(rest)
    header = re.search(r'and "([^"]+)" header$', rest)
    if header:
        ctx["headers"][header.group(1)] = CLIENT
    ctx["provider"] = _provider(values)
    for name in ("serviceId", "instanceId"):
        if name in values:
            ctx["params"][name] = _map_param(name, values[name])


@when(parsers.re(r"(I send a GET request with|The request contains headers):"))
def headers_table(ctx: dict[str, Any], datatable: list[list[str]]) -> None:
    for name, value in datatable[1:]:
        ctx["headers"][name.strip()] = _map_client(_unquote(value))


@when("The payload contains:")
def payload_table(ctx: dict[str, Any], datatable: list[list[str]]) -> None:
    values = {name.strip(): _unquote(value) for name, value in datatable[1:]}
    ctx["provider"] = _provider(values)
    if "serviceId" in values:
        ctx["params"]["serviceId"] = _map_param("serviceId", values["serviceId"])


@when(parsers.re(r'User provides query parameter "(?P<value>[^"]*)" as serviceCode'))
def service_code(ctx: dict[str, Any], value: str) -> None:
    ctx["params"]["serviceCode"] = value


# --- then -------------------------------------------------------------------------------------


@then(parsers.re(r"User receives a response( from the (?P<op>\w+) endpoint)?$"))
def receives(world: ExchangeWorld, ctx: dict[str, Any]) -> None:
    assert _send(world, ctx).status_code > 0


@then(parsers.re(r"The (\w+ endpoint )?response should be returned in a timely manner"))
def timely(world: ExchangeWorld, ctx: dict[str, Any]) -> None:
    _send(world, ctx)
    assert ctx["elapsed_ms"] < TIMELY_MS


@then(parsers.re(r"The (\w+ endpoint )?response should have status (?P<status>\d+)"))
def has_status(world: ExchangeWorld, ctx: dict[str, Any], status: str) -> None:
    response = _send(world, ctx)
    assert response.status_code == int(status), response.text
    if response.status_code >= 400:
        assert response.headers["x-road-error"]


@then(parsers.re(r'The \w+ response should have "content-type": "(?P<media>[^"]+)" header'))
def has_media_type(world: ExchangeWorld, ctx: dict[str, Any], media: str) -> None:
    content_type = _send(world, ctx).headers["content-type"]
    assert content_type.split(";")[0].strip() == media


@then(parsers.parse('The response header content-type should be "{value}"'))
def has_content_type(world: ExchangeWorld, ctx: dict[str, Any], value: str) -> None:
    assert _send(world, ctx).headers["content-type"] == value


@then(parsers.re(r"The (\w+ endpoint )?response should match json schema"))
def matches_schema(world: ExchangeWorld, ctx: dict[str, Any]) -> None:
    response = _send(world, ctx)
    body = response.json()
    if response.status_code >= 400:
        validate(body, ERROR_SCHEMA, {})
        return
    if ctx["op"] == "getOpenAPI":  # the YAML's ``type: string``: the document itself
        assert isinstance(body, dict) and body["openapi"] and isinstance(body["paths"], dict)
        return
    api = directory_api()
    path = "/listClients" if ctx["op"] == "listClients" else None
    if path is None:
        path = next(p for p in api["paths"] if p.endswith("/" + ctx["op"]))
    schema = api["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    validate(body, schema["schema"], api)
    assert body["member"], "an empty list proves nothing here"


# --- a small JSON Schema check (the subset the Directory YAML uses) ----------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "message", "detail"],
    "properties": {
        "type": {"type": "string"},
        "message": {"type": "string"},
        "detail": {"type": "string"},
    },
}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


def directory_api() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load(
        (FOLDER / "GovStack_IM_Directory_Services_API.yaml").read_text(encoding="utf-8")
    )
    return loaded


def validate(value: Any, schema: dict[str, Any], api: dict[str, Any], at: str = "$") -> None:
    if "$ref" in schema:
        node: Any = api
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        validate(value, node, api, at)
        return
    kind = schema.get("type")
    if kind is not None:
        assert isinstance(value, _TYPES[kind]), f"{at}: {value!r} is not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{at}: {value!r} not in {schema['enum']}"
    for name in schema.get("required", []):
        assert name in value, f"{at}: {name} is missing"
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                validate(value[name], sub, api, f"{at}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            validate(item, schema["items"], api, f"{at}[{index}]")
