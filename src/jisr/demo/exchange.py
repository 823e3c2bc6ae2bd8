"""Demo step: MA agencies exchange a birth record through two gateways (X-Road style).

The civil registry (``MA/GOV/CIVIL-REGISTRY``, subsystem ``BIRTHS``) publishes the service
``birth-record``, answered by its own small system (``jisr.demo.civil_registry``). The
e-services (``MA/GOV/ESERVICES``) get a right for their ``PORTAL`` subsystem only. The portal
reads the demo citizen's record through its gateway, which signs the call and sends it over
mutual TLS to the civil registry's gateway, which checks the right, asks the registry's system,
signs the answer and logs it; a call from ``ANALYTICS``, without a right, is refused.

Idempotent: on a reused world, what exists is kept (the service's URL is moved to the
system's new port).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.demo import civil_registry
from jisr.exchange import provisioning, server, service
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
    for member, name in zip((PROVIDER, CONSUMER), names, strict=True):
        running = server.start_gateway(instance, name, registry_url=registry_url)
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
