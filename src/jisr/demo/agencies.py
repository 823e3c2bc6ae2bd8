"""The agencies' own information systems, as the demo's evidence providers: one small ASGI app.

It answers, from the demo population (``jisr.demo.people``, the same persons as the population
registers), the records the catalogue's procedures ask for most:

=========================================== ==============================================
service                                     record
=========================================== ==============================================
``MA/GOV/DGSN/IDENTITY/identity-record``    the national electronic identity card (CNIE)
``MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record`` the birth record (``jisr.demo.civil_registry``)
``MA/GOV/CIVIL-REGISTRY/FAMILY/family-record`` the family record (holder and children)
``MA/GOV/MOI/RESIDENCE/residence-record``   the registered residence
``QA/GOV/MOI/IDENTITY/qid-record``          the Qatari ID
``QA/GOV/MOI/ADDRESS/national-address``     the national address (zone, street, building)
=========================================== ==============================================

Each service is registered in the exchange with the base URL ``<app URL>/<service id>``; below
it the app follows the evidence path convention (``jisr.services.evidence.record_path``):
``GET <base>/records/<national id>`` (``/births/<id>`` for the birth record). An unknown
person is 404, another method 405. Like any agency's existing system it knows nothing of the
exchange: its gateway calls it on loopback. It keeps, as a provider would, the list of calls
it answered (``calls``: service, person, X-Road-Id, X-Road-UserId, X-Road-Issue).

Demo data: family relations do not exist in the demo population, so a family record's
children are the persons of the same family name born 20 to 45 years after the holder.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import uvicorn

from jisr.demo import civil_registry, people
from jisr.identity.errors import InvalidNationalId
from jisr.identity.identifiers import parse_national_id
from jisr.identity.schemas import PersonCreate
from jisr.services.evidence import RECORD_PATH, RECORD_PATHS

IDENTITY_RECORD = "MA/GOV/DGSN/IDENTITY/identity-record"
BIRTH_RECORD = "MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record"
FAMILY_RECORD = "MA/GOV/CIVIL-REGISTRY/FAMILY/family-record"
RESIDENCE_RECORD = "MA/GOV/MOI/RESIDENCE/residence-record"
QID_RECORD = "QA/GOV/MOI/IDENTITY/qid-record"
NATIONAL_ADDRESS = "QA/GOV/MOI/ADDRESS/national-address"

SERVICES: dict[str, tuple[str, ...]] = {
    "MA": (IDENTITY_RECORD, BIRTH_RECORD, FAMILY_RECORD, RESIDENCE_RECORD),
    "QA": (QID_RECORD, NATIONAL_ADDRESS),
}

Record = dict[str, Any]


def _names(person: PersonCreate) -> Record:
    return {
        "given_name_ar": person.given_name_ar,
        "family_name_ar": person.family_name_ar,
        "given_name_latin": person.given_name_latin,
        "family_name_latin": person.family_name_latin,
    }


def _display(person: PersonCreate) -> str:
    return parse_national_id(person.national_id).display


def identity_record(person: PersonCreate) -> Record:
    return {
        "national_id": _display(person),
        **_names(person),
        "birth_date": person.birth_date.isoformat(),
        "birth_place": person.birth_place,
        "sex": person.sex,
        "nationality": person.nationality,
        "address": person.address,
        "document": "CNIE",
        "registered_by": "MA/GOV/DGSN",
    }


def family_record(person: PersonCreate, population: list[PersonCreate]) -> Record:
    children = [
        other
        for other in population
        if other.family_name_latin == person.family_name_latin
        and 20 <= other.birth_date.year - person.birth_date.year <= 45
    ]
    return {
        "national_id": _display(person),
        "holder": _names(person) | {"birth_date": person.birth_date.isoformat()},
        "children": [
            {
                "national_id": _display(child),
                "given_name_ar": child.given_name_ar,
                "given_name_latin": child.given_name_latin,
                "birth_date": child.birth_date.isoformat(),
                "sex": child.sex,
            }
            for child in sorted(children, key=lambda c: c.birth_date)
        ],
        "registered_by": "MA/GOV/CIVIL-REGISTRY",
    }


def residence_record(person: PersonCreate) -> Record:
    address = person.address or ""
    return {
        "national_id": _display(person),
        "name_ar": f"{person.given_name_ar} {person.family_name_ar}",
        "name_latin": f"{person.given_name_latin} {person.family_name_latin}",
        "address": address,
        "city": address.rsplit(",", 1)[-1].strip(),
        "registered_by": "MA/GOV/MOI",
    }


def qid_record(person: PersonCreate) -> Record:
    national = parse_national_id(person.national_id)
    return {
        "national_id": national.display,
        "qid": national.number,
        **_names(person),
        "birth_date": person.birth_date.isoformat(),
        "sex": person.sex,
        "nationality": person.nationality,
        "registered_by": "QA/GOV/MOI",
    }


_QA_ADDRESS = re.compile(r"^Zone (\d+), Street (\d+), Building (\d+), ([^,]+)")


def national_address(person: PersonCreate) -> Record | None:
    found = _QA_ADDRESS.match(person.address or "")
    if found is None:
        return None
    zone, street, building, district = found.groups()
    return {
        "national_id": _display(person),
        "zone": int(zone),
        "street": int(street),
        "building": int(building),
        "district": district.strip(),
        "registered_by": "QA/GOV/MOI",
    }


def build_records() -> dict[str, dict[str, Record]]:
    """Every service's records, by national id (display form)."""
    ma = people.demo_people("MA", people.DEMO_COUNT)
    qa = people.demo_people("QA", people.DEMO_COUNT)
    records: dict[str, dict[str, Record]] = {
        IDENTITY_RECORD: {_display(p): identity_record(p) for p in ma},
        BIRTH_RECORD: dict(civil_registry.BIRTHS),
        FAMILY_RECORD: {_display(p): family_record(p, ma) for p in ma},
        RESIDENCE_RECORD: {_display(p): residence_record(p) for p in ma},
        QID_RECORD: {_display(p): qid_record(p) for p in qa},
        NATIONAL_ADDRESS: {},
    }
    for person in qa:
        address = national_address(person)
        if address is not None:
            records[NATIONAL_ADDRESS][_display(person)] = address
    return records


@dataclass
class AgenciesApp:
    """The ASGI app; ``calls`` lists what it answered (oldest first)."""

    records: dict[str, dict[str, Record]] = field(default_factory=build_records)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def _route(self, path: str) -> tuple[str, str] | None:
        """(service, national id as sent) for ``/<service><record path>``."""
        for service in self.records:
            prefix = f"/{service}"
            if not path.startswith(prefix + "/"):
                continue
            template = RECORD_PATHS.get(service, RECORD_PATH)
            head = template.split("{national_id}", 1)[0]
            rest = path[len(prefix) :]
            if rest.startswith(head) and "/" not in rest[len(head) :]:
                return service, unquote(rest[len(head) :])
        return None

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Record]:
        route = self._route(path)
        if route is None:
            return 404, {"error": "no such service or path"}
        if method != "GET":
            return 405, {"error": "only GET"}
        service, wanted = route
        try:
            key = parse_national_id(wanted).display
        except InvalidNationalId:
            return 404, {"error": "not a national identifier"}
        record = self.records[service].get(key)
        self.calls.append(
            {
                "service": service,
                "national_id": key,
                "found": record is not None,
                "x_road_id": headers.get("x-road-id"),
                "x_road_client": headers.get("x-road-client"),
                "x_road_user_id": headers.get("x-road-userid"),
                "x_road_issue": headers.get("x-road-issue"),
            }
        )
        return (200, record) if record is not None else (404, {"error": "no record"})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, body = self.answer(scope["method"], scope["path"], headers)
        await civil_registry.send_json(send, status, body)


@dataclass
class RunningAgencies:
    app: AgenciesApp
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def base_url(self, service: str) -> str:
        """The base URL to register ``service`` with in the exchange."""
        return f"{self.url}/{service}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 20.0,
    app: AgenciesApp | None = None,
) -> RunningAgencies:
    """Serve the agencies' systems in a background thread; returns once it listens."""
    served = app or AgenciesApp()
    server, thread, url = civil_registry.serve(
        served,
        host=host,
        port=port,
        timeout=timeout,
        name="agencies-is",
        what="the agencies' systems",
    )
    return RunningAgencies(app=served, server=server, thread=thread, url=url)


__all__ = [
    "BIRTH_RECORD",
    "FAMILY_RECORD",
    "IDENTITY_RECORD",
    "NATIONAL_ADDRESS",
    "QID_RECORD",
    "RESIDENCE_RECORD",
    "SERVICES",
    "AgenciesApp",
    "RunningAgencies",
    "build_records",
    "start",
]
