"""The exchange demo step over a real (small) world, run twice to show it is idempotent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from jisr.demo import exchange, scenario

pytestmark = [pytest.mark.slow]


def test_exchange_step_runs_and_reuses(tmp_path: Path) -> None:
    for _round in range(2):
        world = scenario.World(directory=tmp_path, console=Console(file=io.StringIO()))
        try:
            scenario.create_instances(world)
            scenario.serve_instances(world)
            exchange.exchange_step(world)
            trace = "\n".join(world.trace)
            assert "Fatima Zahra El Amrani" in trace
            assert "Server.ServerProxy.AccessDenied" in trace
            assert "QA/GOV/MOI/SERVICES read MA:" in trace  # through the federation
            assert "Server.ClientProxy.ServiceNotFederated" in trace
        finally:
            world.close()
    assert "all in place" in trace
    assert "reusing agreement" in trace
