"""The evaluation runs on a reduced set (no accuracy threshold: figures are in the docs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from jisr.assistant.service import Assistant

from .conftest import SMALL

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "assistant" / "evaluate.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("assistant_evaluate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reduced_evaluation(small_assistant: Assistant) -> None:
    evaluate = _module()
    rows = evaluate.load()
    rows = [r for r in rows if r["expected"] in SMALL][:16] + [
        r for r in rows if r["expected"] is None
    ][:4]
    result = evaluate.evaluate(rows, small_assistant)
    assert result["questions"] == len(rows)
    for mode in ("fused", "e5", "bm25"):
        assert {"top1", "top3", "mrr", "n"} <= set(result[mode]["all"])
    assert {"p50", "p95"} == set(result["latency_ms"])
    assert 0 <= result["rejected"] <= 1
