"""The demo's federation step on two served instances, run twice (idempotent)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from jisr.demo import servers
from jisr.demo.federation import federation_step
from jisr.demo.scenario import World

pytestmark = [pytest.mark.db, pytest.mark.slow]


def test_federation_step(portal_instance: Any, instance_factory: Any, tmp_path: Path) -> None:
    qa = instance_factory("QA")
    world = World(directory=tmp_path, console=Console(file=io.StringIO(), width=200))
    world.instances.update(MA=portal_instance, QA=qa)
    saved = portal_instance.settings.public_url
    try:
        for code, instance in world.instances.items():
            world.running[code] = servers.start(instance)
            instance.settings.public_url = world.url(code)
        federation_step(world)
        federation_step(world)
        trace = "\n".join(world.trace)
        assert "signed by both registries" in trace and "reusing agreement" in trace
        assert "valid (no call to MA)" in trace
        assert "QA reads the image: valid" in trace
        assert (tmp_path / "birth-certificate-qr.png").is_file()
    finally:
        for running in world.running.values():
            running.stop()
        portal_instance.settings.public_url = saved
