"""The MA demo registries: births of the demo population, generated companies, the steps."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.mark.slow
def test_use_registries_over_http(seeded: tuple[Instance, dict[str, int]], tmp_path: Path) -> None:
    from jisr.demo import servers

    instance, _added = seeded
    world = World(directory=tmp_path, console=Console(file=io.StringIO(), width=200))
    world.instances["MA"] = instance
    world.running["MA"] = servers.start(instance)
    try:
        demo.use_registries(world)
    finally:
        world.running.pop("MA").stop()
    trace = "\n".join(world.trace)
    assert "through the GovStack Data API over HTTP" in trace
    assert "birth record MA:AB123456" in trace and "company RC-1" in trace
    assert "the latest by MA/GOV/ESERVICES/PORTAL" in trace
