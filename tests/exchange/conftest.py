"""One exchange world per test module: an MA instance whose registry serves the global
configuration over HTTP, a provider information system, and two gateways over mutual TLS.

Members: the civil registry (``MA/GOV/CIVIL-REGISTRY``, subsystem ``BIRTHS``, service
``birth-record``) and the e-services (``MA/GOV/ESERVICES``, subsystems ``PORTAL``, granted
``GET /births/*`` and ``POST /echo``, and ``OTHER``, granted nothing).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jisr.core.crypto import ca
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.demo import servers
from jisr.exchange import provisioning, server, service
from jisr.exchange.gateway import wait_written
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId

PROVIDER = MemberId.parse("MA/GOV/CIVIL-REGISTRY")
CONSUMER = MemberId.parse("MA/GOV/ESERVICES")
BIRTHS = SubsystemId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS")
PORTAL = SubsystemId.parse("MA/GOV/ESERVICES/PORTAL")
OTHER = SubsystemId.parse("MA/GOV/ESERVICES/OTHER")
BIRTH_RECORD = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record")
SERVICE_PATH = "/r1/MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record"


async def read_body(receive: Any) -> bytes:
    """The whole body of an ASGI HTTP request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


RECEIVED: list[tuple[str, str]] = []  # (method, path) of every request the provider system got


async def provider_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A provider information system: GET /births/<id> and POST /echo (echoes what came)."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    path = scope["path"]
    RECEIVED.append((scope["method"], path))
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if path.startswith("/births/"):
        status, answer = 200, {"national_id": path.rsplit("/", 1)[1], "born": "1990-01-01"}
    elif path == "/echo":
        status = 200
        answer = {
            "method": scope["method"],
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
        }
    else:
        status, answer = 404, {"error": "no such record"}
    data = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"x-provider", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": data})


@dataclass
class AsgiServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_asgi(app: Any, port: int = 0) -> AsgiServer:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server_ = uvicorn.Server(config)
    thread = threading.Thread(target=server_.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server_.started:
        assert thread.is_alive() and time.monotonic() < deadline, "provider did not start"
        time.sleep(0.02)
    bound = server_.servers[0].sockets[0].getsockname()[1]
    return AsgiServer(server_, thread, int(bound))


@dataclass
class ExchangeWorld:
    instance: Instance
    registry: servers.RunningServer
    provider: AsgiServer
    gateways: dict[str, server.RunningGateway] = field(default_factory=dict)

    @property
    def client_url(self) -> str:
        return self.gateways["gateway-eservices"].url

    @property
    def provider_gateway(self) -> server.RunningGateway:
        return self.gateways["gateway-civil-registry"]

    @property
    def consumer_gateway(self) -> server.RunningGateway:
        return self.gateways["gateway-eservices"]

    def call(self, path: str = "/births/MA:AB123456", **kwargs: Any) -> httpx.Response:
        method = kwargs.pop("method", "GET")
        headers = {"X-Road-Client": str(PORTAL), **kwargs.pop("headers", {})}
        return httpx.request(
            method, self.client_url + SERVICE_PATH + path, headers=headers, timeout=20, **kwargs
        )

    def close(self) -> None:
        for running in self.gateways.values():
            running.stop()
        self.provider.stop()
        self.registry.stop()


def build_world(instance: Instance, *, refresh_seconds: float = 60.0) -> ExchangeWorld:
    instance.settings.exchange_globalconf_refresh_seconds = refresh_seconds
    registry_node = instance.node(REGISTRY_NODE)
    provider = serve_asgi(provider_app)
    with registry_node.session() as session:
        signer = registry_node.checkpoint_signer(session)
        service.add_member(session, member=PROVIDER, name="Civil registry", signer=signer)
        service.add_member(session, member=CONSUMER, name="E-services", signer=signer)
        for subsystem in (BIRTHS, PORTAL, OTHER):
            service.add_subsystem(session, subsystem=subsystem, signer=signer)
        service.add_service(session, service=BIRTH_RECORD, base_url=provider.url, signer=signer)
        service.grant_access(
            session, service=BIRTH_RECORD, client=PORTAL, method="GET", path="/births/*"
        )
        service.grant_access(
            session, service=BIRTH_RECORD, client=PORTAL, method="POST", path="/echo"
        )
    registry = servers.start(instance)
    world = ExchangeWorld(instance=instance, registry=registry, provider=provider)
    try:
        for member in (PROVIDER, CONSUMER):
            info = provisioning.create_gateway(
                instance,
                member=member,
                address=f"127.0.0.1:{free_port()}",
                registry_url=registry.url,
            )
            world.gateways[info.name] = server.start_gateway(instance, info.name)
        for running in world.gateways.values():
            assert running.refresh_now(), running.runtime.last_refresh_error
    except BaseException:
        world.close()
        raise
    return world


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[ExchangeWorld]:
    made = build_world(instance_factory("MA"))
    yield made
    made.close()


def invoke(*args: str) -> tuple[int, str]:
    """Run ``jisr exchange ARGS``; its exit code and output."""
    from typer.testing import CliRunner

    from jisr.cli import app

    result = CliRunner().invoke(app, ["exchange", *args])
    return result.exit_code, result.output


def run_in_own_loop(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on a loop of its own, in a thread of its own (the session's browser
    keeps an event loop in the test's thread, where ``asyncio.run`` fails), and raise what
    it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as error:  # handed to the test's thread
            raised.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the coroutine did not end"
    if raised:
        raise raised[0]


def gateway_log(instance: Instance, gateway: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of every record of the message log of ``instance``'s ``gateway``,
    once what it acknowledged is in its chain (its journal is empty)."""
    import sqlalchemy as sa

    assert wait_written(instance.settings, gateway), f"{gateway}'s journal is not written"
    with instance.node(gateway).session() as session:
        rows = session.execute(
            sa.text(
                "SELECT event, data FROM audit_records WHERE chain = 'message-log' ORDER BY seq"
            )
        ).all()
    return [(event, json.loads(data)) for event, data in rows]


def message_log(world: ExchangeWorld, gateway: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of every record of a gateway's message log, in order."""
    return gateway_log(world.instance, gateway)


def refusals(world: ExchangeWorld, gateway: str, type_: str) -> list[dict[str, Any]]:
    return [d for e, d in message_log(world, gateway) if e == "refused" and d["type"] == type_]


def fault(response: httpx.Response, type_: str, status: int) -> dict[str, Any]:
    """The X-Road error ``response`` carries, checked to be ``type_`` with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["x-road-error"] == type_
    body: dict[str, Any] = response.json()
    assert body["type"] == type_ and body["message"] and body["detail"]
    return body


def tls_client_context(
    issuer: Instance, cafile: Path, directory: Path, common_name: str
) -> ssl.SSLContext:
    """A TLS client context trusting ``cafile`` and presenting a certificate for
    ``common_name`` that ``issuer``'s CA issued (its PEM files written in ``directory``)."""
    directory.mkdir(parents=True, exist_ok=True)
    registry = issuer.node(REGISTRY_NODE)
    key = ec.generate_private_key(ec.SECP256R1())
    with registry.session() as session:
        cert = ca.issue_certificate(
            session,
            registry.keys,
            public_key=key.public_key(),
            common_name=common_name,
            usage=ca.CertificateUsage.TLS,
            ip_addresses=["127.0.0.1"],
        )
    (directory / "c.pem").write_bytes(ca.to_pem(cert))
    (directory / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(cafile=str(cafile))
    context.load_cert_chain(str(directory / "c.pem"), str(directory / "k.pem"))
    return context
