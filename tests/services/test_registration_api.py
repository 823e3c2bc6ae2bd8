"""The GovStack Registration API of applications over HTTP (ASGI test client on an app
serving the idp and portal nodes): bearer tokens of the instance's OpenID provider for
applicants and officers, once-only evidence, uploads, tasks, refusals, statistics."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jisr.core.audit.models import AuditRecord
from jisr.core.clock import utcnow
from jisr.services import applications as apps
from jisr.services import registration_api
from jisr.web.app import create_app

from .test_applications import PDF, Source, counts

pytestmark = pytest.mark.db

PERSON = "MAAB123456"
RESIDENCE = "ma-residence-certificate"
FORM = {"purpose": "Opening a bank account", "declaration": True}
IM = {"Information-Mediator-Client": "MA/GOV/ESERVICES/PORTAL"}


def _person_token(instance: Any, national_id: str, scope: str = "openid profile") -> str:
    """An access token of a login, written where the provider keeps it (what the code
    flow's token endpoint does; that flow is tested in tests/identity)."""
    from jisr.identity import service as register
    from jisr.identity.oidc import service as oidc
    from jisr.identity.oidc.models import OidcToken

    value = secrets.token_urlsafe(32)
    with instance.node("idp").session() as session:
        client = oidc.get_client(session, "portal-ma")
        if client is None:
            oidc.create_client(
                session, client_id="portal-ma", name="Portal", redirect_uris=["https://p/cb"]
            )
            client = oidc.get_client(session, "portal-ma")
        assert client is not None
        person = register.get_person_by_national_id(session, national_id)
        now = utcnow()
        session.add(
            OidcToken(
                access_token_hash=oidc.digest(value),
                client_pk=client.id,
                person_id=person.id,
                scope=scope,
                claims=[],
                acr="",
                amr=["pwd"],
                auth_time=now,
                issued_at=now,
                expires_at=now + dt.timedelta(minutes=10),
            )
        )
    return value


def _officer_token(instance: Any, http: TestClient, agency: str) -> str:
    """A client_credentials token for ``agency:<agency>``, through the token endpoint."""
    from jisr.identity.oidc import service as oidc

    client_id = "officer-" + agency.replace("/", "-").lower()
    with instance.node("idp").session() as session:
        made = oidc.create_client(
            session,
            client_id=client_id,
            name=f"Officer {agency}",
            redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=[f"agency:{agency}"],
            claims=[],
        )
    assert made.secret is not None
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": f"agency:{agency}"},
        auth=(client_id, made.secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


class World:
    def __init__(self, instance: Any, http: TestClient) -> None:
        self.instance = instance
        self.http = http
        self.citizen = {"Authorization": "Bearer " + _person_token(instance, PERSON)}
        self.moi = {"Authorization": "Bearer " + _officer_token(instance, http, "MA/GOV/MOI")}
        self.dgi = {"Authorization": "Bearer " + _officer_token(instance, http, "MA/GOV/DGI")}

    def upload(self, content: bytes = PDF, name: str = "bail.pdf") -> Any:
        return self.http.post(
            "/documents",
            files={"file": (name, content, "application/pdf")},
            headers=self.citizen,
        )

    def apply(self, procedure: str = RESIDENCE, **body: Any) -> Any:
        body.setdefault("formData", {"data": FORM})
        return self.http.post(
            f"/services/{procedure}/applications", json=body, headers=self.citizen
        )

    def file(self) -> str:
        """The id of a new application, its one document uploaded (so it is submitted)."""
        file_id: str = self.apply(documentUrls=[self.upload().json()["url"]]).json()["fileId"]
        return file_id

    def act(self, file_id: str, headers: dict[str, str], **data: Any) -> Any:
        """``PUT /applications/{file_id}`` with ``data`` as the form data (an officer's action)."""
        return self.http.put(
            f"/applications/{file_id}", json={"formData": {"data": data}}, headers=headers
        )


def serve_world(instance_factory: Any) -> Iterator[World]:
    """An MA instance whose register holds the documented citizen, served in-process."""
    from jisr.demo.people import FATIMA
    from jisr.identity import service as register
    from jisr.identity.schemas import PersonCreate

    instance = instance_factory("MA")
    with instance.node("idp").session() as session:
        register.create_person(session, PersonCreate(**FATIMA))
    app = create_app(instance, configure_logs=False)
    with TestClient(app, base_url="https://testserver") as http:
        yield World(instance, http)


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[World]:
    yield from serve_world(instance_factory)


@pytest.fixture(autouse=True)
def exchange(monkeypatch: pytest.MonkeyPatch) -> Source:
    """The portal's evidence source: an in-test one (the exchange-backed one is tested
    with the exchange)."""
    source = Source()
    monkeypatch.setattr(registration_api, "_evidence_source", lambda node: source)
    return source


def test_eforms(world: World) -> None:
    forms = world.http.get(f"/services/{RESIDENCE}/eForms", headers={"accept-language": "fr"})
    assert forms.status_code == 200 and forms.headers["content-type"] == "application/json"
    assert forms.json()[0]["eFormId"] == f"{RESIDENCE}.form"
    form = world.http.get(f"/eForms/{RESIDENCE}.form").json()
    assert form["schema"]["required"] == ["purpose", "declaration"]
    missing = world.http.get("/eForms/n0t-ex1st1ng-eForm#-1d")
    assert missing.status_code == 404


def test_the_whole_workflow(world: World) -> None:
    http = world.http
    uploaded = world.upload()
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["type"] == "application/pdf"
    url = uploaded.json()["url"]
    applied = world.apply(documentUrls=[url], applicantId=PERSON)
    assert applied.status_code == 200, applied.text
    application = applied.json()
    assert application["status"]["code"] == "PENDING" and application["state"] == "submitted"
    assert application["applicationData"]["applicantId"] == PERSON
    assert [d["provider"] for d in application["documentsFetched"]] == [
        "MA/GOV/DGSN",
        "MA/GOV/CIVIL-REGISTRY",
    ]
    assert application["documentsMissing"] == []
    file_id = application["fileId"]
    assert http.get(f"/applications/{file_id}", headers=world.citizen).status_code == 200
    assert file_id in [a["fileId"] for a in http.get("/applications", headers=world.citizen).json()]

    tasks = http.get("/tasks", headers=world.moi, params={"fileId": file_id}).json()
    assert [t["kind"] for t in tasks] == ["review"] and tasks[0]["roleId"] == "MA/GOV/MOI"
    assert http.get("/tasks", headers=world.dgi, params={"fileId": file_id}).json() == []
    task_id = tasks[0]["taskId"]
    assert http.get(f"/tasks/{task_id}", headers=world.moi).json()["taskId"] == task_id

    asked = http.post(
        f"/tasks/{task_id}/complete",
        json={"data": {"decision": "request-information", "question": "Since when?"}},
        headers=world.moi,
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"]["code"] == "SENDBACK"
    mine = http.get("/tasks", headers=world.citizen).json()
    question = next(t for t in mine if t["fileId"] == file_id)
    assert question["kind"] == "provide-information" and question["description"] == "Since when?"
    answered = http.post(
        f"/tasks/{question['taskId']}/complete",
        json={"data": {"answer": "Since 2019."}},
        headers=world.citizen,
    )
    assert answered.json()["status"]["code"] == "PENDING"
    approved = http.post(
        f"/tasks/{task_id}/complete", json={"data": {"decision": "approve"}}, headers=world.moi
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"]["code"] == "APPROVED"
    final = http.get(f"/applications/{file_id}", headers=world.citizen).json()
    assert final["ended"] is True and final["credentialId"]

    stats = http.get("/data/statistics", headers=IM, params={"registrationName": RESIDENCE})
    assert stats.status_code == 200
    assert stats.headers["content-type"] == "application/json; charset=utf-8"
    figures = stats.json()[0]
    assert figures["processed"] >= 1 and figures["approved"] >= 1 and figures["sentBack"] >= 1
    assert figures["documentsFetched"] >= 2
    ours = http.get("/api/statistics/services", params={"country": "MA"}).json()
    assert ours["overall"]["approved"] >= 1

    # Every state change of this application is on the services chain.
    with world.instance.node("portal").session() as session:
        events = set(
            session.scalars(sa.select(AuditRecord.event).where(AuditRecord.chain == apps.CHAIN))
        )
    assert {"services.application.approved", "services.evidence.fetched"} <= events


def test_waiting_for_documents_then_the_task(world: World) -> None:
    applied = world.apply()
    assert applied.status_code == 200
    assert applied.json()["state"] == "draft"
    assert len(applied.json()["documentsMissing"]) == 1
    task = next(
        t
        for t in world.http.get("/tasks", headers=world.citizen).json()
        if t["fileId"] == applied.json()["fileId"]
    )
    assert task["kind"] == "provide-documents"
    done = world.http.post(
        f"/tasks/{task['taskId']}/complete",
        json={"data": {"documentUrls": [world.upload().json()["url"]]}},
        headers=world.citizen,
    )
    assert done.status_code == 200 and done.json()["status"]["code"] == "PENDING"


def test_operator_update(world: World) -> None:
    file_id = world.file()
    unchanged = world.http.put(
        f"/applications/{file_id}", json={"applicantId": PERSON}, headers=world.moi
    )
    assert unchanged.status_code == 200 and unchanged.json()["fileId"] == file_id
    rejected = world.act(file_id, world.moi, action="reject", reason="Outside our area.")
    assert rejected.json()["status"]["code"] == "REJECTED"
    assert rejected.json()["decisionReason"] == "Outside our area."


class TestRefusals:
    """Each is an RFC 9457 problem and changes nothing."""

    def refused(self, world: World, response_of: Any, status: int, code: str | None = None) -> Any:
        before = counts(world.instance)
        response = response_of()
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if code is not None:
            assert response.json()["code"] == code
        assert counts(world.instance) == before
        return response

    def test_no_token(self, world: World) -> None:
        self.refused(
            world, lambda: world.http.post(f"/services/{RESIDENCE}/applications", json={}), 401
        )
        bad = {"Authorization": "Bearer not-a-token"}
        self.refused(world, lambda: world.http.get("/applications", headers=bad), 401)

    def test_officer_cannot_apply_and_citizen_cannot_decide(self, world: World) -> None:
        self.refused(
            world,
            lambda: world.http.post(
                f"/services/{RESIDENCE}/applications",
                json={"formData": {"data": FORM}},
                headers=world.moi,
            ),
            403,
        )
        file_id = world.file()
        self.refused(
            world,
            lambda: world.act(file_id, world.citizen, action="approve"),
            403,
        )

    def test_applying_for_someone_else(self, world: World) -> None:
        self.refused(world, lambda: world.apply(applicantId="MAZZ999999"), 403)

    def test_unknown_procedure(self, world: World) -> None:
        self.refused(
            world, lambda: world.apply("n0t-ex1st1ng-serv1ce-1d"), 404, "procedure-not-found"
        )

    def test_missing_form_field(self, world: World) -> None:
        response = self.refused(
            world,
            lambda: world.apply(formData={"data": {"declaration": True}}),
            422,
            "invalid-form",
        )
        assert response.json()["field"] == "purpose"

    def test_wrong_file_type(self, world: World) -> None:
        self.refused(
            world, lambda: world.upload(b"GIF89a....", "photo.pdf"), 422, "document-refused"
        )
        self.refused(world, lambda: world.http.post("/documents", headers=world.citizen), 400)

    def test_oversized_upload(self, world: World) -> None:
        limit = world.instance.settings.services_upload_max_bytes
        big = PDF + b"\x00" * (limit - len(PDF) + 1)
        self.refused(world, lambda: world.upload(big), 413, "document-too-large")

    def test_officer_of_another_agency(self, world: World) -> None:
        file_id = world.file()
        task = world.http.get("/tasks", headers=world.moi, params={"fileId": file_id}).json()[0]
        self.refused(
            world,
            lambda: world.http.post(
                f"/tasks/{task['taskId']}/complete",
                json={"data": {"decision": "approve"}},
                headers=world.dgi,
            ),
            403,
            "not-your-agency",
        )
        self.refused(
            world,
            lambda: world.act(file_id, world.dgi, action="reject", reason="x"),
            403,
            "not-your-agency",
        )
        self.refused(
            world, lambda: world.http.get(f"/applications/{file_id}", headers=world.dgi), 404
        )

    def test_illegal_transition(self, world: World) -> None:
        file_id = world.file()
        world.act(file_id, world.moi, action="reject", reason="No.")
        self.refused(
            world,
            lambda: world.act(file_id, world.moi, action="take-in-review"),
            409,
            "illegal-transition",
        )

    def test_statistics_header(self, world: World) -> None:
        for header in (
            {},
            {"Information-Mediator-Client": "invalid_header"},
            {"Information-Mediator-Client": "eGovStack/GOV/90000009/"},
        ):
            assert world.http.get("/data/statistics", headers=header).status_code == 400
        unknown = world.http.get(
            "/data/statistics", headers=IM, params={"registrationName": "n0tex1st"}
        )
        assert unknown.status_code == 404


class TestOfficerScopes:
    """``agency:<member id>`` is an administrative scope only, and must name a member."""

    def test_malformed_or_non_administrative_agency_scopes_are_refused(self, world: World) -> None:
        from jisr.identity.oidc import service as oidc
        from jisr.identity.oidc.errors import InvalidClientMetadata

        with world.instance.node("idp").session() as session:
            with pytest.raises(InvalidClientMetadata):
                oidc.create_client(
                    session,
                    client_id="officer-bad",
                    name="Bad",
                    redirect_uris=[],
                    grant_types=["client_credentials"],
                    scopes=["agency:not a member"],
                    claims=[],
                )
            with pytest.raises(InvalidClientMetadata):
                oidc.create_client(
                    session,
                    client_id="rp-with-agency",
                    name="RP",
                    redirect_uris=["https://rp/cb"],
                    scopes=["openid", "agency:MA/GOV/MOI"],
                )

    def test_tokens_of_the_wrong_kind(self, world: World) -> None:
        no_openid = {"Authorization": "Bearer " + _person_token(world.instance, PERSON, "profile")}
        assert world.http.get("/applications", headers=no_openid).status_code == 403
        from jisr.identity.oidc import service as oidc

        with world.instance.node("idp").session() as session:
            made = oidc.create_client(
                session,
                client_id="iam-admin-x",
                name="Admin",
                redirect_uris=[],
                grant_types=["client_credentials"],
                scopes=["client_mgmt"],
                claims=[],
            )
        assert made.secret is not None
        token = world.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "client_mgmt"},
            auth=("iam-admin-x", made.secret),
        ).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        assert world.http.get("/tasks", headers=admin).status_code == 403
        asked_other = world.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "agency:MA/GOV/DGI"},
            auth=("iam-admin-x", made.secret),
        )
        assert asked_other.status_code == 400 or "agency" not in asked_other.json().get("scope", "")
