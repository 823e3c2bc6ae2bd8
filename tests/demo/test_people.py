"""The demo population: deterministic, idempotent, and found by the scenario step."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy.orm import Session

from jisr.demo import people
from jisr.demo.scenario import World
from jisr.identity import service


def test_deterministic_and_valid() -> None:
    first = people.demo_people("MA", 50)
    assert first == people.demo_people("MA", 50)
    assert first[0].national_id == "MA:AB123456"
    assert people.demo_people("QA", 5)[0].national_id == "QA:28435612345"
    qatari = people.demo_people("QA", 200)
    assert len({p.national_id for p in qatari}) == 201
    for person in qatari:  # the QID birth year agrees with the birth date
        service.person_values(person)


@pytest.mark.db
def test_seed_is_idempotent(session: Session) -> None:
    assert people.seed_people(session, country="MA", count=40) == 41
    assert people.seed_people(session, country="MA", count=60) == 20
    fatima = service.get_person_by_national_id(session, "MA:AB123456")
    assert (fatima.given_name_latin, fatima.birth_place) == ("Fatima Zahra", "Rabat")
    assert service.search_persons(session, "بناني") or service.search_persons(session, "Tazi")


@pytest.mark.db
def test_step_seeds_both_countries_and_narrates(instance_factory: Any, tmp_path: Path) -> None:
    world = World(directory=tmp_path, console=Console(file=io.StringIO()))
    world.instances = {"MA": instance_factory("MA"), "QA": instance_factory("QA")}
    people.register_people(world)
    trace = "\n".join(world.trace)
    assert "MA:AB123456" in trace and "QA:28435612345" in trace
    assert "فاطمه الزهرا العمرانى" in trace
    people.register_people(world)
    assert "MA: 0 persons registered" in "\n".join(world.trace)
