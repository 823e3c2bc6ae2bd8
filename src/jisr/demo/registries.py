"""The MA demo registries on the ``registers`` node (GovStack Digital Registries).

* ``ma-births`` 1.0 (code ``MA-BIRTHS``, catalogue "MA civil registry"): one birth record per
  person of the MA demo population (``jisr.demo.people``), keyed by the national id, in the
  shape the civil registry's own system answers (``jisr.demo.civil_registry``) plus the names
  in both scripts and the sex;
* ``ma-companies`` 1.0 (code ``MA-RC``, catalogue "MA business registry"): ``COMPANY_COUNT``
  companies generated from a seeded random generator (the same on every run), each owned by
  a person of the demo population (the documented citizen owns the first), numbered by the
  registry itself (``RC-1``, ``RC-2``… from the number format).

Functions the scenario calls:

* ``add_registries(world)``: a step to run BEFORE the instances are served: adds the MA
  instance's ``registers`` node, creates both databases and seeds them (idempotent);
* ``use_registries(world)``: a step to run AFTER they are served (and after
  ``jisr.demo.evidence.evidence_step``, whose gateways it reuses): serves the ``registers``
  node on its own loopback server (the public server never serves it: it trusts the client
  id it is sent), publishes its Data API as the civil registry's exchange service
  ``DATA_API`` with the e-services portal's rights on ``READ_RIGHTS`` only, then the portal
  reads the documented citizen's birth record and companies through its gateway
  (``/r1/…`` with ``X-Road-Client``; the civil registry's gateway forwards the
  authenticated client as ``X-Road-Client``, which the registries read as the caller), a
  subsystem without a right is refused (X-Road ``Server.ServerProxy.AccessDenied``, nothing
  read), and MyPersonalDataUsage names the portal. Without a served instance the same reads
  go through the service.

``seed_registries(instance)`` does the seeding alone (for tests and other callers).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from jisr.core.instance import REGISTRY_NODE, Instance, Progress
from jisr.core.net import free_port
from jisr.demo import people, servers
from jisr.demo.evidence import MEMBER_NAMES, running_gateways
from jisr.demo.exchange import ANALYTICS, CONSUMER, PORTAL, PROVIDER
from jisr.exchange import provisioning, server, service
from jisr.exchange.errors import (
    AccessRightAlreadyGranted,
    MemberAlreadyExists,
    ServiceAlreadyExists,
    SubsystemAlreadyExists,
)
from jisr.exchange.identifiers import ServiceId, SubsystemId, gateway_name
from jisr.identity.identifiers import parse_national_id
from jisr.services import registries

if TYPE_CHECKING:
    from jisr.demo.scenario import World

SEED = 2026
COUNTRY = "MA"
COMPANY_COUNT = 36
ACTOR = "demo"
READER = str(PORTAL)
REGISTRIES = SubsystemId.parse("MA/GOV/CIVIL-REGISTRY/REGISTRIES")
# The GovStack Data API as the civil registry's exchange service (base URL: the registers
# server); the portal may only read the records it needs and ask who read them.
DATA_API = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/REGISTRIES/data")
BIRTHS = ("ma-births", "1.0")
COMPANIES = ("ma-companies", "1.0")
READ_RIGHTS: tuple[tuple[str, str], ...] = (
    ("POST", f"/data/{BIRTHS[0]}/{BIRTHS[1]}/read"),
    ("GET", f"/data/{COMPANIES[0]}/{COMPANIES[1]}"),
    ("GET", "/data/myPersonalDataUsage"),
)

_NID = {"type": "string", "pattern": "^MA:[A-Z]{1,2}[0-9]{4,8}$"}


def civil_registry_schema() -> dict[str, Any]:
    """JSON Schema of a birth record of the MA civil registry."""
    text = {"type": "string", "minLength": 1, "maxLength": 200}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MA civil registry: birth record",
        "description": "A birth record of the Moroccan civil registry (état civil)",
        "type": "object",
        "properties": {
            "national_id": {**_NID, "primaryKey": True, "description": "National id (CNIE)"},
            "given_name_ar": text,
            "family_name_ar": text,
            "given_name_latin": text,
            "family_name_latin": text,
            "name_ar": text,
            "name_latin": text,
            "born": {"type": "string", "format": "date"},
            "place": text,
            "sex": {"enum": ["F", "M"]},
            "registered_by": {"const": "MA/GOV/CIVIL-REGISTRY"},
        },
        "required": [
            "national_id",
            "given_name_ar",
            "family_name_ar",
            "given_name_latin",
            "family_name_latin",
            "born",
            "place",
            "sex",
            "registered_by",
        ],
        "additionalProperties": False,
    }


LEGAL_FORMS = ["SARL", "SARL AU", "SA", "SNC", "Entreprise individuelle"]


def business_registry_schema() -> dict[str, Any]:
    """JSON Schema of a company of the MA business registry (registre du commerce)."""
    text = {"type": "string", "minLength": 1, "maxLength": 200}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MA business registry: company",
        "description": "A company of the Moroccan trade register (registre du commerce)",
        "type": "object",
        "properties": {
            "rc_number": {
                "type": "string",
                "pattern": "^RC-[0-9]+$",
                "primaryKey": True,
                "description": "Trade register number, given by the registry",
            },
            "ice": {
                "type": "string",
                "pattern": "^[0-9]{15}$",
                "description": "Identifiant commun de l'entreprise (15 digits)",
            },
            "name": text,
            "name_ar": text,
            "legal_form": {"enum": LEGAL_FORMS},
            "capital_mad": {"type": "number", "minimum": 0},
            "registered_on": {"type": "string", "format": "date"},
            "city": text,
            "address": text,
            "activity": text,
            "owner": {
                "type": "object",
                "properties": {
                    "national_id": _NID,
                    "name_latin": text,
                    "name_ar": text,
                },
                "required": ["national_id", "name_latin", "name_ar"],
                "additionalProperties": False,
            },
            "status": {"enum": ["active", "struck-off"]},
        },
        "required": [
            "ice",
            "name",
            "legal_form",
            "capital_mad",
            "registered_on",
            "city",
            "activity",
            "owner",
            "status",
        ],
        "additionalProperties": False,
    }


def birth_records(count: int = people.DEMO_COUNT) -> list[dict[str, Any]]:
    """The birth record of every person of the MA demo population (documented citizen first)."""
    records = []
    for person in people.demo_people(COUNTRY, count):
        records.append(
            {
                "national_id": person.national_id,
                "given_name_ar": person.given_name_ar,
                "family_name_ar": person.family_name_ar,
                "given_name_latin": person.given_name_latin,
                "family_name_latin": person.family_name_latin,
                "name_ar": f"{person.given_name_ar} {person.family_name_ar}",
                "name_latin": f"{person.given_name_latin} {person.family_name_latin}",
                "born": person.birth_date.isoformat(),
                "place": person.birth_place,
                "sex": person.sex,
                "registered_by": "MA/GOV/CIVIL-REGISTRY",
            }
        )
    return records


# (Latin, Arabic) name stems and activities of the generated companies.
_STEMS = [
    ("Atlas", "أطلس"),
    ("Argane", "أركان"),
    ("Sahara", "الصحراء"),
    ("Oasis", "الواحة"),
    ("Zellige", "الزليج"),
    ("Medina", "المدينة"),
    ("Rif", "الريف"),
    ("Souss", "سوس"),
    ("Tafilalet", "تافيلالت"),
    ("Bouregreg", "أبي رقراق"),
    ("Anfa", "أنفا"),
    ("Nakhil", "النخيل"),
]
_ACTIVITIES = [
    ("Trading", "Négoce", "تجارة"),
    ("Consulting", "Conseil", "استشارات"),
    ("Logistics", "Logistique", "لوجستيك"),
    ("Textiles", "Textile", "نسيج"),
    ("Software", "Informatique", "برمجيات"),
    ("Food", "Agroalimentaire", "صناعات غذائية"),
    ("Building", "BTP", "بناء"),
    ("Tourism", "Tourisme", "سياحة"),
]


def demo_companies(count: int = COMPANY_COUNT, *, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` companies, the same on every run; the registry numbers them (``RC-n``)."""
    rng = random.Random(f"{seed}-companies")
    owners = people.demo_people(COUNTRY, people.DEMO_COUNT)
    companies = []
    for index in range(count):
        owner = owners[0] if index == 0 else rng.choice(owners[1:])
        stem = rng.choice(_STEMS)
        activity = rng.choice(_ACTIVITIES)
        form = rng.choice(LEGAL_FORMS)
        year = rng.randint(1995, 2025)
        city = rng.choice(people.MA_PLACES)
        companies.append(
            {
                "ice": f"{rng.randint(1, 999_999_999):09d}{rng.randint(0, 999_999):06d}",
                "name": f"{stem[0]} {activity[1]} {form}",
                "name_ar": f"{stem[1]} {activity[2]}",
                "legal_form": form,
                "capital_mad": float(rng.choice([10_000, 100_000, 300_000, 1_000_000])),
                "registered_on": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "city": city,
                "address": f"{rng.randint(1, 250)} {rng.choice(people.MA_STREETS)}, {city}",
                "activity": activity[0],
                "owner": {
                    "national_id": owner.national_id,
                    "name_latin": f"{owner.given_name_latin} {owner.family_name_latin}",
                    "name_ar": f"{owner.given_name_ar} {owner.family_name_ar}",
                },
                "status": "active" if rng.random() > 0.1 else "struck-off",
            }
        )
    return companies


def seed_registries(
    instance: Instance,
    *,
    births: int = people.DEMO_COUNT,
    companies: int = COMPANY_COUNT,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Add the ``registers`` node if needed, create both databases and seed the records a
    database does not hold yet; how many records each got (0 when already seeded)."""
    node, _added = registries.ensure_registers_node(instance, progress=progress)
    added: dict[str, int] = {}
    with node.session() as session:
        auditor = registries.node_auditor(node, session, ACTOR)
        plans: list[
            tuple[
                tuple[str, str],
                str,
                dict[str, Any],
                str,
                str | None,
                str,
                Callable[[], list[dict[str, Any]]],
            ]
        ] = [
            (
                BIRTHS,
                "MA-BIRTHS",
                civil_registry_schema(),
                "MA civil registry",
                None,
                "/national_id",
                lambda: birth_records(births),
            ),
            (
                COMPANIES,
                "MA-RC",
                business_registry_schema(),
                "MA business registry",
                "RC-{indexNoByCode}",
                "/owner/national_id",
                lambda: demo_companies(companies),
            ),
        ]
        for (name, version), code, schema, catalog, number_format, subject, make in plans:
            database = registries.find_database(session, name, version)
            if database is None:
                database = registries.create_database(
                    session,
                    name=name,
                    version=version,
                    code=code,
                    schema=schema,
                    auditor=auditor,
                    group_name="MA",
                    catalog_name=catalog,
                    institution="MA/GOV/CIVIL-REGISTRY" if code == "MA-BIRTHS" else "MA/GOV/OMPIC",
                    description=str(schema["description"]),
                    number_format=number_format,
                    schema_flags=[{"name": registries.PERSONAL_ID_FLAG, "path": subject}],
                )
            if registries.count_records(session, database):
                added[name] = 0
                continue
            made = registries.create_records(
                session, database=database, contents=make(), auditor=auditor
            )
            added[name] = len(made)
    return added


def add_registries(world: World) -> None:
    """Scenario step (before serving): the MA registers node and its two registries."""
    world.step("Digital registries: the MA civil registry and business registry (GovStack)")
    instance = world.instances[COUNTRY]
    added = seed_registries(instance, progress=lambda m: world.say(f"{COUNTRY}: {m}"))
    for name, count in added.items():
        held = f"{count} records seeded" if count else "already seeded"
        world.say(f"{COUNTRY}: registry {name} 1.0 — {held}, each checked against its schema")


def serve_registers(world: World) -> servers.RunningServer:
    """The MA ``registers`` node on its own loopback server (never the public one), stopped
    when the world closes."""
    running = servers.start(world.instances[COUNTRY], roles=[registries.REGISTERS_NODE])
    world.closers.append(running.stop)
    return running


def publish(world: World, base_url: str) -> list[str]:
    """Register the Data API as the exchange service ``DATA_API`` at ``base_url`` (moved
    there when it exists), with the portal's rights on ``READ_RIGHTS``; what was added."""
    registry = world.instances[COUNTRY].node(REGISTRY_NODE)
    added: list[str] = []
    with registry.session() as session:
        signer = registry.checkpoint_signer(session)
        for member in (PROVIDER, CONSUMER):
            try:
                service.add_member(
                    session, member=member, name=MEMBER_NAMES[str(member)], signer=signer
                )
                added.append(f"member {member}")
            except MemberAlreadyExists:
                pass
        for subsystem in (REGISTRIES, PORTAL, ANALYTICS):
            try:
                service.add_subsystem(session, subsystem=subsystem, signer=signer)
                added.append(f"subsystem {subsystem}")
            except SubsystemAlreadyExists:
                pass
        try:
            service.add_service(session, service=DATA_API, base_url=base_url, signer=signer)
            added.append(f"service {DATA_API}")
        except ServiceAlreadyExists:
            service.set_service_url(session, service=DATA_API, base_url=base_url, signer=signer)
        for method, path in READ_RIGHTS:
            try:
                service.grant_access(
                    session,
                    service=DATA_API,
                    client=PORTAL,
                    method=method,
                    path=path,
                    signer=signer,
                )
                added.append(f"right {PORTAL} {method} {path}")
            except AccessRightAlreadyGranted:
                pass
    return added


def exchange_gateways(world: World) -> tuple[server.RunningGateway, server.RunningGateway]:
    """The civil registry's and the e-services' gateways (reused when an earlier step runs
    them, as ``evidence.evidence_step`` does; created and started otherwise), every running
    MA gateway having reloaded the signed configuration."""
    instance = world.instances[COUNTRY]
    registry_url = world.url(COUNTRY)
    running = running_gateways(world)
    found: list[server.RunningGateway] = []
    for member in (PROVIDER, CONSUMER):
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
        found.append(gateway)
    for gateway in running.values():
        if gateway.runtime.instance is instance and not gateway.refresh_now():
            raise RuntimeError(f"{gateway.runtime.node.name} cannot load the configuration")
    return found[0], found[1]


def use_registries(world: World) -> None:
    """Scenario step (after serving, after ``evidence.evidence_step``): the civil registry
    publishes the Data API through the exchange; the e-services portal reads the documented
    citizen's records through its gateway, a subsystem without a right is refused, and the
    usage log names the portal (MyPersonalDataUsage). Without a served instance, the same
    reads go through the service."""
    world.step(
        "Digital registries: read a birth record and a person's companies through the "
        "exchange, then ask who read"
    )
    citizen = people.FATIMA["national_id"]
    if COUNTRY in world.running:
        record, companies, reads = _through_the_exchange(world, citizen)
    else:
        node = world.instances[COUNTRY].node(registries.REGISTERS_NODE)
        with node.session() as session:
            births = registries.get_database(session, *BIRTHS)
            record = registries.read_record(
                session, database=births, query={"national_id": citizen}, reader=READER
            ).content
            page = registries.list_records(
                session,
                database=registries.get_database(session, *COMPANIES),
                reader=READER,
                fields={"owner.national_id": citizen},
            )
            companies = [r.content for r in page.results]
            reads = registries.personal_data_usage(
                session, user_id=citizen, database_code="MA-BIRTHS"
            )
        world.say(f"{COUNTRY}: through the registries service (the instance is not served here)")
    world.say(
        f"{COUNTRY}: birth record {record['national_id']}: {record['name_ar']} "
        f"({record['name_latin']}), born {record['born']} in {record['place']}"
    )
    for company in companies:
        world.say(
            f"{COUNTRY}: company {company['rc_number']} {company['name']} "
            f"({company['legal_form']}, {company['city']}, {company['status']})"
        )
    world.say(
        f"{COUNTRY}: {len(reads)} read(s) of her birth record logged, the latest by "
        f"{reads[0]['readerId'] if reads else 'nobody'}"
    )


def _through_the_exchange(
    world: World, citizen: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    registers = serve_registers(world)
    world.say(
        f"{COUNTRY}: the registers node serves the Data API on {registers.url} (loopback, "
        f"apart from the public {world.url(COUNTRY)}, which does not serve it)"
    )
    added = publish(world, registers.url)
    world.say(
        f"{COUNTRY} registry: {DATA_API} at the registers server"
        + (f"; {len(added)} entries added" if added else "; in place")
    )
    _provider, consumer = exchange_gateways(world)
    base = f"{consumer.url}/r1/{DATA_API}"
    user = parse_national_id(citizen).compact
    headers = {"X-Road-Client": READER, "X-Road-UserId": user, "Accept-Language": "en"}
    with httpx.Client(base_url=base, headers=headers, timeout=20) as client:
        birth = _ok(
            client.post(
                f"/data/{BIRTHS[0]}/{BIRTHS[1]}/read",
                json={"query": {"content": {"national_id": citizen}}},
            )
        )
        record: dict[str, Any] = birth.json()["content"]
        owned = _ok(
            client.get(
                f"/data/{COMPANIES[0]}/{COMPANIES[1]}",
                params={"query.owner.national_id": citizen},
            )
        )
        companies: list[dict[str, Any]] = owned.json()["results"]
        usage_params = {"userId": citizen, "databaseId": "MA-BIRTHS"}
        reads: list[dict[str, Any]] = _ok(
            client.get("/data/myPersonalDataUsage", params=usage_params)
        ).json()
        world.say(
            f"{COUNTRY}: through the exchange: {READER} → {gateway_name(CONSUMER)} → "
            f"{gateway_name(PROVIDER)} (mutual TLS, signed, logged) → the registers, which "
            f"read the client from the forwarded X-Road-Client (X-Road-Id "
            f"{birth.headers['x-road-id'][:8]}…)"
        )
        refused = client.post(
            f"/data/{BIRTHS[0]}/{BIRTHS[1]}/read",
            json={"query": {"content": {"national_id": citizen}}},
            headers={"X-Road-Client": str(ANALYTICS)},
        )
        if refused.headers.get("x-road-error") != "Server.ServerProxy.AccessDenied":
            raise RuntimeError(f"a call without access right was not refused: {refused.text}")
        after = _ok(client.get("/data/myPersonalDataUsage", params=usage_params)).json()
        if len(after) != len(reads):
            raise RuntimeError("a refused call read the registry")
        world.say(
            f"{COUNTRY}: {ANALYTICS}, without an access right: refused {refused.status_code} "
            f"{refused.headers['x-road-error']}; the registry was not read "
            f"(still {len(after)} read(s) logged)"
        )
    return record, companies, reads


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response


__all__ = [
    "DATA_API",
    "READ_RIGHTS",
    "add_registries",
    "birth_records",
    "business_registry_schema",
    "civil_registry_schema",
    "demo_companies",
    "exchange_gateways",
    "publish",
    "seed_registries",
    "serve_registers",
    "use_registries",
]
