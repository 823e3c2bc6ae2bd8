"""The end-to-end demo scenario: both instances built, served over HTTP, every step run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from jisr.cli import app
from jisr.demo import scenario

pytestmark = [pytest.mark.slow]


def test_scenario_runs_and_reuses_the_world(tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), width=200)
    world = scenario.run(tmp_path, console=console)
    try:
        assert set(world.instances) == {"MA", "QA"}
        assert world.step_number == len(scenario.STEPS)
        trace = "\n".join(world.trace)
        assert "refused" in trace
        assert "BROKEN" not in trace
    finally:
        world.close()
    again = scenario.run(tmp_path, console=console)
    again.close()
    assert any("reusing" in line for line in again.trace)


def test_demo_command_no_serve(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "Scenario complete" in result.output
