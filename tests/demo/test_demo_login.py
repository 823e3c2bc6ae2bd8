"""The demo's login step on one served instance: a relying party, a citizen's account and a
scripted login over HTTP, run twice on the same world (idempotent)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from jisr.demo import login, people, servers
from jisr.demo.scenario import World
from jisr.identity import auth

pytestmark = [pytest.mark.db, pytest.mark.slow]


def test_login_step_twice(instance_factory: Any, tmp_path: Path) -> None:
    instance = instance_factory("MA")
    idp = instance.node("idp")
    with idp.session() as session:
        people.seed_people(session, country="MA", count=0)
    world = World(directory=tmp_path, console=Console(file=io.StringIO(), width=200))
    world.instances["MA"] = instance
    world.running["MA"] = servers.start(instance)
    instance.settings.public_url = world.url("MA")
    try:
        login.login_step(world)
        first = "\n".join(world.trace)
        assert "registered" in first and "already registered" not in first
        assert f"acr {auth.ACR_TWO_FACTOR}" in first
        assert "national_id MAAB123456 (consented)" in first
        assert (tmp_path / "relying-party-MA.json").stat().st_mode & 0o077 == 0
        world.trace.clear()
        login.login_step(world)
        again = "\n".join(world.trace)
        assert "already registered" in again
        assert "consent given on a former run" in again
        assert f"acr {auth.ACR_TWO_FACTOR}" in again
    finally:
        world.running.pop("MA").stop()
