"""Cross-border calls: a QA subsystem calls an MA service through both gateways, over mutual
TLS, trusted only through the federation agreement both registries signed; and every way
that is refused (service outside the agreement, wrong instance, a CA or registry key that is
not pinned), each with its X-Road error and a record in the refusing gateway's log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jisr.core import federation as agreements
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.demo import servers
from jisr.exchange import envelope, federation, globalconf, provisioning, server, service
from jisr.exchange.errors import PeerConfRefused
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId

from .conftest import (
    BIRTH_RECORD,
    PORTAL,
    SERVICE_PATH,
    ExchangeWorld,
    build_world,
    fault,
    free_port,
    gateway_log,
    tls_client_context,
)
from .conftest import refusals as ma_refusals

pytestmark = [pytest.mark.db, pytest.mark.slow]

MOI = MemberId.parse("QA/GOV/MOI")
QA_SERVICES = SubsystemId.parse("QA/GOV/MOI/SERVICES")
QA_OTHER = SubsystemId.parse("QA/GOV/MOI/OTHER")
DEATH_RECORD = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/death-record")
QA_SERVICE = ServiceId.parse("QA/GOV/MOI/SERVICES/residence")


@dataclass
class Federated:
    ma: ExchangeWorld
    qa: Instance
    qa_registry: servers.RunningServer
    qa_gateway: server.RunningGateway
    agreement_id: str

    def call(self, service_id: ServiceId, path: str, client: SubsystemId) -> httpx.Response:
        return httpx.get(
            f"{self.qa_gateway.url}/r1/{service_id}{path}",
            headers={"X-Road-Client": str(client)},
            timeout=20,
        )

    def qa_log(self, type_: str) -> list[dict[str, Any]]:
        view = dataclasses.replace(self.ma, instance=self.qa)
        return ma_refusals(view, "gateway-moi", type_)


def _agree(ma: Instance, qa: Instance) -> str:
    """MA offers (opening birth-record, not death-record, to QA), QA countersigns, both
    install."""
    ma_registry, qa_registry = ma.node(REGISTRY_NODE), qa.node(REGISTRY_NODE)
    with qa_registry.session() as session:
        qa_kid = agreements.registry_key_thumbprint(session, node=qa_registry)
    with ma_registry.session() as session:
        ma_kid = agreements.registry_key_thumbprint(session, node=ma_registry)
        offer = agreements.make_offer(
            session,
            node=ma_registry,
            peer="QA",
            peer_key_thumbprint=qa_kid,
            open_services=[str(BIRTH_RECORD)],
        )
    with qa_registry.session() as session:
        document = agreements.countersign(
            session, node=qa_registry, offer=offer, peer_key_thumbprint=ma_kid
        )
    agreement_id = ""
    for instance in (ma, qa):
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            agreement_id = agreements.install_agreement(
                session, node=registry, document=document
            ).id
    return agreement_id


@pytest.fixture(scope="module")
def fed(instance_factory: Any) -> Iterator[Federated]:
    ma_world = build_world(instance_factory("MA"))
    qa = instance_factory("QA")
    qa_server = servers.start(qa)
    made: Federated | None = None
    try:
        ma, ma_registry, qa_registry = (
            ma_world.instance,
            ma_world.instance.node(REGISTRY_NODE),
            qa.node(REGISTRY_NODE),
        )
        ma.settings.public_url = ma_world.registry.url
        qa.settings.public_url = qa_server.url
        agreement_id = _agree(ma, qa)
        with ma_registry.session() as session:
            service.add_service(session, service=DEATH_RECORD, base_url=ma_world.provider.url)
            service.grant_access(
                session, service=BIRTH_RECORD, client=QA_SERVICES, method="GET", path="/births/*"
            )
            # granted, but not opened by the agreement: only the agreement stands in the way
            service.grant_access(session, service=DEATH_RECORD, client=QA_SERVICES)
        with qa_registry.session() as session:
            service.add_member(session, member=MOI, name="Ministry of Interior")
            for subsystem in (QA_SERVICES, QA_OTHER):
                service.add_subsystem(session, subsystem=subsystem)
            service.add_service(session, service=QA_SERVICE, base_url=ma_world.provider.url)
            service.grant_access(session, service=QA_SERVICE, client=PORTAL)
        info = provisioning.create_gateway(
            qa, member=MOI, address=f"127.0.0.1:{free_port()}", registry_url=qa_server.url
        )
        qa_gateway = server.start_gateway(qa, info.name)
        made = Federated(ma_world, qa, qa_server, qa_gateway, agreement_id)
        # each registry learns the other's shared parameters (pinned key), then its gateways
        assert federation.refresh_peer(ma_registry, peer="QA").version >= 1
        assert federation.refresh_peer(qa_registry, peer="MA").version >= 1
        for running in [*ma_world.gateways.values(), qa_gateway]:
            assert running.refresh_now(), running.runtime.last_refresh_error
    except BaseException:
        if made is not None:
            made.qa_gateway.stop()
        qa_server.stop()
        ma_world.close()
        raise
    yield made
    made.qa_gateway.stop()
    qa_server.stop()
    ma_world.close()


def _from_qa_gateway(
    fed: Federated, service_id: ServiceId, path: str, **overrides: Any
) -> httpx.Response:
    """A request signed with the QA gateway's keys sent straight to MA's peer listener (as a
    QA gateway that skipped its own checks would)."""
    runtime = fed.qa_gateway.runtime
    conf = runtime.usable_conf()
    assert conf is not None
    ma_gateway = conf.federations["MA"].peer.gateways["gateway-civil-registry"]
    fields: dict[str, Any] = {
        "sender": "gateway-moi",
        "instance": "MA",
        "id": str(uuid.uuid4()),
        "client": str(QA_SERVICES),
        "service": str(service_id),
        "method": "GET",
        "path": path,
        "query": "",
        "user_id": None,
        "issue": None,
        "headers": [],
        **overrides,
    }
    signature = envelope.sign_request(runtime.signing_key, body=b"", **fields)
    return httpx.get(
        f"https://127.0.0.1:{fed.ma.provider_gateway.peer_port}/r1/{service_id}{path}",
        headers={envelope.SIGNATURE_HEADER: signature},
        verify=runtime.peer_context(ma_gateway),
        timeout=20,
    )


class TestCrossBorderCall:
    def test_qa_subsystem_reads_ma_birth_record(self, fed: Federated) -> None:
        response = fed.call(BIRTH_RECORD, "/births/MA:AB123456", QA_SERVICES)
        assert response.status_code == 200, response.text
        assert response.json()["national_id"] == "MA:AB123456"
        assert response.headers["x-road-client"] == str(QA_SERVICES)
        message_id = response.headers["x-road-id"]
        ma_log = {
            (event, data.get("id")): data
            for event, data in gateway_log(fed.ma.instance, "gateway-civil-registry")
        }
        assert ma_log[("request.in", message_id)]["from"] == "QA:gateway-moi"
        assert ma_log[("response.out", message_id)]["to"] == "QA:gateway-moi"
        qa_log = {(e, d.get("id")): d for e, d in gateway_log(fed.qa, "gateway-moi")}
        assert qa_log[("request.out", message_id)]["to"] == "MA:gateway-civil-registry"
        assert qa_log[("response.in", message_id)]["status"] == 200

    def test_the_configuration_carries_the_verified_federation(self, fed: Federated) -> None:
        conf = fed.ma.provider_gateway.runtime.usable_conf()
        assert conf is not None
        federated = conf.federations["QA"]
        assert federated.agreement_id == fed.agreement_id
        assert federated.opens == {str(BIRTH_RECORD)} and federated.peer_opens == set()
        assert "gateway-moi" in federated.peer.gateways and federated.usable()

    def test_list_clients_of_the_federated_instance(self, fed: Federated) -> None:
        listed = httpx.get(f"{fed.qa_gateway.url}/listClients?instanceId=MA", timeout=20).json()
        ids = {
            (c["id"]["objectType"], c["id"]["memberCode"], c["id"].get("applicationCode"))
            for c in listed["member"]
        }
        assert ("MEMBER", "CIVIL-REGISTRY", None) in ids
        assert ("APPLICATION", "ESERVICES", "PORTAL") in ids
        assert {c["id"]["instanceId"] for c in listed["member"]} == {"MA"}
        unknown = httpx.get(f"{fed.qa_gateway.url}/listClients?instanceId=ZZ", timeout=20)
        assert unknown.json() == {"member": []}

    def test_access_rights_still_apply(self, fed: Federated) -> None:
        body = fault(
            fed.call(BIRTH_RECORD, "/births/1", QA_OTHER), "Server.ServerProxy.AccessDenied", 403
        )
        logged = ma_refusals(fed.ma, "gateway-civil-registry", "Server.ServerProxy.AccessDenied")
        assert logged[-1]["id"] == body["detail"] and logged[-1]["client"] == str(QA_OTHER)
        assert logged[-1]["peer"] == "QA:gateway-moi"
        # the right is per method and path, across the border as well
        fault(
            fed.call(BIRTH_RECORD, "/deaths/1", QA_SERVICES), "Server.ServerProxy.AccessDenied", 403
        )


class TestRefresh:
    def test_the_registry_downloads_missing_shared_parameters_by_itself(
        self, fed: Federated
    ) -> None:
        import sqlalchemy as sa

        from jisr.exchange.models import PeerConf

        ma_registry = fed.ma.instance.node(REGISTRY_NODE)
        with ma_registry.session() as session:
            session.execute(sa.delete(PeerConf))
        # a gateway asking for the configuration makes the registry fetch them again
        assert fed.ma.provider_gateway.refresh_now()
        with ma_registry.session() as session:
            assert [p.peer for p in federation.list_peer_confs(session)] == ["QA"]
        assert fed.call(BIRTH_RECORD, "/births/1", QA_SERVICES).status_code == 200

    def test_cli_sync_and_list(self, fed: Federated) -> None:
        from typer.testing import CliRunner

        from jisr.cli import app

        runner = CliRunner()
        d = str(fed.ma.instance.path)
        result = runner.invoke(app, ["exchange", "federation", "sync", "QA", "--dir", d])
        assert result.exit_code == 0 and "Shared parameters of QA" in result.output, result.output
        result = runner.invoke(app, ["exchange", "federation", "list", "--dir", d, "--json"])
        listed = json.loads(result.output)
        assert [(p["peer"], p["agreement_id"]) for p in listed] == [("QA", fed.agreement_id)]
        # a registry answering with something not signed by the pinned key changes nothing
        result = runner.invoke(
            app,
            ["exchange", "federation", "sync", "QA", "--url", fed.ma.registry.url, "--dir", d],
        )
        assert result.exit_code == 1 and "pinned key" in result.output, result.output
        result = runner.invoke(app, ["exchange", "federation", "list", "--dir", d, "--json"])
        assert json.loads(result.output) == listed


class TestRefusals:
    def test_service_outside_the_agreement(self, fed: Federated) -> None:
        body = fault(
            fed.call(DEATH_RECORD, "/1", QA_SERVICES), "Server.ClientProxy.ServiceNotFederated", 403
        )
        assert fed.agreement_id in body["message"]
        assert fed.qa_log("Server.ClientProxy.ServiceNotFederated")[-1]["id"] == body["detail"]
        # a QA gateway skipping that check is refused by MA's gateway, which logs it
        response = _from_qa_gateway(fed, DEATH_RECORD, "/1")
        body = fault(response, "Server.ServerProxy.ServiceNotFederated", 403)
        logged = ma_refusals(
            fed.ma, "gateway-civil-registry", "Server.ServerProxy.ServiceNotFederated"
        )
        assert logged[-1]["id"] == body["detail"]
        assert logged[-1]["federation"] == fed.agreement_id

    def test_nothing_is_opened_the_other_way(self, fed: Federated) -> None:
        response = httpx.get(
            f"{fed.ma.client_url}/r1/{QA_SERVICE}/x",
            headers={"X-Road-Client": str(PORTAL)},
            timeout=20,
        )
        fault(response, "Server.ClientProxy.ServiceNotFederated", 403)
        assert ma_refusals(fed.ma, "gateway-eservices", "Server.ClientProxy.ServiceNotFederated")

    def test_wrong_instance(self, fed: Federated) -> None:
        response = fed.call(ServiceId.parse("ZZ/GOV/X/Y/z"), "/1", QA_SERVICES)
        body = fault(response, "Client.InvalidServiceIdentifier", 400)
        assert "no federation agreement" in body["message"]
        assert fed.qa_log("Client.InvalidServiceIdentifier")
        # a message addressed to another instance than the receiving gateway's
        response = _from_qa_gateway(fed, BIRTH_RECORD, "/births/1", instance="QA")
        fault(response, "Server.ServerProxy.InvalidMessage", 400)
        # a QA gateway speaking for an MA subsystem
        response = _from_qa_gateway(fed, BIRTH_RECORD, "/births/1", client=str(PORTAL))
        fault(response, "Server.ServerProxy.UnknownMember", 403)
        assert ma_refusals(fed.ma, "gateway-civil-registry", "Server.ServerProxy.UnknownMember")

    def test_shared_parameters_not_signed_by_the_pinned_key(
        self, fed: Federated, instance_factory: Any
    ) -> None:
        impostor = instance_factory("QA", nodes=["registry"])
        registry = impostor.node(REGISTRY_NODE)
        with registry.session() as session:
            token = federation.shared_params(session, node=registry)
        ma_registry = fed.ma.instance.node(REGISTRY_NODE)
        with ma_registry.session() as session:
            held = federation.list_peer_confs(session)[0]
            with pytest.raises(PeerConfRefused, match="pinned key"):
                federation.store_peer_conf(session, node=ma_registry, peer="QA", token=token)
            assert federation.list_peer_confs(session)[0] == held
            # nor for an instance without an agreement
            with pytest.raises(agreements.AgreementNotFound):
                federation.store_peer_conf(session, node=ma_registry, peer="ZZ", token=token)

    def test_a_federation_no_longer_in_force(
        self, fed: Federated, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        for running, peer in ((fed.qa_gateway, "MA"), (fed.ma.provider_gateway, "QA")):
            conf = running.runtime.usable_conf()
            assert conf is not None
            ended = dataclasses.replace(conf.federations[peer], valid_until=past)
            expired = dataclasses.replace(conf, federations={peer: ended})
            monkeypatch.setattr(running.runtime, "_conf", expired)
            if peer == "MA":  # the client's gateway refuses before sending
                response = fed.call(BIRTH_RECORD, "/births/1", QA_SERVICES)
                fault(response, "Server.ClientProxy.OutdatedGlobalConf", 500)
                assert fed.qa_log("Server.ClientProxy.OutdatedGlobalConf")
            else:  # the provider's gateway refuses a sender whose federation ended
                response = _from_qa_gateway(fed, BIRTH_RECORD, "/births/1")
                fault(response, "Server.ServerProxy.OutdatedGlobalConf", 500)
                assert ma_refusals(
                    fed.ma, "gateway-civil-registry", "Server.ServerProxy.OutdatedGlobalConf"
                )
            monkeypatch.undo()
        assert fed.call(BIRTH_RECORD, "/births/1", QA_SERVICES).status_code == 200

    def test_older_shared_parameters_are_refused(self, fed: Federated) -> None:
        qa_registry = fed.qa.node(REGISTRY_NODE)
        ma_registry = fed.ma.instance.node(REGISTRY_NODE)
        with qa_registry.session() as session:
            older = federation.shared_params(session, node=qa_registry)
            service.add_subsystem(session, subsystem=SubsystemId.parse("QA/GOV/MOI/LATER"))
        with qa_registry.session() as session:
            newer = federation.shared_params(session, node=qa_registry)
        with ma_registry.session() as session:
            kept = federation.store_peer_conf(session, node=ma_registry, peer="QA", token=newer)
        with ma_registry.session() as session, pytest.raises(PeerConfRefused, match="older"):
            federation.store_peer_conf(session, node=ma_registry, peer="QA", token=older)
        with ma_registry.session() as session:
            assert federation.list_peer_confs(session) == [kept]

    def test_a_tampered_federation_is_left_out(self, fed: Federated) -> None:
        conf = fed.ma.provider_gateway.runtime.usable_conf()
        assert conf is not None
        item = next(f for f in conf.document["federations"] if f["instance"] == "QA")
        head, payload, signature = str(item["shared"]).split(".")
        forged = {**item, "shared": ".".join((head, payload[:-2] + "AA", signature))}
        assert globalconf._federations("MA", [forged]) == {}
        assert set(globalconf._federations("MA", [item])) == {"QA"}

    def test_certificate_of_a_ca_that_is_not_pinned(
        self, fed: Federated, instance_factory: Any, tmp_path: Any
    ) -> None:
        url = f"https://127.0.0.1:{fed.ma.provider_gateway.peer_port}{SERVICE_PATH}/births/1"
        # another instance's CA, no agreement: refused in the TLS handshake
        other = instance_factory("ZZ", nodes=["registry"])
        context = tls_client_context(
            other, fed.ma.provider_gateway.runtime.files.ca, tmp_path / "zz", "gateway-moi"
        )
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(url, verify=context, headers={envelope.SIGNATURE_HEADER: "x"}, timeout=10)
        # QA's CA is pinned through the agreement, but this certificate is no QA gateway's
        context = tls_client_context(
            fed.qa, fed.ma.provider_gateway.runtime.files.ca, tmp_path / "qa", "gateway-moi"
        )
        response = httpx.get(url, verify=context, timeout=10)
        fault(response, "Server.ServerProxy.SslAuthenticationFailed", 403)
        assert ma_refusals(
            fed.ma, "gateway-civil-registry", "Server.ServerProxy.SslAuthenticationFailed"
        )
