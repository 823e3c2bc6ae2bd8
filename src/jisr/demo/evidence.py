"""Demo: the agencies publish the evidence the catalogue needs, and the portals fetch it once-only.

``provision(world)`` makes the exchange of each instance ready for once-only evidence:

* MA: members ``DGSN`` (subsystem ``IDENTITY``), ``CIVIL-REGISTRY`` (``BIRTHS``, ``FAMILY``),
  ``MOI`` (``RESIDENCE``) and ``ESERVICES`` (``PORTAL``); QA: ``MOI`` (``IDENTITY``,
  ``ADDRESS``) and ``ESERVICES`` (``PORTAL``, the Hukoomi portal);
* the six services of ``jisr.demo.agencies`` (answered by one small system started here), each
  granted to its country's ``PORTAL`` for ``GET`` on its record path only (``/records/*``;
  ``/births/*`` for the birth record);
* one gateway per member (created once, started here unless this world already runs it, as
  after ``jisr.demo.exchange.exchange_step``), every running gateway then reloading the signed
  configuration;
* each instance's settings ``services_gateway_url`` (its ``ESERVICES`` gateway) and
  ``services_exchange_client`` (its ``PORTAL``), so that
  ``jisr.services.evidence.evidence_source(portal node)`` fetches through the exchange.

Call it after ``exchange_step`` (which starts the civil registry's and e-services' gateways of
MA; starting them twice would bind their mutual-TLS ports twice). Idempotent on a reused world.
``evidence_step(world)`` is the scenario step: it provisions, then each portal fetches its
documented citizen's records under a stated purpose and shows what came, from whom and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.demo import agencies, people
from jisr.exchange import provisioning, server, service
from jisr.exchange.errors import (
    AccessRightAlreadyGranted,
    MemberAlreadyExists,
    ServiceAlreadyExists,
    SubsystemAlreadyExists,
)
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId, gateway_name
from jisr.identity.identifiers import parse_national_id
from jisr.services import service as catalogue
from jisr.services.evidence import (
    RECORD_PATH,
    RECORD_PATHS,
    EvidenceUnavailable,
    GatewayEvidenceSource,
    close_sources,
    evidence_source,
)

if TYPE_CHECKING:
    from jisr.demo.scenario import World

MEMBER_NAMES: dict[str, str] = {
    "MA/GOV/DGSN": "Direction générale de la sûreté nationale",
    "MA/GOV/CIVIL-REGISTRY": "Civil registry",
    "MA/GOV/MOI": "Ministère de l'Intérieur",
    "MA/GOV/ESERVICES": "E-services agency",
    "QA/GOV/MOI": "Ministry of Interior",
    "QA/GOV/ESERVICES": "Hukoomi e-services",
}
PORTALS: dict[str, SubsystemId] = {
    code: SubsystemId.parse(f"{code}/GOV/ESERVICES/PORTAL") for code in ("MA", "QA")
}
PROVIDED: frozenset[str] = frozenset(s for services in agencies.SERVICES.values() for s in services)


def access_pattern(service_id: str) -> str:
    """The path pattern of the portal's access right: the record path, any person."""
    return RECORD_PATHS.get(service_id, RECORD_PATH).replace("{national_id}", "*")


@dataclass
class EvidenceWorld:
    """What ``provision`` set up: the providers' system and the gateways, by node name."""

    agencies: agencies.RunningAgencies
    gateways: dict[str, dict[str, server.RunningGateway]] = field(default_factory=dict)

    def source(self, code: str) -> GatewayEvidenceSource:
        """The portal's evidence source of instance ``code`` (no metadata cache)."""
        running = self.gateways[code][gateway_name(PORTALS[code].member)]
        return GatewayEvidenceSource(running.url, str(PORTALS[code]), cache_seconds=0)


def running_gateways(world: World) -> dict[str, server.RunningGateway]:
    """Gateways this world already runs (started by an earlier step), by node directory."""
    found = {}
    for closer in world.closers:
        running = getattr(closer, "__self__", None)
        if isinstance(running, server.RunningGateway) and running.thread.is_alive():
            found[str(running.runtime.node.settings.node_dir(running.runtime.node.name))] = running
    return found


def _register(instance: Instance, providers: agencies.RunningAgencies) -> list[str]:
    code = instance.code
    portal = PORTALS[code]
    services = [ServiceId.parse(s) for s in agencies.SERVICES[code]]
    members = sorted({s.member for s in services} | {portal.member})
    subsystems = sorted({s.subsystem for s in services} | {portal})
    added: list[str] = []
    registry = instance.node(REGISTRY_NODE)
    with registry.session() as session:
        signer = registry.checkpoint_signer(session)
        for member in members:
            try:
                service.add_member(
                    session, member=member, name=MEMBER_NAMES[str(member)], signer=signer
                )
                added.append(f"member {member}")
            except MemberAlreadyExists:
                pass
        for subsystem in subsystems:
            try:
                service.add_subsystem(session, subsystem=subsystem, signer=signer)
                added.append(f"subsystem {subsystem}")
            except SubsystemAlreadyExists:
                pass
        for target in services:
            url = providers.base_url(str(target))
            try:
                service.add_service(session, service=target, base_url=url, signer=signer)
                added.append(f"service {target}")
            except ServiceAlreadyExists:
                service.set_service_url(session, service=target, base_url=url)
            try:
                service.grant_access(
                    session,
                    service=target,
                    client=portal,
                    method="GET",
                    path=access_pattern(str(target)),
                    signer=signer,
                )
                added.append(f"right {portal} GET {access_pattern(str(target))} {target.code}")
            except AccessRightAlreadyGranted:
                pass
    return added


def _members(code: str) -> list[MemberId]:
    services = [ServiceId.parse(s) for s in agencies.SERVICES[code]]
    return sorted({s.member for s in services} | {PORTALS[code].member})


def provision(world: World) -> EvidenceWorld:
    """See the module docstring. Returns the running providers and gateways."""
    providers = agencies.start()
    world.closers.append(providers.stop)
    world.closers.append(close_sources)  # the portals' pooled connections to their gateways
    made = EvidenceWorld(agencies=providers)
    world.say(f"the agencies' own systems answer at {providers.url}/<service>/records/<id>")
    running = running_gateways(world)
    for code in agencies.SERVICES:
        instance = world.instances[code]
        added = _register(instance, providers)
        world.say(f"{code} registry: " + (f"{len(added)} entries added" if added else "in place"))
        registry_url = world.url(code)
        gateways: dict[str, server.RunningGateway] = {}
        for member in _members(code):
            name = gateway_name(member)
            if name not in instance.nodes:
                provisioning.create_gateway(
                    instance,
                    member=member,
                    address=f"127.0.0.1:{free_port()}",
                    registry_url=registry_url,
                )
            node_dir = str(instance.settings.node_dir(name))
            gateway = running.get(node_dir)
            if gateway is None:
                gateway = server.start_gateway(instance, name, registry_url=registry_url)
                world.closers.append(gateway.stop)
                running[node_dir] = gateway
            gateways[name] = gateway
        for gateway in running.values():
            if gateway.runtime.instance is instance and not gateway.refresh_now():
                raise RuntimeError(f"{gateway.runtime.node.name} cannot load the configuration")
        portal_gateway = gateways[gateway_name(PORTALS[code].member)]
        instance.settings.services_gateway_url = portal_gateway.url
        instance.settings.services_exchange_client = str(PORTALS[code])
        made.gateways[code] = gateways
        world.say(
            f"{code}: {len(gateways)} gateways serving; the portal fetches through "
            f"{portal_gateway.url} as {PORTALS[code]}"
        )
    return made


def covered_procedures(code: str) -> list[str]:
    """Ids of the catalogue's procedures of ``code`` whose evidence the demo all provides."""
    found = []
    for procedure in catalogue.list_procedures(code):
        wanted = {d.evidence_service for d in procedure.required_documents if d.evidence_service}
        if wanted and wanted <= PROVIDED:
            found.append(procedure.id)
    return found


def evidence_step(world: World) -> None:
    """Scenario step: provision, then each portal fetches its citizen's records once-only."""
    world.step("Once-only evidence: the portals fetch what the agencies hold, through the exchange")
    provision(world)
    for code, services in agencies.SERVICES.items():
        citizen: dict[str, Any] = people.DOCUMENTED[code]
        user = parse_national_id(citizen["national_id"]).compact
        source = evidence_source(world.instances[code].node("portal"))
        if source is None:  # pragma: no cover - provision sets the gateway
            raise RuntimeError(f"{code}: the portal has no gateway")
        for service_id in services:
            if not source.available(service_id):
                raise RuntimeError(f"{code}: {service_id} is not available to the portal")
            fetched = source.fetch(
                service_id,
                national_id=citizen["national_id"],
                purpose=f"demo once-only check of {service_id.rsplit('/', 1)[1]}",
                user_id=user,
            )
            world.say(
                f"{code}: {fetched.service.rsplit('/', 1)[1]} of {citizen['national_id']} from "
                f"{fetched.provider} (X-Road-Id {fetched.message_id[:8]}…, purpose "
                f"«{fetched.purpose}»): {len(fetched.data)} fields"
            )
        unknown = f"{code}/GOV/NOBODY/NOTHING/no-record"
        try:
            source.fetch(unknown, national_id=citizen["national_id"], purpose="demo", user_id=user)
        except EvidenceUnavailable as refused:
            world.say(f"{code}: a service nobody provides is not available: {refused}")
        else:
            raise RuntimeError("a service nobody provides answered")
        procedures = catalogue.list_procedures(code)
        fetched_count = sum(len(catalogue.documents_fetchable(p, source)) for p in procedures)
        asked_count = sum(len(catalogue.documents_asked(p, source)) for p in procedures)
        world.say(
            f"{code}: across {len(procedures)} procedures, {fetched_count} documents now come "
            f"through the exchange and {asked_count} are asked of the person; "
            f"{len(covered_procedures(code))} procedures get all their evidence once-only"
        )


__all__ = [
    "MEMBER_NAMES",
    "PORTALS",
    "PROVIDED",
    "EvidenceWorld",
    "access_pattern",
    "covered_procedures",
    "evidence_step",
    "provision",
]
