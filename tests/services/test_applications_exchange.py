"""End to end over real HTTP: a citizen applies for a Moroccan residence certificate through
the GovStack Registration API of a served portal; the identity record and the birth record
are fetched once-only through the portal's own exchange gateway (``jisr.services.evidence``,
real gateways over mutual TLS, the agencies' demo systems); only the proof of housing is
uploaded; an officer of the Ministry of the Interior approves; the credential is issued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jisr.demo import people, scenario
from jisr.identity.identifiers import parse_national_id

from .test_applications import PDF
from .test_evidence import serve_evidence_world
from .test_registration_api import _officer_token, _person_token

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(
    instance_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[scenario.World]:
    directory = tmp_path_factory.mktemp("applications")
    for made, _provided in serve_evidence_world(instance_factory, directory):
        yield made


def test_residence_certificate_through_the_exchange(world: scenario.World) -> None:
    from jisr.identity import service as register
    from jisr.identity.schemas import PersonCreate

    instance = world.instances["MA"]
    citizen = people.DOCUMENTED["MA"]
    with instance.node("idp").session() as session:
        if register.find_person(session, citizen["national_id"]) is None:
            register.create_person(session, PersonCreate(**citizen))
    national_id = parse_national_id(citizen["national_id"]).compact
    with httpx.Client(base_url=world.url("MA"), timeout=60) as http:
        me = {"Authorization": "Bearer " + _person_token(instance, national_id)}
        officer = {"Authorization": "Bearer " + _officer_token(instance, http, "MA/GOV/MOI")}
        upload = http.post(
            "/documents", files={"file": ("bail.pdf", PDF, "application/pdf")}, headers=me
        )
        assert upload.status_code == 200, upload.text
        applied = http.post(
            "/services/ma-residence-certificate/applications",
            json={
                "formData": {"data": {"purpose": "Bank account", "declaration": True}},
                "documentUrls": [upload.json()["url"]],
            },
            headers=me,
        )
        assert applied.status_code == 200, applied.text
        application = applied.json()
        fetched = {d["provider"]: d for d in application["documentsFetched"]}
        assert set(fetched) == {"MA/GOV/DGSN", "MA/GOV/CIVIL-REGISTRY"}
        assert len(application["documentsAsked"]) == 1  # the proof of housing only
        purpose = f"ma-residence-certificate/{application['fileId']}"
        assert all(d["purpose"] == purpose and d["messageId"] for d in fetched.values())
        task = http.get("/tasks", params={"fileId": application["fileId"]}, headers=officer)
        decided = http.post(
            f"/tasks/{task.json()[0]['taskId']}/complete",
            json={"data": {"decision": "approve"}},
            headers=officer,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"]["code"] == "APPROVED"
        final = http.get(f"/applications/{application['fileId']}", headers=me).json()
        assert final["credentialId"]
