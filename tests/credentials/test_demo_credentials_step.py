"""The demo's credentials step on one served MA instance: issue, present selectively with
key binding, verify over HTTP, revoke a copy and see it refused."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from jisr.demo import servers
from jisr.demo.credentials import credentials_step
from jisr.demo.scenario import World

pytestmark = [pytest.mark.db, pytest.mark.slow]


def test_credentials_step(portal_instance: Any, tmp_path: Path) -> None:
    world = World(directory=tmp_path, console=Console(file=io.StringIO(), width=200))
    world.instances["MA"] = portal_instance
    world.running["MA"] = servers.start(portal_instance)
    saved = portal_instance.settings.public_url
    portal_instance.settings.public_url = world.url("MA")
    try:
        credentials_step(world)
        trace = "\n".join(world.trace)
        assert "issued birth-certificate" in trace
        assert "name and date of birth, with key binding: valid" in trace
        assert "refuses it (status: revoked)" in trace
    finally:
        world.running.pop("MA").stop()
        portal_instance.settings.public_url = saved
