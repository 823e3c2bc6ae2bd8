"""Every refusal, from the attacker's (or the careless caller's) side: a clear X-Road error,
and a record of it in the message log."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jisr.core.crypto import ca
from jisr.core.instance import REGISTRY_NODE
from jisr.exchange import envelope, provisioning, server, server_proxy, service
from jisr.exchange.gateway import GatewayRuntime, wait_written
from jisr.exchange.identifiers import MemberId, SubsystemId

from .conftest import (
    BIRTH_RECORD,
    OTHER,
    PORTAL,
    RECEIVED,
    SERVICE_PATH,
    ExchangeWorld,
    build_world,
    fault,
    free_port,
    message_log,
    refusals,
    run_in_own_loop,
    tls_client_context,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]

PROVIDER = "gateway-civil-registry"
TLS_REFUSED = "Server.ServerProxy.SslAuthenticationFailed"


def _tls_refusals(world: ExchangeWorld, count: int) -> list[dict[str, Any]]:
    """The provider's logged TLS handshake refusals, once there are ``count`` (they are
    logged as the handshake fails, after the client has seen it fail)."""
    deadline = time.monotonic() + 30
    while True:
        logged = [
            d for d in refusals(world, PROVIDER, TLS_REFUSED) if d.get("reason") and "address" in d
        ]
        if len(logged) >= count or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


LATE = MemberId.parse("MA/COM/LATE")
LATE_APP = SubsystemId.parse("MA/COM/LATE/APP")
STOLEN = MemberId.parse("MA/COM/STOLEN")
STOLEN_APP = SubsystemId.parse("MA/COM/STOLEN/APP")


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[ExchangeWorld]:
    """The shared world plus a gateway with expired certificates and one whose TLS
    certificate is revoked; both granted access, so only their certificates stand in the way."""
    made = build_world(instance_factory("MA"))
    try:
        registry = made.instance.node(REGISTRY_NODE)
        for member, app in ((LATE, LATE_APP), (STOLEN, STOLEN_APP)):
            with registry.session() as session:
                service.add_member(session, member=member, name=member.code)
                service.add_subsystem(session, subsystem=app)
                service.grant_access(session, service=BIRTH_RECORD, client=app)
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
        for member, kwargs in ((LATE, {"validity_days": 1, "not_before": past}), (STOLEN, {})):
            info = provisioning.create_gateway(
                made.instance,
                member=member,
                address=f"127.0.0.1:{free_port()}",
                registry_url=made.registry.url,
                **kwargs,
            )
            made.gateways[info.name] = server.start_gateway(made.instance, info.name)
        with registry.session() as session:
            stolen = service.get_gateway(session, name="gateway-stolen")
            serial = ca.load_certificate(stolen.tls_certificate.encode()).serial_number
            ca.revoke_certificate(session, registry.keys, serial=serial, reason="keyCompromise")
        for running in made.gateways.values():
            assert running.refresh_now(), running.runtime.last_refresh_error
    except BaseException:
        made.close()
        raise
    yield made
    made.close()


def _peer(world: ExchangeWorld) -> httpx.Client:
    """A client holding the e-services gateway's TLS key (as a compromised or buggy gateway)."""
    consumer = world.consumer_gateway.runtime
    conf = consumer.usable_conf()
    assert conf is not None
    context = consumer.peer_context(conf.gateways["gateway-civil-registry"])
    return httpx.Client(
        base_url=f"https://127.0.0.1:{world.provider_gateway.peer_port}", verify=context
    )


def _signed(world: ExchangeWorld, *, body: bytes = b"", **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "sender": "gateway-eservices",
        "instance": "MA",
        "id": str(uuid.uuid4()),
        "client": str(PORTAL),
        "service": str(BIRTH_RECORD),
        "method": "GET",
        "path": "/births/1",
        "query": "",
        "user_id": None,
        "issue": None,
        "headers": [],
        **overrides,
    }
    return envelope.sign_request(world.consumer_gateway.runtime.signing_key, body=body, **fields)


class TestClientProxy:
    @pytest.mark.parametrize(
        "client", ["MA/GOV/ESERVICES/NOPE", "MA/GOV/CIVIL-REGISTRY/BIRTHS", "MA/NGO/X/Y"]
    )
    def test_unknown_client(self, world: ExchangeWorld, client: str) -> None:
        body = fault(world.call(headers={"X-Road-Client": client}), "Client.UnknownMember", 400)
        assert (
            refusals(world, "gateway-eservices", "Client.UnknownMember")[-1]["id"]
            == (body["detail"])
        )

    @pytest.mark.parametrize("client", ["", "MA/GOV/ESERVICES", "MA/XYZ/A/B", "MA/GOV/A/B C"])
    def test_malformed_client(self, world: ExchangeWorld, client: str) -> None:
        fault(world.call(headers={"X-Road-Client": client}), "Client.InvalidClientIdentifier", 400)

    def test_missing_client(self, world: ExchangeWorld) -> None:
        response = httpx.get(world.client_url + SERVICE_PATH + "/births/1", timeout=20)
        fault(response, "Client.InvalidClientIdentifier", 400)

    def test_wrong_instance(self, world: ExchangeWorld) -> None:
        response = httpx.get(
            world.client_url + "/r1/QA/GOV/MOI/BIRTHS/birth-record/births/1",
            headers={"X-Road-Client": str(PORTAL)},
            timeout=20,
        )
        fault(response, "Client.InvalidServiceIdentifier", 400)
        response = world.call(headers={"X-Road-Client": "QA/GOV/ESERVICES/PORTAL"})
        fault(response, "Client.InvalidClientIdentifier", 400)
        assert refusals(world, "gateway-eservices", "Client.InvalidServiceIdentifier")

    def test_bad_protocol_version_and_unknown_service(self, world: ExchangeWorld) -> None:
        response = httpx.get(world.client_url + "/r2/MA/GOV/A/B/C", timeout=20)
        fault(response, "Client.InvalidProtocolVersion", 400)
        response = httpx.get(
            world.client_url + "/r1/MA/GOV/CIVIL-REGISTRY/BIRTHS/nope/x",
            headers={"X-Road-Client": str(PORTAL)},
            timeout=20,
        )
        fault(response, "Server.ClientProxy.UnknownService", 400)

    def test_oversized_body(self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(world.instance.settings, "exchange_max_body_bytes", 1000)
        response = world.call("/echo", method="POST", content=b"x" * 1001)
        fault(response, "Client.MessageTooLarge", 413)
        assert refusals(world, "gateway-eservices", "Client.MessageTooLarge")


class TestServerProxy:
    def test_no_access_right(self, world: ExchangeWorld) -> None:
        body = fault(
            world.call(headers={"X-Road-Client": str(OTHER)}),
            "Server.ServerProxy.AccessDenied",
            403,
        )
        logged = refusals(world, "gateway-civil-registry", "Server.ServerProxy.AccessDenied")
        assert logged[-1]["id"] == body["detail"]
        assert logged[-1]["client"] == str(OTHER)

    @pytest.mark.parametrize(("method", "path"), [("POST", "/births/1"), ("GET", "/deaths/1")])
    def test_access_right_is_per_method_and_path(
        self, world: ExchangeWorld, method: str, path: str
    ) -> None:
        fault(world.call(path, method=method), "Server.ServerProxy.AccessDenied", 403)

    def test_replayed_message_id(self, world: ExchangeWorld) -> None:
        message_id = f"replay-{uuid.uuid4()}"
        assert world.call(headers={"X-Road-Id": message_id}).status_code == 200
        second = world.call(headers={"X-Road-Id": message_id})
        fault(second, "Server.ServerProxy.DuplicateMessageId", 409)
        with _peer(world) as peer:  # the very same signed request, sent again
            signature = _signed(world)
            headers = {envelope.SIGNATURE_HEADER: signature}
            assert peer.get(SERVICE_PATH + "/births/1", headers=headers).status_code == 200
            again = peer.get(SERVICE_PATH + "/births/1", headers=headers)
        fault(again, "Server.ServerProxy.DuplicateMessageId", 409)
        assert refusals(world, "gateway-civil-registry", "Server.ServerProxy.DuplicateMessageId")

    def test_replay_after_a_restart_is_refused_by_the_guard_table(
        self, world: ExchangeWorld
    ) -> None:
        """The gateway's memory of recent ids is gone after a restart; at start it reads the
        window's ids back from the replay guard's table (``load_recent``, as a new runtime
        does), so the replay is still refused, before the provider's system sees it."""
        runtime = world.provider_gateway.runtime
        for method, path, body in (("GET", "/births/1", b""), ("POST", "/echo", b'{"a": 1}')):
            signature = _signed(world, body=body, method=method, path=path)
            headers = {envelope.SIGNATURE_HEADER: signature}
            message_id = envelope.claimed_id(signature)
            with _peer(world) as peer:
                first = peer.request(method, SERVICE_PATH + path, content=body, headers=headers)
                assert first.status_code == 200, first.text
                assert wait_written(world.instance.settings, "gateway-civil-registry")
                restarted = GatewayRuntime(world.instance, "gateway-civil-registry")
                try:
                    assert not restarted.first_sight(str(PORTAL), str(message_id))
                    assert restarted.first_sight(str(PORTAL), f"never-{uuid.uuid4()}")
                finally:
                    restarted.close()
                runtime._recent.clear()  # as after a restart ...
                assert runtime.load_recent() >= 1  # ... and its start
                received = len(RECEIVED)
                again = peer.request(method, SERVICE_PATH + path, content=body, headers=headers)
            fault(again, "Server.ServerProxy.DuplicateMessageId", 409)
            assert "national_id" not in again.text and "echo" not in again.text
            assert len(RECEIVED) == received, "a replay reached the provider's system"
            written = [
                event
                for event, data in message_log(world, "gateway-civil-registry")
                if data.get("id") == message_id and event in ("request.in", "response.out")
            ]
            assert written == ["request.in", "response.out"], "the replay wrote a record"
        assert (
            len(refusals(world, "gateway-civil-registry", "Server.ServerProxy.DuplicateMessageId"))
            >= 2
        )

    def test_tampered_body(self, world: ExchangeWorld) -> None:
        signature = _signed(world, body=b'{"a": 1}', method="POST", path="/echo")
        with _peer(world) as peer:
            response = peer.post(
                SERVICE_PATH + "/echo",
                content=b'{"a": 2}',
                headers={envelope.SIGNATURE_HEADER: signature},
            )
        body = fault(response, "Server.ServerProxy.InvalidSignatureValue", 400)
        assert "digest" in str(response.json()["message"]) and body
        assert refusals(world, "gateway-civil-registry", "Server.ServerProxy.InvalidSignatureValue")

    def test_tampered_signature_or_envelope(self, world: ExchangeWorld) -> None:
        head, payload, sig = _signed(world).split(".")
        forged = ".".join((head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]))
        with _peer(world) as peer:
            response = peer.get(
                SERVICE_PATH + "/births/1", headers={envelope.SIGNATURE_HEADER: forged}
            )
            fault(response, "Server.ServerProxy.InvalidSignatureValue", 400)
            # a genuine envelope for another path: the message differs from what was signed
            response = peer.get(
                SERVICE_PATH + "/births/2", headers={envelope.SIGNATURE_HEADER: _signed(world)}
            )
            fault(response, "Server.ServerProxy.InvalidMessage", 400)
            response = peer.get(SERVICE_PATH + "/births/1")
            fault(response, "Server.ServerProxy.MissingSignature", 400)
            # a client of another member than the sending gateway's
            other = _signed(world, client="MA/GOV/CIVIL-REGISTRY/BIRTHS")
            response = peer.get(
                SERVICE_PATH + "/births/1", headers={envelope.SIGNATURE_HEADER: other}
            )
            fault(response, "Server.ServerProxy.UnknownMember", 403)

    def test_oversized_body(self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(world.instance.settings, "exchange_max_body_bytes", 1000)
        body = b"x" * 1001
        signature = _signed(world, body=body, method="POST", path="/echo")
        with _peer(world) as peer:
            response = peer.post(
                SERVICE_PATH + "/echo", content=body, headers={envelope.SIGNATURE_HEADER: signature}
            )
        fault(response, "Server.ServerProxy.MessageTooLarge", 413)
        assert refusals(world, "gateway-civil-registry", "Server.ServerProxy.MessageTooLarge")


class TestCertificates:
    def test_expired_certificate(self, world: ExchangeWorld) -> None:
        late = world.gateways["gateway-late"]
        response = httpx.get(
            late.url + SERVICE_PATH + "/births/1",
            headers={"X-Road-Client": str(LATE_APP)},
            timeout=20,
        )
        fault(response, "Server.ClientProxy.SslAuthenticationFailed", 500)
        assert refusals(world, "gateway-late", "Server.ClientProxy.SslAuthenticationFailed")

    def test_revoked_certificate(self, world: ExchangeWorld) -> None:
        stolen = world.gateways["gateway-stolen"]
        response = httpx.get(
            stolen.url + SERVICE_PATH + "/births/1",
            headers={"X-Road-Client": str(STOLEN_APP)},
            timeout=20,
        )
        fault(response, "Server.ClientProxy.SslAuthenticationFailed", 500)
        assert "revoked" in response.json()["message"]
        # whoever stole the key and skips the gateway software is refused by the provider
        runtime = stolen.runtime
        conf = runtime.usable_conf()
        assert conf is not None
        context = runtime.peer_context(conf.gateways["gateway-civil-registry"])
        signature = envelope.sign_request(
            runtime.signing_key,
            sender="gateway-stolen",
            instance="MA",
            id="stolen-1",
            client=str(STOLEN_APP),
            service=str(BIRTH_RECORD),
            method="GET",
            path="/births/1",
            query="",
            user_id=None,
            issue=None,
            headers=[],
            body=b"",
        )
        response = httpx.get(
            f"https://127.0.0.1:{world.provider_gateway.peer_port}{SERVICE_PATH}/births/1",
            headers={envelope.SIGNATURE_HEADER: signature},
            verify=context,
            timeout=20,
        )
        body = fault(response, "Server.ServerProxy.SslAuthenticationFailed", 403)
        assert body["detail"] == "stolen-1"
        logged = refusals(
            world, "gateway-civil-registry", "Server.ServerProxy.SslAuthenticationFailed"
        )
        assert logged[-1]["reason"] == "revoked"
        assert logged[-1]["peer"] == "gateway-stolen"

    def test_certificate_of_another_ca(
        self, world: ExchangeWorld, instance_factory: Any, tmp_path: Any
    ) -> None:
        other = instance_factory("QA", nodes=["registry"])
        cafile = world.provider_gateway.runtime.files.ca
        context = tls_client_context(other, cafile, tmp_path, "gateway-eservices")
        url = f"https://127.0.0.1:{world.provider_gateway.peer_port}{SERVICE_PATH}/births/1"
        # refused in the TLS handshake: no HTTP exchange, so no X-Road error can be sent
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(url, verify=context, headers={envelope.SIGNATURE_HEADER: "x"}, timeout=10)
        without = ssl.create_default_context(cafile=str(world.provider_gateway.runtime.files.ca))
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(url, verify=without, timeout=10)
        # ... and both are in the provider's log, with the reason and where they came from
        logged = _tls_refusals(world, 2)
        assert logged[-2]["reason"] == "CERTIFICATE_VERIFY_FAILED"
        assert "unable to get local issuer certificate" in logged[-2]["message"]
        assert logged[-1]["reason"] == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        for record in logged[-2:]:
            assert record["side"] == "server" and record["address"].startswith("127.0.0.1:")

    def test_not_tls_on_the_peer_port_is_logged_a_closed_probe_is_not(
        self, world: ExchangeWorld
    ) -> None:
        before = len(_tls_refusals(world, 0))
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            httpx.get(f"http://127.0.0.1:{world.provider_gateway.peer_port}/r1", timeout=10)
        probe = socket.create_connection(("127.0.0.1", world.provider_gateway.peer_port))
        probe.close()  # connected and left without a byte: a port probe, not a refusal
        logged = _tls_refusals(world, before + 1)
        assert logged[-1]["reason"] == "HTTP_REQUEST"
        time.sleep(0.5)
        assert len(_tls_refusals(world, 0)) == before + 1
        assert world.call().status_code == 200  # the gateways still talk

    def test_a_flood_of_refused_handshakes_is_counted_beyond_ten_a_second(
        self, world: ExchangeWorld
    ) -> None:
        flood = MemberId.parse("MA/COM/FLOOD")
        with world.instance.node(REGISTRY_NODE).session() as session:
            service.add_member(session, member=flood, name="Flood")
        info = provisioning.create_gateway(
            world.instance,
            member=flood,
            address=f"127.0.0.1:{free_port()}",
            registry_url=world.registry.url,
        )
        runtime = GatewayRuntime(world.instance, info.name)

        async def twenty_five() -> None:
            refused = server_proxy.HandshakeRefusals(runtime)
            expired = ssl.SSLCertVerificationError(1, "certificate verify failed")
            expired.verify_message = "certificate has expired"
            plain = ssl.SSLError(1, "http request")
            plain.reason = "HTTP_REQUEST"
            for index in range(25):
                refused(expired if index % 2 else plain, ("192.0.2.7", 40000 + index))
            refused(ConnectionResetError(), ("192.0.2.7", 50000))  # the peer left: nothing
            await asyncio.sleep(1.2)  # the second ends: the rest is logged as one count
            await runtime.flush()

        try:
            runtime.open_journal()
            run_in_own_loop(twenty_five)
        finally:
            runtime.close()
        logged = [d for e, d in message_log(world, info.name) if e == "refused"]
        assert [d["reason"] for d in logged[:10]] == [
            "HTTP_REQUEST",
            "CERTIFICATE_VERIFY_FAILED",
        ] * 5
        assert "certificate has expired" in logged[1]["message"]
        assert logged[0]["address"] == "192.0.2.7:40000"
        assert len(logged) == 11
        assert logged[10]["reason"] == "MANY"
        assert logged[10]["counts"] == {"HTTP_REQUEST": 8, "CERTIFICATE_VERIFY_FAILED": 7}
        assert all(d["type"] == TLS_REFUSED for d in logged)
