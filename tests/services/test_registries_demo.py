"""The MA demo registries: births of the demo population, generated companies, the steps."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from jisr.core.audit import service as audit
from jisr.core.instance import Instance
from jisr.demo import people
from jisr.demo import registries as demo
from jisr.demo.civil_registry import BIRTHS
from jisr.demo.scenario import World
from jisr.services import registries

pytestmark = pytest.mark.db


def test_births_match_the_civil_registry_system() -> None:
    records = demo.birth_records()
    assert len(records) == people.DEMO_COUNT + 1
    assert records[0]["national_id"] == people.FATIMA["national_id"]
    for record in records:
        served = BIRTHS[record["national_id"]]
        for key in ("name_ar", "name_latin", "born", "place", "registered_by"):
            assert record[key] == served[key]


def test_companies_are_deterministic_and_owned_by_demo_people() -> None:
    first, second = demo.demo_companies(), demo.demo_companies()
    assert first == second and len(first) == demo.COMPANY_COUNT
    population = {p.national_id for p in people.demo_people("MA", people.DEMO_COUNT)}
    assert all(c["owner"]["national_id"] in population for c in first)
    assert first[0]["owner"]["national_id"] == people.FATIMA["national_id"]
    assert len({c["ice"] for c in first}) == len(first)


@pytest.fixture(scope="module")
def seeded(instance_factory: Any) -> Iterator[tuple[Instance, dict[str, int]]]:
    instance: Instance = instance_factory("MA")
    yield instance, demo.seed_registries(instance)


def test_seed_registries(seeded: tuple[Instance, dict[str, int]]) -> None:
    instance, added = seeded
    assert added == {"ma-births": people.DEMO_COUNT + 1, "ma-companies": demo.COMPANY_COUNT}
    assert demo.seed_registries(instance) == {"ma-births": 0, "ma-companies": 0}
    node = instance.node(registries.REGISTERS_NODE)
    with node.session() as session:
        companies = registries.get_database(session, *demo.COMPANIES)
        keys = [
            r.content["rc_number"]
            for r in registries.list_records(
                session, database=companies, reader="MA/GOV/TEST/X", page_size=3
            ).results
        ]
        assert keys == ["RC-1", "RC-2", "RC-3"]
        births = registries.get_database(session, *demo.BIRTHS)
        assert births.subject_path == "/national_id"
        fatima = registries.find_record(session, births, people.FATIMA["national_id"])
        assert fatima.subject == people.FATIMA["national_id"]
        report = audit.verify_chain(session, registries.AUDIT_CHAIN)
        assert report.ok
        assert report.records_checked >= people.DEMO_COUNT + 1 + demo.COMPANY_COUNT + 2


def test_use_registries_without_a_server(
    seeded: tuple[Instance, dict[str, int]], tmp_path: Path
) -> None:
    instance, _added = seeded
    world = World(directory=tmp_path, console=Console(file=io.StringIO(), width=200))
    world.instances["MA"] = instance
    demo.add_registries(world)
    demo.use_registries(world)
    trace = "\n".join(world.trace)
    assert "already seeded" in trace
    assert "birth record MA:AB123456" in trace
    assert "company RC-1" in trace
    assert "read(s) of her birth record logged" in trace


@pytest.fixture(scope="module")
def exchanged(seeded: tuple[Instance, dict[str, int]], tmp_path_factory: Any) -> Iterator[World]:
    """The MA instance served (public server), then ``use_registries`` through the exchange:
    the registers on their own loopback server, the civil registry's and the e-services'
    gateways running."""
    from jisr.demo import servers

    instance, _added = seeded
    directory = tmp_path_factory.mktemp("registries-world")
    world = World(directory=directory, console=Console(file=io.StringIO(), width=200))
    world.instances["MA"] = instance
    world.running["MA"] = servers.start(instance)
    try:
        demo.use_registries(world)
        yield world
    finally:
        while world.closers:
            world.closers.pop()()
        world.running.pop("MA").stop()


def _consumer_gateway(world: World) -> str:
    return demo.exchange_gateways(world)[1].url


def _registers_url(world: World) -> str:
    from jisr.demo.servers import RunningServer

    found = [
        running.url
        for closer in world.closers
        if isinstance(running := getattr(closer, "__self__", None), RunningServer)
    ]
    assert len(found) == 1
    return found[0]


def _usage(instance: Instance) -> int:
    with instance.node(registries.REGISTERS_NODE).session() as session:
        return sum(
            len(registries.personal_data_usage(session, user_id=FATIMA, database_code=code))
            for code in ("MA-BIRTHS", "MA-RC")
        )


FATIMA = people.FATIMA["national_id"]


@pytest.mark.slow
def test_use_registries_through_the_exchange(exchanged: World) -> None:
    trace = "\n".join(exchanged.trace)
    assert "through the exchange: MA/GOV/ESERVICES/PORTAL → gateway-" in trace
    assert "birth record MA:AB123456" in trace and "company RC-1" in trace
    assert "the latest by MA/GOV/ESERVICES/PORTAL" in trace
    assert "ANALYTICS, without an access right: refused 403 Server.ServerProxy.AccessDenied" in (
        trace
    )
    assert "the registry was not read" in trace
    assert any(closer.__name__ == "stop" for closer in exchanged.closers)


@pytest.mark.slow
def test_the_public_server_does_not_serve_the_registers(exchanged: World) -> None:
    headers = {"Information-Mediator-Client": demo.READER}
    public = exchanged.url("MA")
    for path in ("/databases", f"/data/{demo.BIRTHS[0]}/{demo.BIRTHS[1]}"):
        assert httpx.get(public + path, headers=headers, timeout=10).status_code == 404
    registers = _registers_url(exchanged)
    assert registers.startswith("http://127.0.0.1:") and registers != public
    assert httpx.get(registers + "/databases", headers=headers, timeout=10).status_code == 200


@pytest.mark.slow
def test_a_call_without_a_right_is_refused_and_reads_nothing(exchanged: World) -> None:
    instance = exchanged.instances["MA"]
    base = f"{_consumer_gateway(exchanged)}/r1/{demo.DATA_API}"
    read = f"{base}/data/{demo.BIRTHS[0]}/{demo.BIRTHS[1]}/read"
    body = {"query": {"content": {"national_id": FATIMA}}}
    before = _usage(instance)
    calls = [
        # a subsystem without any right on the Data API
        ("POST", read, "MA/GOV/ESERVICES/ANALYTICS"),
        # the portal, on paths or methods it has no right to
        ("GET", f"{base}/data/{demo.BIRTHS[0]}/{demo.BIRTHS[1]}", demo.READER),
        ("GET", f"{base}/databases", demo.READER),
        ("PUT", f"{base}/data/{demo.BIRTHS[0]}/{demo.BIRTHS[1]}/update", demo.READER),
    ]
    with httpx.Client(timeout=20) as client:
        for method, url, caller in calls:
            refused = client.request(method, url, json=body, headers={"X-Road-Client": caller})
            assert refused.status_code == 403, (method, url, refused.text)
            assert refused.headers["x-road-error"] == "Server.ServerProxy.AccessDenied"
            assert refused.json()["type"] == "Server.ServerProxy.AccessDenied"
    assert _usage(instance) == before


@pytest.mark.slow
def test_the_caller_cannot_name_another_client(exchanged: World) -> None:
    """The gateway forwards the client its signed message names; a caller's own
    ``Information-Mediator-Client`` does not reach the registers."""
    instance = exchanged.instances["MA"]
    base = f"{_consumer_gateway(exchanged)}/r1/{demo.DATA_API}"
    spoofed = "MA/GOV/SOMEONE/ELSE"
    answer = httpx.post(
        f"{base}/data/{demo.BIRTHS[0]}/{demo.BIRTHS[1]}/read",
        json={"query": {"content": {"national_id": FATIMA}}},
        headers={"X-Road-Client": demo.READER, "Information-Mediator-Client": spoofed},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    with instance.node(registries.REGISTERS_NODE).session() as session:
        reads = registries.personal_data_usage(session, user_id=FATIMA, database_code="MA-BIRTHS")
    assert reads[0]["readerId"] == demo.READER
    assert spoofed not in {r["readerId"] for r in reads}
