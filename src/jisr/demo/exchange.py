"""Demo step: MA agencies exchange a birth record through two gateways (X-Road style).

The civil registry (``MA/GOV/CIVIL-REGISTRY``, subsystem ``BIRTHS``) publishes the service
``birth-record``, answered by its own small system (``jisr.demo.civil_registry``). The
e-services (``MA/GOV/ESERVICES``) get a right for their ``PORTAL`` subsystem only. The portal
reads the demo citizen's record through its gateway, which signs the call and sends it over
mutual TLS to the civil registry's gateway, which checks the right, asks the registry's system,
signs the answer and logs it; a call from ``ANALYTICS``, without a right, is refused.

Across the border: MA opens ``birth-record`` to QA in the federation agreement
(``jisr.demo.federation``, reused when installed), grants QA's ``QA/GOV/MOI/SERVICES`` a
right, and each registry downloads the other's shared parameters (checked with the pinned
federation key); QA's subsystem then reads the record through QA's gateway and MA's, and a
service the agreement does not open is refused.

Idempotent: on a reused world, what exists is kept (the service's URL is moved to the
system's new port).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.orm import Session

from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.demo import civil_registry
from jisr.demo import federation as demo_federation
from jisr.exchange import federation, provisioning, server, service
from jisr.exchange.errors import ExchangeError
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId, gateway_name

if TYPE_CHECKING:
    from jisr.demo.scenario import World

PROVIDER = MemberId.parse("MA/GOV/CIVIL-REGISTRY")
CONSUMER = MemberId.parse("MA/GOV/ESERVICES")
BIRTHS = SubsystemId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS")
PORTAL = SubsystemId.parse("MA/GOV/ESERVICES/PORTAL")
ANALYTICS = SubsystemId.parse("MA/GOV/ESERVICES/ANALYTICS")
BIRTH_RECORD = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record")
NOT_OPENED = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/death-record")  # never registered
QA_MOI = MemberId.parse("QA/GOV/MOI")
QA_SERVICES = SubsystemId.parse("QA/GOV/MOI/SERVICES")


def _keep(world: World, running: Any) -> None:
    """Stop ``running`` when the world closes."""
    world.closers.append(running.stop)


def _register(world: World, instance: Instance, provider_url: str) -> None:
    registry = instance.node(REGISTRY_NODE)
    with registry.session() as session:
        signer = registry.checkpoint_signer(session)
        steps: list[tuple[str, Any]] = [
            (
                "member " + str(PROVIDER),
                lambda: service.add_member(
                    session, member=PROVIDER, name="Civil registry", signer=signer
                ),
            ),
            (
                "member " + str(CONSUMER),
                lambda: service.add_member(
                    session, member=CONSUMER, name="E-services agency", signer=signer
                ),
            ),
            *[
                (
                    f"subsystem {s}",
                    lambda s=s: service.add_subsystem(session, subsystem=s, signer=signer),
                )
                for s in (BIRTHS, PORTAL, ANALYTICS)
            ],
            (
                f"service {BIRTH_RECORD}",
                lambda: service.add_service(
                    session, service=BIRTH_RECORD, base_url=provider_url, signer=signer
                ),
            ),
            (
                f"access right: {PORTAL} may GET /births/* of {BIRTH_RECORD.code}",
                lambda: service.grant_access(
                    session,
                    service=BIRTH_RECORD,
                    client=PORTAL,
                    method="GET",
                    path="/births/*",
                    signer=signer,
                ),
            ),
        ]
        added = []
        for label, action in steps:
            try:
                action()
                added.append(label)
            except ExchangeError:
                pass  # already there (a reused world)
        service.set_service_url(session, service=BIRTH_RECORD, base_url=provider_url)
    world.say("registry: " + ("registered " + "; ".join(added) if added else "all in place"))


def exchange_step(world: World) -> None:
    world.step("MA agencies exchange a birth record through two gateways (signed, mTLS, logged)")
    instance = world.instances["MA"]
    provider_is = civil_registry.start()
    _keep(world, provider_is)
    world.say(f"the civil registry's own system answers at {provider_is.url}/births/<id>")
    _register(world, instance, provider_is.url)
    registry_url = world.url("MA")
    names = [gateway_name(member) for member in (PROVIDER, CONSUMER)]
    for member, name in zip((PROVIDER, CONSUMER), names, strict=True):
        if name not in instance.nodes:
            provisioning.create_gateway(
                instance,
                member=member,
                address=f"127.0.0.1:{free_port()}",
                registry_url=registry_url,
            )
            world.say(f"{name}: node created; the MA CA issued its TLS and signing certificates")
    urls = {}
    started = []
    for member, name in zip((PROVIDER, CONSUMER), names, strict=True):
        running = server.start_gateway(instance, name, registry_url=registry_url)
        started.append(running)
        _keep(world, running)
        if not running.refresh_now():
            raise RuntimeError(f"{name} cannot load the global configuration")
        conf = running.runtime.conf
        version = conf.version if conf else "?"
        world.say(
            f"{name}: serving {running.url} (its agency's systems) and "
            f"https://{running.peer_host}:{running.peer_port} (mutual TLS); "
            f"global configuration v{version} verified"
        )
        urls[member] = running.url
    target = f"{urls[CONSUMER]}/r1/{BIRTH_RECORD}/births/{civil_registry.CITIZEN}"
    with httpx.Client(timeout=20) as client:
        answer = client.get(
            target, headers={"X-Road-Client": str(PORTAL), "X-Road-UserId": "MAAB123456"}
        )
        if answer.status_code != 200:
            raise RuntimeError(f"the exchange call failed: {answer.text}")
        record = answer.json()
        world.say(
            f"{PORTAL} read {record['national_id']} ({record['name_latin']}, born "
            f"{record['born']}): 200, X-Road-Id {answer.headers['x-road-id']}, request hash "
            f"{answer.headers['x-road-request-hash'][:16]}…"
        )
        refused = client.get(target, headers={"X-Road-Client": str(ANALYTICS)})
        if refused.headers.get("x-road-error") != "Server.ServerProxy.AccessDenied":
            raise RuntimeError(f"a call without access right was not refused: {refused.text}")
        world.say(
            f"{ANALYTICS}, without an access right: refused {refused.status_code} "
            f"{refused.headers['x-road-error']} ({refused.json()['message']})"
        )
    world.say("both gateways logged each request and response with its signature (message-log)")
    _across_the_border(world, started)


def _qa_side(world: World) -> None:
    """QA's registry knows its interior ministry's subsystem; MA grants it the birth record."""
    qa = world.instances["QA"].node(REGISTRY_NODE)
    ma = world.instances["MA"].node(REGISTRY_NODE)
    actions: list[tuple[Any, Callable[[Session], object]]] = [
        (qa, lambda s: service.add_member(s, member=QA_MOI, name="Ministry of Interior")),
        (qa, lambda s: service.add_subsystem(s, subsystem=QA_SERVICES)),
        (
            ma,
            lambda s: service.grant_access(
                s, service=BIRTH_RECORD, client=QA_SERVICES, method="GET", path="/births/*"
            ),
        ),
    ]
    for registry, action in actions:
        with registry.session() as session:
            try:
                action(session)
            except ExchangeError:
                pass  # already there (a reused world)


def _across_the_border(world: World, ma_gateways: list[server.RunningGateway]) -> None:
    """A QA subsystem reads the MA birth record through QA's and MA's gateways, trusted
    through the federation agreement (``jisr.demo.federation``)."""
    ma, qa = world.instances["MA"], world.instances["QA"]
    world.say(f"federation agreement: {demo_federation.agree(world)}")
    _qa_side(world)
    name = gateway_name(QA_MOI)
    if name not in qa.nodes:
        provisioning.create_gateway(
            qa, member=QA_MOI, address=f"127.0.0.1:{free_port()}", registry_url=world.url("QA")
        )
        world.say(f"QA {name}: node created; the QA CA issued its certificates")
    qa_gateway = server.start_gateway(qa, name, registry_url=world.url("QA"))
    _keep(world, qa_gateway)
    # Each registry downloads the other's shared parameters (CA, CRL, gateways), checked
    # with the federation key the agreement pins, and signs them into its configuration.
    for here, peer in ((ma, "QA"), (qa, "MA")):
        info = federation.refresh_peer(
            here.node(REGISTRY_NODE), peer=peer, base_url=world.url(peer)
        )
        world.say(
            f"{here.code} registry: {peer}'s shared parameters v{info.version} verified with "
            "the pinned federation key"
        )
    for running in [*ma_gateways, qa_gateway]:
        if not running.refresh_now():
            raise RuntimeError(f"{running.runtime.name} cannot load the global configuration")
    conf = qa_gateway.runtime.conf
    opened = sorted(conf.federations["MA"].peer_opens) if conf and "MA" in conf.federations else []
    world.say(f"QA {name}: serving {qa_gateway.url}; MA opens to QA: {', '.join(opened)}")
    target = f"{qa_gateway.url}/r1/{BIRTH_RECORD}/births/{civil_registry.CITIZEN}"
    with httpx.Client(timeout=20) as client:
        answer = client.get(target, headers={"X-Road-Client": str(QA_SERVICES)})
        if answer.status_code != 200:
            raise RuntimeError(f"the cross-border call failed: {answer.text}")
        record = answer.json()
        world.say(
            f"{QA_SERVICES} read {record['national_id']} ({record['name_latin']}) across the "
            f"border: 200 through QA {name} and MA {gateway_name(PROVIDER)} over mutual TLS, "
            f"X-Road-Id {answer.headers['x-road-id']}"
        )
        refused = client.get(
            f"{qa_gateway.url}/r1/{NOT_OPENED}/births/{civil_registry.CITIZEN}",
            headers={"X-Road-Client": str(QA_SERVICES)},
        )
        if refused.headers.get("x-road-error") != "Server.ClientProxy.ServiceNotFederated":
            raise RuntimeError(f"a service outside the agreement was not refused: {refused.text}")
        world.say(
            f"{NOT_OPENED.code}, outside the agreement: refused {refused.status_code} "
            f"{refused.headers['x-road-error']}"
        )
