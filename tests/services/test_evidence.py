"""Once-only evidence through real gateways over loopback: MA and QA instances, their
registries served over HTTP, the agencies' demo systems, one gateway per member
(``jisr.demo.evidence.provision``), and the portal fetching through its own gateway."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from rich.console import Console

from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.demo import agencies, evidence, people, scenario, servers
from jisr.exchange import service as exchange
from jisr.exchange.gateway import wait_written
from jisr.exchange.identifiers import ServiceId, SubsystemId
from jisr.services import service
from jisr.services.evidence import (
    EvidenceUnavailable,
    GatewayEvidenceSource,
    evidence_source,
    header_text,
)

FATIMA = "MA:AB123456"
MOHAMMED = "QA:28435612345"
OTHER = SubsystemId.parse("MA/GOV/ESERVICES/OTHER")


def serve_evidence_world(
    instance_factory: Any, directory: Path
) -> Iterator[tuple[scenario.World, evidence.EvidenceWorld]]:
    """MA and QA served over HTTP, with the demo agencies' systems and gateways provisioned
    (``jisr.demo.evidence``); everything stopped afterwards."""
    made = scenario.World(directory=directory, console=Console(file=io.StringIO()))
    made.instances = {"MA": instance_factory("MA"), "QA": instance_factory("QA")}
    try:
        for code, instance in made.instances.items():
            made.running[code] = servers.start(instance)
            instance.settings.public_url = made.url(code)
        provided = evidence.provision(made)
        yield made, provided
    finally:
        while made.closers:
            made.closers.pop()()
        for running in made.running.values():
            running.stop()


@pytest.fixture(scope="module")
def world(
    instance_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[scenario.World, evidence.EvidenceWorld]]:
    yield from serve_evidence_world(instance_factory, tmp_path_factory.mktemp("evidence"))


def _portal(world: scenario.World, code: str) -> Any:
    source = evidence_source(world.instances[code].node("portal"))
    assert source is not None
    return source


def _refresh(provided: evidence.EvidenceWorld, code: str) -> None:
    for gateway in provided.gateways[code].values():
        assert gateway.refresh_now(), gateway.runtime.last_refresh_error


def _log(instance: Instance, gateway: str) -> list[tuple[str, dict[str, Any]]]:
    assert wait_written(instance.settings, gateway)  # what it acknowledged, in its chain
    node = instance.node(gateway)
    with node.session() as session:
        rows = session.execute(
            sa.text(
                "SELECT event, data FROM audit_records WHERE chain = 'message-log' ORDER BY seq"
            )
        ).all()
    return [(event, json.loads(data)) for event, data in rows]


def _registry_change(instance: Instance, change: Any) -> None:
    registry = instance.node(REGISTRY_NODE)
    with registry.session() as session:
        change(session)


def test_fetch_through_two_gateways(world: Any) -> None:
    made, provided = world
    purpose = "ma-residence-certificate APP-2026-0001 — loi n° 55-19"
    fetched = _portal(made, "MA").fetch(
        agencies.IDENTITY_RECORD, national_id="MAAB123456", purpose=purpose, user_id="MAAB123456"
    )
    assert fetched.service == agencies.IDENTITY_RECORD
    assert fetched.provider == "MA/GOV/DGSN"
    assert fetched.purpose == purpose
    assert fetched.fetched_at.tzinfo is not None
    assert fetched.data["national_id"] == FATIMA
    assert fetched.data["given_name_latin"] == "Fatima Zahra"
    assert fetched.data["family_name_ar"] == "العمراني"
    # The provider's system received the person, the purpose and the message id.
    call = provided.agencies.app.calls[-1]
    assert call["x_road_id"] == fetched.message_id
    assert call["x_road_client"] == "MA/GOV/ESERVICES/PORTAL"
    assert call["x_road_user_id"] == "MAAB123456"
    assert unquote(call["x_road_issue"]) == purpose
    # Both gateways logged the call under its id; the signed envelope names the purpose.
    instance = made.instances["MA"]
    out = [d for e, d in _log(instance, "gateway-eservices") if d.get("id") == fetched.message_id]
    into = [d for e, d in _log(instance, "gateway-dgsn") if d.get("id") == fetched.message_id]
    assert out and into
    signed = next(d["signature"] for d in into if "signature" in d)
    payload = json.loads(base64.urlsafe_b64decode(signed.split(".")[1] + "=="))
    assert header_text(purpose) in json.dumps(payload)


def test_every_provided_service_answers_each_documented_citizen(world: Any) -> None:
    made, _provided = world
    for code, services in agencies.SERVICES.items():
        citizen = people.DOCUMENTED[code]["national_id"]
        source = _portal(made, code)
        for service_id in services:
            assert source.available(service_id), service_id
            fetched = source.fetch(service_id, national_id=citizen, purpose="test", user_id="t")
            assert fetched.data["national_id"] == citizen
            assert fetched.provider == str(ServiceId.parse(service_id).member)
    fetched = _portal(made, "QA").fetch(
        agencies.NATIONAL_ADDRESS, national_id=MOHAMMED, purpose="test", user_id="QA28435612345"
    )
    assert (fetched.data["zone"], fetched.data["street"], fetched.data["building"]) == (66, 850, 12)
    birth = _portal(made, "MA").fetch(
        agencies.BIRTH_RECORD, national_id=FATIMA, purpose="test", user_id="MAAB123456"
    )
    assert birth.data["born"] == "1990-04-12"


def test_refused_without_access_right(world: Any) -> None:
    made, provided = world
    instance = made.instances["MA"]
    _registry_change(instance, lambda s: exchange.add_subsystem(s, subsystem=OTHER))
    _refresh(provided, "MA")
    portal_gateway = provided.gateways["MA"]["gateway-eservices"]
    calls = len(provided.agencies.app.calls)
    with GatewayEvidenceSource(portal_gateway.url, str(OTHER), cache_seconds=0) as source:
        assert not source.available(agencies.IDENTITY_RECORD)
        with pytest.raises(EvidenceUnavailable) as refused:
            source.fetch(agencies.IDENTITY_RECORD, national_id=FATIMA, purpose="p", user_id="u")
    assert refused.value.params["x_road_error"] == "Server.ServerProxy.AccessDenied"
    assert "AccessDenied" in refused.value.detail
    assert len(provided.agencies.app.calls) == calls  # the provider's system was not asked
    refusals = [
        d
        for e, d in _log(instance, "gateway-dgsn")
        if e == "refused" and d.get("id") == refused.value.params["message_id"]
    ]
    assert refusals and refusals[0]["type"] == "Server.ServerProxy.AccessDenied"


def test_refused_when_the_provider_is_down(world: Any) -> None:
    made, provided = world
    instance = made.instances["MA"]
    spare = agencies.start()
    target = ServiceId.parse("MA/GOV/DGSN/IDENTITY/passport-record")
    spare.app.records[str(target)] = spare.app.records[agencies.IDENTITY_RECORD]

    def publish(session: Any) -> None:
        exchange.add_service(session, service=target, base_url=spare.base_url(str(target)))
        exchange.grant_access(
            session,
            service=target,
            client=evidence.PORTALS["MA"],
            method="GET",
            path="/records/*",
        )

    _registry_change(instance, publish)
    _refresh(provided, "MA")
    with provided.source("MA") as source:
        assert source.available(str(target))
        assert source.fetch(str(target), national_id=FATIMA, purpose="p", user_id="u").data
        spare.stop()
        assert source.available(str(target))  # the exchange still lists it
        with pytest.raises(EvidenceUnavailable) as refused:
            source.fetch(str(target), national_id=FATIMA, purpose="p", user_id="u")
    assert refused.value.params["x_road_error"] == "Server.ServerProxy.ServiceFailed"


def test_unknown_service_is_not_available(world: Any) -> None:
    made, _provided = world
    source = _portal(made, "MA")
    for unknown in (
        "MA/GOV/NOBODY/RECORDS/any-record",  # no such provider
        "MA/GOV/DGSN/IDENTITY/no-such-record",  # a provider that does not offer it
        "MA/GOV/ANCFCC/LAND/property-certificate",  # in the catalogue, not in the demo
        "QA/GOV/MOI/IDENTITY/qid-record",  # another instance's service
        "not a service",
    ):
        assert not source.available(unknown), unknown
        with pytest.raises(EvidenceUnavailable):
            source.fetch(unknown, national_id=FATIMA, purpose="p", user_id="u")
    with pytest.raises(EvidenceUnavailable) as refused:
        source.fetch(
            "MA/GOV/NOBODY/RECORDS/any-record", national_id=FATIMA, purpose="p", user_id="u"
        )
    assert refused.value.params["x_road_error"] == "Server.ClientProxy.UnknownService"


def test_no_record_and_bad_requests_are_refused(world: Any) -> None:
    made, provided = world
    source = _portal(made, "MA")
    with pytest.raises(EvidenceUnavailable) as missing:
        source.fetch(agencies.IDENTITY_RECORD, national_id="MA:ZZ999999", purpose="p", user_id="u")
    assert missing.value.params["provider"] == "MA/GOV/DGSN"
    assert "no record" in missing.value.detail
    calls = len(provided.agencies.app.calls)
    for national_id, purpose, user in (
        ("not-an-id", "p", "u"),
        (FATIMA, "  ", "u"),
        (FATIMA, "p", ""),
    ):
        with pytest.raises(EvidenceUnavailable):
            source.fetch(
                agencies.IDENTITY_RECORD, national_id=national_id, purpose=purpose, user_id=user
            )
    assert len(provided.agencies.app.calls) == calls


def test_unreachable_gateway(world: Any) -> None:
    with GatewayEvidenceSource(
        f"http://127.0.0.1:{free_port()}", "MA/GOV/ESERVICES/PORTAL", timeout=5
    ) as source:
        assert not source.available(agencies.IDENTITY_RECORD)
        with pytest.raises(EvidenceUnavailable) as refused:
            source.fetch(agencies.IDENTITY_RECORD, national_id=FATIMA, purpose="p", user_id="u")
    assert "cannot be reached" in refused.value.detail


def test_metadata_is_cached_per_provider(world: Any, request: pytest.FixtureRequest) -> None:
    made, provided = world
    instance = made.instances["MA"]
    now = [0.0]
    source = GatewayEvidenceSource(
        provided.gateways["MA"]["gateway-eservices"].url,
        "MA/GOV/ESERVICES/PORTAL",
        cache_seconds=60,
        clock=lambda: now[0],
    )
    request.addfinalizer(source.close)

    def metas() -> int:
        return sum(1 for e, _d in _log(instance, "gateway-eservices") if e == "meta")

    before = metas()
    assert source.available(agencies.BIRTH_RECORD)
    assert source.available(agencies.FAMILY_RECORD)  # another provider subsystem
    assert source.available(agencies.BIRTH_RECORD)
    assert metas() == before + 2  # BIRTHS and FAMILY once each
    now[0] = 61.0
    assert source.available(agencies.BIRTH_RECORD)
    assert metas() == before + 3


def test_no_document_the_exchange_supplies_is_asked(world: Any) -> None:
    """Acceptance: every procedure whose evidence the demo world all provides asks the person
    for none of those documents, and each of them is really fetched."""
    made, _provided = world
    checked = 0
    for code in ("MA", "QA"):
        source = _portal(made, code)
        procedures = service.list_procedures(code)
        wanted = {
            str(d.evidence_service)
            for p in procedures
            for d in p.required_documents
            if d.evidence_service
        }
        available = {s for s in wanted if source.available(s)}
        assert available == {s for s in evidence.PROVIDED if s.startswith(code)}
        citizen = people.DOCUMENTED[code]["national_id"]
        for service_id in sorted(available):
            fetched = source.fetch(service_id, national_id=citizen, purpose="t", user_id="t")
            assert fetched.data
        covered = [
            p
            for p in procedures
            if all(
                d.evidence_service is None or str(d.evidence_service) in available
                for d in p.required_documents
            )
            and any(d.evidence_service for d in p.required_documents)
        ]
        assert [p.id for p in covered] == evidence.covered_procedures(code)
        for procedure in covered:
            asked = service.documents_asked(procedure, source)
            assert not [d for d in asked if d.evidence_service], procedure.id
            fetchable = service.documents_fetchable(procedure, source)
            assert {str(d.evidence_service) for d in fetchable} <= available
            assert len(asked) + len(fetchable) == len(procedure.required_documents)
            checked += 1
        for procedure in procedures:  # the rest: only what the exchange cannot supply is asked
            for document in service.documents_asked(procedure, source):
                assert document.evidence_service is None or (
                    str(document.evidence_service) not in available
                )
    assert checked >= 40, checked  # 50 (MA and QA) when written


def test_settings_point_the_portal_at_its_gateway(world: Any, tmp_path: Path) -> None:
    made, provided = world
    for code in ("MA", "QA"):
        settings = made.instances[code].settings
        assert settings.services_exchange_client == f"{code}/GOV/ESERVICES/PORTAL"
        assert settings.services_gateway_url == provided.gateways[code]["gateway-eservices"].url
