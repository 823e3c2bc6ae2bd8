"""Once-only evidence without a network: the path convention, the portal's settings, the
error's problem details, ``documents_asked`` with a source, and the agencies' demo system."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from jisr.core.errors import ConfigurationError
from jisr.core.instance import Node
from jisr.core.settings import load_settings
from jisr.demo import agencies
from jisr.demo.evidence import PROVIDED, access_pattern
from jisr.identity.errors import InvalidNationalId
from jisr.services import service
from jisr.services.evidence import (
    EvidenceUnavailable,
    Fetched,
    GatewayEvidenceSource,
    evidence_source,
    header_text,
    record_path,
)


def test_record_path_convention() -> None:
    assert record_path(agencies.IDENTITY_RECORD, "maab123456") == "/records/MA:AB123456"
    assert record_path(agencies.QID_RECORD, "QA28435612345") == "/records/QA:28435612345"
    assert record_path(agencies.BIRTH_RECORD, "MA:AB123456") == "/births/MA:AB123456"
    assert access_pattern(agencies.IDENTITY_RECORD) == "/records/*"
    assert access_pattern(agencies.BIRTH_RECORD) == "/births/*"
    with pytest.raises(InvalidNationalId):
        record_path(agencies.IDENTITY_RECORD, "../../etc")


def test_header_text_keeps_ascii_and_encodes_the_rest() -> None:
    assert header_text("APP-2026-0042 law 55-19, art. 4") == "APP-2026-0042 law 55-19, art. 4"
    assert header_text("loi n° 55-19") == "loi n%C2%B0 55-19"
    assert header_text("شهادة السكنى").isascii()
    assert header_text("100%") == "100%25"


def _node(tmp_path: Any, **values: Any) -> Node:
    return Node("portal", load_settings(tmp_path, **values))


def test_evidence_source_follows_the_settings(tmp_path: Any) -> None:
    assert evidence_source(_node(tmp_path)) is None
    source = evidence_source(
        _node(
            tmp_path,
            services_gateway_url="http://127.0.0.1:9/",
            services_exchange_client="MA/GOV/ESERVICES/PORTAL",
        )
    )
    assert isinstance(source, GatewayEvidenceSource)
    assert source.gateway_url == "http://127.0.0.1:9"
    same = evidence_source(
        _node(
            tmp_path,
            services_gateway_url="http://127.0.0.1:9/",
            services_exchange_client="MA/GOV/ESERVICES/PORTAL",
        )
    )
    assert same is source  # its metadata cache outlives a request
    with pytest.raises(ConfigurationError):
        evidence_source(_node(tmp_path, services_gateway_url="http://127.0.0.1:9"))
    with pytest.raises(ConfigurationError):
        evidence_source(
            _node(
                tmp_path,
                services_gateway_url="http://127.0.0.1:9",
                services_exchange_client="MA/GOV/ESERVICES",
            )
        )


def test_evidence_unavailable_is_a_problem_in_three_languages() -> None:
    error = EvidenceUnavailable(
        "The exchange refused to supply {service}: {reason}",
        service=agencies.IDENTITY_RECORD,
        reason="Server.ServerProxy.AccessDenied",
        x_road_error="Server.ServerProxy.AccessDenied",
    )
    problems = {lang: error.to_problem(language=lang) for lang in ("ar", "fr", "en")}
    for problem in problems.values():
        assert problem["status"] == 502
        assert problem["code"] == "evidence-unavailable"
        assert problem["x_road_error"] == "Server.ServerProxy.AccessDenied"
        assert agencies.IDENTITY_RECORD in problem["detail"]
    assert len({p["title"] for p in problems.values()}) == 3
    assert len({p["detail"] for p in problems.values()}) == 3


@dataclass
class FakeSource:
    """An EvidenceSource that knows a fixed set of services (for documents_asked only)."""

    services: set[str]
    asked: list[str] = field(default_factory=list)

    def available(self, service: str) -> bool:
        self.asked.append(service)
        return service in self.services

    def fetch(self, service: str, *, national_id: str, purpose: str, user_id: str) -> Fetched:
        raise EvidenceUnavailable("The exchange refused to supply {service}: {reason}")


def test_documents_asked_follows_the_source() -> None:
    procedure = next(
        p
        for p in service.list_procedures("MA")
        if len({d.evidence_service for d in p.required_documents if d.evidence_service}) >= 2
    )
    marked = [d for d in procedure.required_documents if d.evidence_service]
    unmarked = [d for d in procedure.required_documents if not d.evidence_service]
    # Without a source: the catalogue's marks (unchanged behaviour).
    assert service.documents_asked(procedure) == unmarked
    assert service.documents_fetchable(procedure) == marked
    # Nothing available: everything is asked.
    assert service.documents_asked(procedure, FakeSource(set())) == list(
        procedure.required_documents
    )
    assert service.documents_fetchable(procedure, FakeSource(set())) == []
    # One service available: only its documents are not asked.
    one = str(marked[0].evidence_service)
    source = FakeSource({one})
    asked = service.documents_asked(procedure, source)
    assert marked[0] not in asked
    assert all(d in asked for d in procedure.required_documents if d.evidence_service != one)
    assert service.documents_fetchable(procedure, source) == [
        d for d in marked if d.evidence_service == one
    ]


def test_agencies_answer_the_demo_population() -> None:
    app = agencies.AgenciesApp()
    base = f"/{agencies.IDENTITY_RECORD}"
    status, record = app.answer("GET", f"{base}/records/MA:AB123456", {"x-road-id": "m1"})
    assert status == 200 and record["given_name_latin"] == "Fatima Zahra"
    assert app.calls[-1]["x_road_id"] == "m1"
    status, record = app.answer("GET", f"/{agencies.BIRTH_RECORD}/births/MA:AB123456", {})
    assert status == 200 and record["born"] == "1990-04-12"
    status, record = app.answer("GET", f"/{agencies.QID_RECORD}/records/QA:28435612345", {})
    assert status == 200 and record["qid"] == "28435612345"
    status, record = app.answer("GET", f"/{agencies.RESIDENCE_RECORD}/records/MA:AB123456", {})
    assert status == 200 and record["city"] == "Rabat"
    status, record = app.answer("GET", f"/{agencies.FAMILY_RECORD}/records/MA:AB123456", {})
    assert status == 200 and record["holder"]["family_name_latin"] == "El Amrani"
    assert {service for services in agencies.SERVICES.values() for service in services} == set(
        PROVIDED
    )
    for service_id, records in app.records.items():
        assert len(records) > 250, service_id


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/{agencies.IDENTITY_RECORD}/records/MA:ZZ999999", 404),  # nobody
        ("GET", f"/{agencies.IDENTITY_RECORD}/records/nonsense", 404),
        ("GET", f"/{agencies.IDENTITY_RECORD}/births/MA:AB123456", 404),  # not its path
        ("GET", f"/{agencies.IDENTITY_RECORD}/records/MA:AB123456/more", 404),
        ("GET", "/MA/GOV/NOBODY/X/y/records/MA:AB123456", 404),
        ("POST", f"/{agencies.IDENTITY_RECORD}/records/MA:AB123456", 405),
    ],
)
def test_agencies_refuse_what_they_do_not_hold(method: str, path: str, status: int) -> None:
    assert agencies.AgenciesApp().answer(method, path, {})[0] == status
