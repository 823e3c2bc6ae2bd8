"""The GovStack Registration features (services, e-forms, applications, documents, tasks,
operator update, statistics) against the portal's Registration API (pytest-bdd).

The ``.feature`` files are read in place from
``../shared/specs/govstack/registration/features`` (never copied); where that folder is absent
this module defines one test per feature that skips and says so.

Requests run in process (ASGI test client) on an app serving the idp and the portal, with
real bearer tokens: the citizen's (applicant operations) and an officer's of the Ministry of
the Interior (operator operations and tasks). The features name GovStack's test-data ids
(``test-data/test-data.json``); each positive one stands for an object of our world
(``MAPPED``): the services for ``ma-residence-certificate``, the e-form for its form, the
application files for one of the citizen's applications, the task ids for review tasks, the
applicant ids for the citizen, the registration ``MCTS`` for the residence certificate. Any
other value is sent as written (the negative scenarios' ids). An application sent by a
feature carries our e-form's two required fields (the features send none). "Should match json
schema" checks the body against the operation's response schema in
``GovStack_Registration_BB_API.json`` (or ``_statistics.json``); "bad request json schema"
against ``systemError``. The timing steps check that an answer came, not how fast (timed
assertions do not belong in tests). Uploads are PDF, JPEG or PNG (by content) here, not "all
media types": the features upload a PDF.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from jisr.services import registration_api

from ..test_applications import PDF, Source
from ..test_registration_api import FORM, PERSON, World, serve_world

pytestmark = [pytest.mark.db]

FOLDER = (
    Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "govstack" / "registration"
)
FEATURES = (
    "services_services",
    "services_serviceid",
    "services_servicekey_eforms",
    "services_eforms_eformsid",
    "applicant_services_serviceid_applications",
    "applicant_documents",
    "applicant_applications",
    "applicant_applications_file_id",
    "operator_applications_update",
    "applicant_tasks",
    "applicant_tasks_taskid",
    "applicant_complete_task",
    "data_statistics",
)

for _name in FEATURES:
    _path = FOLDER / "features" / f"{_name}.feature"
    if _path.is_file():
        scenarios(str(_path))
    else:

        def _absent(path: Path = _path) -> None:
            pytest.skip(f"the GovStack feature {path} is absent (../shared is not here)")

        globals()[f"test_{_name}_absent"] = _absent

PROCEDURE = "ma-residence-certificate"
SERVICES = {"f7d33db0-2809-484e-a780-76b7ccd4ecbf", "P2c9280957e579ad7017e58a3399f0068"}
EFORMS = {"d98a205a-679b-485b-823d-7a32a391e744"}
FILES = {"81c4445c-bff6-11ed-afa1-0242ac120002", "b8508d35-c2f3-442b-88a1-267ca25e85c0"}
TASKS = {"81c4445c-bff6-11ed-afa1-0242ac120002", "d1e33d56-c5c7-4272-aeb6-bc2732cce1f2"}
APPLICANTS = {"42962de0-bdb2-11ed-9397-0242ac120004"}
REGISTRATIONS = {"MCTS"}


@pytest.fixture(scope="module")
def api_world(instance_factory: Any) -> Iterator[World]:
    yield from serve_world(instance_factory)


@pytest.fixture(autouse=True)
def _exchange(monkeypatch: pytest.MonkeyPatch, api_world: World) -> None:
    """The portal's evidence source: an in-test one (named statically so that each scenario
    is parametrised per database backend)."""
    monkeypatch.setattr(registration_api, "_evidence_source", lambda node: Source())


@pytest.fixture
def ctx() -> dict[str, Any]:
    """What a scenario's steps pass each other: the request to send, the response."""
    return {}


def _submitted(world: World) -> dict[str, Any]:
    """A fresh application of the citizen, submitted (its review task open)."""
    url = world.upload().json()["url"]
    response = world.apply(documentUrls=[url])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _review_task(world: World, file_id: str) -> str:
    tasks = world.http.get("/tasks", params={"fileId": file_id}, headers=world.moi).json()
    task_id: str = tasks[0]["taskId"]
    return task_id


def mapped(world: World, ctx: dict[str, Any], kind: str, value: str) -> str:
    """The object of our world a GovStack test-data id stands for (else the value)."""
    memo = ctx.setdefault("mapped", {})
    key = (kind, value)
    if key in memo:
        return str(memo[key])
    found = value
    if kind == "serviceId" and value in SERVICES:
        found = PROCEDURE
    elif kind == "eFormId" and value in EFORMS:
        found = f"{PROCEDURE}.form"
    elif kind == "fileId" and value in FILES:
        found = _submitted(world)["fileId"]
    elif kind in ("taskId", "mainTaskId") and value in TASKS:
        found = _review_task(world, _submitted(world)["fileId"])
    elif kind == "applicantId" and value in APPLICANTS:
        found = PERSON
    elif kind == "registrationName" and value in REGISTRATIONS:
        found = PROCEDURE
    memo[key] = found
    return found


def _seg(value: str) -> str:
    """A path segment, percent-encoded (the negative ids hold ``#``)."""
    return quote(value, safe="")


def _request(
    ctx: dict[str, Any], method: str, path: str, who: dict[str, str] | None, **kwargs: Any
) -> None:
    ctx["request"] = {"method": method, "path": path, "headers": dict(who or {}), **kwargs}
    ctx.setdefault("operation", (method.lower(), path))


def _send(world: World, ctx: dict[str, Any]) -> httpx.Response:
    if "response" not in ctx:
        request = ctx["request"]
        ctx["response"] = world.http.request(
            request["method"],
            request["path"],
            headers=request["headers"],
            params=request.get("params"),
            json=request.get("json"),
            files=request.get("files"),
        )
    response: httpx.Response = ctx["response"]
    return response


# --- given -------------------------------------------------------------------------------------


@given(parsers.re(r"(?:User wants|An applicant wants|Wants) to .*"))
def intent() -> None:
    """The features' first step states an intent; nothing to do."""


@given("The API supports all media types for document upload")
def media_types() -> None:
    """Ours accepts PDF, JPEG and PNG by content (see the module docstring); the features
    upload a PDF."""


# --- when: services and e-forms ----------------------------------------------------------------


@when("GET request to retrieve a list of services is sent")
def list_services(ctx: dict[str, Any]) -> None:
    _request(ctx, "GET", "/services", None)
    ctx["operation"] = ("get", "/services")


@when(parsers.re(r'User sends GET /services request with given "(?P<name>[^"]*)" as name'))
def search_services(ctx: dict[str, Any], name: str) -> None:
    _request(ctx, "GET", "/services", None, params={"name": name})
    ctx["operation"] = ("get", "/services")


@when(
    parsers.re(
        r"GET request to retrieve the information of single service with given "
        r'"(?P<value>[^"]*)" as serviceId'
    )
)
def one_service(api_world: World, ctx: dict[str, Any], value: str) -> None:
    _request(ctx, "GET", f"/services/{_seg(mapped(api_world, ctx, 'serviceId', value))}", None)
    ctx["operation"] = ("get", "/services/{serviceId}")


@when(
    parsers.re(
        r'User sends GET /services/\{serviceId\}/eForms request with given "(?P<value>[^"]*)" '
        r"as serviceId"
    )
)
def service_eforms(api_world: World, ctx: dict[str, Any], value: str) -> None:
    path = f"/services/{_seg(mapped(api_world, ctx, 'serviceId', value))}/eForms"
    _request(ctx, "GET", path, None)
    ctx["operation"] = ("get", "/services/{serviceId}/eForms")


@when(
    parsers.re(
        r'GET request to get eForm is sent with given "(?P<value>[^"]*)" as eFormId parameter'
    )
)
def one_eform(api_world: World, ctx: dict[str, Any], value: str) -> None:
    _request(ctx, "GET", f"/eForms/{_seg(mapped(api_world, ctx, 'eFormId', value))}", None)
    ctx["operation"] = ("get", "/eForms/{eFormId}")


# --- when: applications -------------------------------------------------------------------------


@when(
    parsers.re(
        r"POST request to submit an application is sent with given Information-Mediator-Client "
        r'header and "(?P<value>[^"]*)" as serviceId parameter'
    )
)
def submit(api_world: World, ctx: dict[str, Any], value: str) -> None:
    path = f"/services/{_seg(mapped(api_world, ctx, 'serviceId', value))}/applications"
    body = {"formData": {"data": dict(FORM)}}
    _request(ctx, "POST", path, api_world.citizen, json=body)
    ctx["operation"] = ("post", "/services/{serviceId}/applications")


@when(
    parsers.re(
        r'The request contains a payload with "(?P<name>[^"]*)" as applicationName, '
        r'"(?P<applicant>[^"]*)" as applicantId and "(?P<created>[^"]*)" as created\s*'
    )
)
def submit_payload(
    api_world: World, ctx: dict[str, Any], name: str, applicant: str, created: str
) -> None:
    ctx["request"]["json"].update(
        applicationName=name,
        applicantId=mapped(api_world, ctx, "applicantId", applicant),
        created=created,
    )


@when(
    parsers.re(
        r'The request contains a payload with "(?P<value>[^"]*)" as (?P<name>\w+)(?: parameter)?'
    )
)
def payload_value(api_world: World, ctx: dict[str, Any], value: str, name: str) -> None:
    request = ctx["request"]
    if request["method"] == "GET":
        request.setdefault("params", {})[name] = mapped(api_world, ctx, name, value)
    else:
        request["json"][name] = mapped(api_world, ctx, name, value)


@when(
    parsers.re(
        r"(?:The /\S+ request|The request) contains a payload with (?P<first>\d+) as firstResult, "
        r'(?P<max>\d+) as maxResult, "(?P<by>\w+)" as sortBy and "(?P<order>\w+)" as sortOrder'
    )
)
def paging(ctx: dict[str, Any], first: str, max: str, by: str, order: str) -> None:  # noqa: A002
    ctx["request"].setdefault("params", {}).update(
        firstResult=first, maxResult=max, sortBy=by, sortOrder=order
    )


@when(
    parsers.re(
        r"GET request to get all application files is sent with given "
        r"Information-Mediator-Client header"
        r'(?: and a payload with "(?P<value>[^"]*)" as (?P<name>\w+) parameter)?'
    )
)
def list_applications(
    api_world: World, ctx: dict[str, Any], value: str | None, name: str | None
) -> None:
    params = {name: mapped(api_world, ctx, name, value)} if name and value is not None else {}
    _request(ctx, "GET", "/applications", api_world.citizen, params=params)
    ctx["operation"] = ("get", "/applications")


@when(
    parsers.re(
        r"GET request to get an application file is sent with given Information-Mediator-Client "
        r'header and "(?P<value>[^"]*)" as fileId parameter'
    )
)
def one_application(api_world: World, ctx: dict[str, Any], value: str) -> None:
    file_id = mapped(api_world, ctx, "fileId", value)
    _request(ctx, "GET", f"/applications/{_seg(file_id)}", api_world.citizen)
    ctx["operation"] = ("get", "/applications/{fileId}")


@when(
    parsers.re(
        r"PUT request to update service application file is sent with given "
        r'Information-Mediator-Client header, "(?P<value>[^"]*)" as a fileId parameter and body '
        r'containing applicantId: "(?P<applicant>[^"]*)"'
    )
)
def update_application(api_world: World, ctx: dict[str, Any], value: str, applicant: str) -> None:
    file_id = mapped(api_world, ctx, "fileId", value)
    body = {"applicantId": mapped(api_world, ctx, "applicantId", applicant)}
    _request(ctx, "PUT", f"/applications/{_seg(file_id)}", api_world.moi, json=body)
    ctx["operation"] = ("put", "/applications/{fileId}")


# --- when: documents ----------------------------------------------------------------------------


@when("POST request with given document is sent")
def upload(api_world: World, ctx: dict[str, Any]) -> None:
    files = {"file": ("lease.pdf", PDF, "application/pdf")}
    _request(ctx, "POST", "/documents", api_world.citizen, files=files)
    ctx["operation"] = ("post", "/documents")


@when(parsers.re(r'The request contains "(?P<value>[^"]*)" as additionalMetadata'))
def metadata(ctx: dict[str, Any], value: str) -> None:
    ctx["request"].setdefault("params", {})["additionalMetadata"] = value


@when("POST request to upload a document is sent without payload")
def upload_nothing(api_world: World, ctx: dict[str, Any]) -> None:
    _request(ctx, "POST", "/documents", api_world.citizen)
    ctx["operation"] = ("post", "/documents")


# --- when: tasks --------------------------------------------------------------------------------


@when(
    parsers.re(
        r"GET request to get all tasks is sent with given Information-Mediator-Client header"
        r'(?: and a payload with "(?P<value>[^"]*)" as (?P<name>\w+) parameter)?'
    )
)
def list_tasks(api_world: World, ctx: dict[str, Any], value: str | None, name: str | None) -> None:
    params = {name: mapped(api_world, ctx, name, value)} if name and value is not None else {}
    _request(ctx, "GET", "/tasks", api_world.moi, params=params)
    ctx["operation"] = ("get", "/tasks")


@when(
    parsers.re(r'GET request to get task is sent with given "(?P<value>[^"]*)" as taskId parameter')
)
def one_task(api_world: World, ctx: dict[str, Any], value: str) -> None:
    _request(ctx, "GET", f"/tasks/{_seg(mapped(api_world, ctx, 'taskId', value))}", api_world.moi)
    ctx["operation"] = ("get", "/tasks/{taskId}")


@when(
    parsers.re(
        r'POST request to completes the task is sent with given "(?P<value>[^"]*)" as a taskId '
        r"parameter and body"
    )
)
def complete(api_world: World, ctx: dict[str, Any], value: str) -> None:
    task_id = mapped(api_world, ctx, "taskId", value)
    body = {"data": {"decision": "approve"}}
    _request(ctx, "POST", f"/tasks/{_seg(task_id)}/complete", api_world.moi, json=body)
    ctx["operation"] = ("post", "/tasks/{taskId}/complete")


# --- when: statistics ---------------------------------------------------------------------------


@when(
    parsers.re(
        r'User sends GET request with given "(?P<value>[^"]*)" as Information-Mediator-Client '
        r"header"
    )
)
def statistics(ctx: dict[str, Any], value: str) -> None:
    header = "" if value == "''" else value
    _request(ctx, "GET", "/data/statistics", {"Information-Mediator-Client": header})
    ctx["operation"] = ("statistics", "/data/statistics")


@when("User sends GET request without Information-Mediator-Client header")
def statistics_without_header(ctx: dict[str, Any]) -> None:
    _request(ctx, "GET", "/data/statistics", None)
    ctx["operation"] = ("statistics", "/data/statistics")


@when(
    parsers.re(
        r'User provides optional query parameters "(?P<start>[^"]*)" as startDate '
        r'"(?P<end>[^"]*)" as endDate "(?P<name>[^"]*)" as registrationName '
        r'"(?P<operator>[^"]*)" as operator "(?P<role>[^"]*)" as role '
        r'"(?P<timeframe>[^"]*)" as timeframe'
    )
)
def statistics_parameters(
    api_world: World,
    ctx: dict[str, Any],
    start: str,
    end: str,
    name: str,
    operator: str,
    role: str,
    timeframe: str,
) -> None:
    ctx["request"]["params"] = {
        "startDate": start,
        "endDate": end,
        "registrationName": mapped(api_world, ctx, "registrationName", name),
        "operator": operator,
        "role": role,
        "timeframe": timeframe,
    }


@when(parsers.re(r'User provides query parameter "(?P<value>[^"]*)" as registrationName'))
def statistics_registration(api_world: World, ctx: dict[str, Any], value: str) -> None:
    name = mapped(api_world, ctx, "registrationName", value)
    ctx["request"].setdefault("params", {})["registrationName"] = name


# --- then ---------------------------------------------------------------------------------------


@then(parsers.re(r"The response from the .* endpoint is received"))
@then("User receives a response")
def received(api_world: World, ctx: dict[str, Any]) -> None:
    assert isinstance(_send(api_world, ctx), httpx.Response)


@then(parsers.re(r".* should be returned in a timely manner(?: \d+ms)?"))
def answered(ctx: dict[str, Any]) -> None:
    """An answer came (how fast is measured by the benchmarks, not asserted in tests)."""
    assert isinstance(ctx.get("response"), httpx.Response)


@then(parsers.re(r".* should have status (?P<status>\d+)"))
def status(ctx: dict[str, Any], status: str) -> None:
    response: httpx.Response = ctx["response"]
    assert response.status_code == int(status), response.text[:800]


@then(parsers.re(r'.* should have "content-type": "(?P<media>[^"]+)" header'))
def content_type(ctx: dict[str, Any], media: str) -> None:
    assert ctx["response"].headers["content-type"].split(";")[0].strip() == media


@then(parsers.re(r'The response header content-type should be "(?P<media>[^"]+)"'))
def full_content_type(ctx: dict[str, Any], media: str) -> None:
    assert ctx["response"].headers["content-type"] == media


@then(parsers.re(r".* should contains empty array"))
def empty(ctx: dict[str, Any]) -> None:
    assert ctx["response"].json() == []


@then(
    parsers.re(
        r"The (?:PUT )?\S+ response's (?P<field>\w+) should be equal to the \w+ from the request "
        r'"(?P<value>[^"]*)"'
    )
)
def echoed(api_world: World, ctx: dict[str, Any], field: str, value: str) -> None:
    expected = mapped(api_world, ctx, field, value)
    assert ctx["response"].json()[field] == expected


@then(
    parsers.re(
        r'The name field in the response matches with "(?P<name>[^"]*)" provided as name in the '
        r"query parameter"
    )
)
def names_match(ctx: dict[str, Any], name: str) -> None:
    found = ctx["response"].json()
    assert found and all(name.casefold() in item["name"].casefold() for item in found)


@functools.cache
def _spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FOLDER / name).read_text(encoding="utf-8"))
    return loaded


MAIN = "GovStack_Registration_BB_API.json"
STATISTICS = "GovStack_Registration_BB_API_statistics.json"


def _schema(operation: tuple[str, str]) -> dict[str, Any]:
    """The 200 response schema of ``operation`` with the document's components (for refs)."""
    method, path = operation
    if method == "statistics":
        document, found = _spec(STATISTICS), _spec(STATISTICS)["paths"]["/data/statistics"]["get"]
    else:
        document, found = _spec(MAIN), _spec(MAIN)["paths"][path][method]
    content = found["responses"]["200"]["content"]
    schema: dict[str, Any] = next(iter(content.values()))["schema"]
    return {**schema, "components": document["components"]}


@then(parsers.re(r".* should match json schema"))
def matches_schema(ctx: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(ctx["response"].json(), _schema(ctx["operation"]))


@then(parsers.re(r".* should match bad request json schema"))
def matches_error_schema(ctx: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"$ref": "#/components/schemas/systemError", "components": _spec(MAIN)["components"]}
    jsonschema.validate(ctx["response"].json(), schema)
