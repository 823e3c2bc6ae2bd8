"""The once-only evidence demo step after the exchange step, as the scenario runs them: the
gateways the exchange step started are reused, not started twice; run twice on the same
directory to show it is idempotent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from jisr.demo import evidence, exchange, scenario
from jisr.exchange.server import RunningGateway

pytestmark = [pytest.mark.slow]


def test_evidence_step_after_the_exchange_step(tmp_path: Path) -> None:
    for round_ in range(2):
        world = scenario.World(directory=tmp_path, console=Console(file=io.StringIO()))
        try:
            scenario.create_instances(world)
            scenario.serve_instances(world)
            exchange.exchange_step(world)
            evidence.evidence_step(world)
            trace = "\n".join(world.trace)
            assert "identity-record of MA:AB123456 from MA/GOV/DGSN" in trace
            assert "qid-record of QA:28435612345 from QA/GOV/MOI" in trace
            assert "a service nobody provides is not available" in trace
            gateways = [
                c.__self__
                for c in world.closers
                if isinstance(getattr(c, "__self__", None), RunningGateway)
            ]
            names = [(g.runtime.instance.code, g.runtime.node.name) for g in gateways]
            assert len(names) == len(set(names)) == 6  # MA: 4 members, QA: 2; none twice
        finally:
            world.close()
        if round_ == 1:
            assert "MA registry: in place" in trace
