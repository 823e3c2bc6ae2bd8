"""CI runs the reduced evaluation (``evaluate.py --reduced``) and checks its last line.

The floor below is a few points under what the reduced set measures (see docs/assistant.md);
there is no timing assertion."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "assistant" / "evaluate.py"
VARIETIES = {"msa", "darija_ar", "darija_latn", "gulf", "fr", "en"}


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("assistant_evaluate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_set_is_large_balanced_and_labelled() -> None:
    from jisr.services import service as catalogue_service

    evaluate = _module()
    rows = evaluate.load()
    ids = {p.id for p in catalogue_service.list_procedures()}
    assert len(rows) >= 300
    assert len({r["question"] for r in rows}) == len(rows)
    counts = {v: sum(r["variety"] == v for r in rows) for v in VARIETIES}
    assert min(counts.values()) >= 40, counts
    for row in rows:
        if row["variety"] in VARIETIES:
            assert row["expected"] in ids, row
        else:
            assert row["variety"] in ("out_of_scope", "adversarial") and row["expected"] is None
    assert {r["expected"][:2] for r in rows if r["expected"]} == {"ma", "qa"}


def test_test_set_is_held_out_balanced_and_labelled() -> None:
    from jisr.services import service as catalogue_service

    evaluate = _module()
    rows = evaluate.load(evaluate.TEST_SET)
    dev = {r["question"].casefold() for r in evaluate.load()}
    ids = {p.id for p in catalogue_service.list_procedures()}
    assert len(rows) >= 180
    assert len({r["question"] for r in rows}) == len(rows)
    assert not {r["question"].casefold() for r in rows} & dev
    counts = {v: sum(r["variety"] == v for r in rows) for v in VARIETIES}
    assert min(counts.values()) >= 25, counts
    assert sum(r["variety"] in ("out_of_scope", "adversarial") for r in rows) >= 15
    for row in rows:
        if row["variety"] in VARIETIES:
            assert row["expected"] in ids, row
        else:
            assert row["variety"] in ("out_of_scope", "adversarial") and row["expected"] is None
    # MSA, French and English are asked about both countries; Darija (both scripts) about
    # Moroccan procedures, Gulf Arabic mostly about Qatari ones (the blind set's design).
    home = {"darija_ar": {"ma"}, "darija_latn": {"ma"}, "gulf": {"qa"}}
    for variety in VARIETIES:
        countries = {r["expected"][:2] for r in rows if r["variety"] == variety}
        assert home.get(variety, {"ma", "qa"}) <= countries, variety
    assert {r["expected"] for r in rows if r["expected"]} == ids  # every procedure asked


def test_reduced_subset_is_fixed_and_balanced() -> None:
    evaluate = _module()
    chosen = evaluate.reduced(evaluate.load())
    assert chosen == evaluate.reduced(evaluate.load())
    per_variety = {
        v: sum(r["variety"] == v for r in chosen) for v in {r["variety"] for r in chosen}
    }
    assert set(per_variety) == VARIETIES | {"out_of_scope", "adversarial"}
    assert max(per_variety.values()) <= evaluate.REDUCED_PER_VARIETY
    assert all(r["expected"] in (None, *evaluate.REDUCED_PROCEDURES) for r in chosen)


def test_reduced_evaluation_prints_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JISR_ASSISTANT_CACHE_DIR", str(tmp_path))
    evaluate = _module()
    assert evaluate.main(["--reduced"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["set"] == "reduced"
    assert result["questions"] == len(evaluate.reduced(evaluate.load()))
    for mode in ("fused", "e5", "bm25"):
        assert {"top1", "top3", "mrr", "n"} <= set(result[mode]["all"])
        assert VARIETIES <= set(result[mode])
    assert {"p50", "p95"} == set(result["latency_ms"]) == set(result["cpu_ms"])
    assert {"all", "n", "out_of_scope", "adversarial"} <= set(result["rejected"])
    # Quality floor, a few points under what the reduced set measures.
    assert result["fused"]["all"]["top1"] >= 0.9
    assert result["fused"]["all"]["top3"] >= 0.95
    assert result["fused"]["all"]["top1"] >= result["e5"]["all"]["top1"]
    assert result["rejected"]["all"] >= 0.8
