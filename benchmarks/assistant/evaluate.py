"""Evaluate the assistant on ``dev.jsonl``: top-1, top-3 and MRR per variety, latency.

Each line of the set is ``{"question", "variety", "expected"}`` (``expected`` a procedure id,
or null for an out-of-scope or adversarial question). In the same run, over the same index:

* ``fused``: the assistant's ranking (e5 with BM25 as a thresholded second signal);
* ``e5``: multilingual-e5-small alone; ``bm25``: BM25 alone (the baselines);
* ``answered``: the share of in-scope questions whose answer names the expected procedure
  (``procedure``, after the no-match and clarification decisions), and ``rejected``: the
  share of out-of-scope questions answered with ``procedure`` null;
* latency of ``ask`` (fused) per question, p50 and p95, after a warm-up.

The last line printed is one JSON object of every figure.

    .venv/bin/python benchmarks/assistant/evaluate.py [--limit N] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import structlog

from jisr.assistant.service import Assistant

DEV_SET = Path(__file__).resolve().parent / "dev.jsonl"
MODES = ("fused", "e5", "bm25")


def load(path: Path = DEV_SET, limit: int | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return rows[:limit] if limit else rows


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate(rows: list[dict[str, Any]], assistant: Assistant, **search: Any) -> dict[str, Any]:
    """Every figure of the module docstring for ``rows``."""
    ranks: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in MODES}
    answered: dict[str, list[float]] = defaultdict(list)
    rejected: list[float] = []
    latencies: list[float] = []
    assistant.ask("warm")
    for row in rows:
        question, expected, variety = row["question"], row.get("expected"), row["variety"]
        started = time.perf_counter()
        answer = assistant.ask(question)
        latencies.append((time.perf_counter() - started) * 1000)
        if expected is None:
            rejected.append(float(answer.procedure is None))
            continue
        answered[variety].append(
            float(answer.procedure is not None and answer.procedure.id == expected)
        )
        for mode in MODES:
            ids = [s.id for s in assistant.rank(question, mode=mode, **search)]
            rank = ids.index(expected) + 1 if expected in ids else 0
            ranks[mode][variety].append(rank)

    def figures(values: list[float]) -> dict[str, float]:
        n = len(values) or 1
        return {
            "n": len(values),
            "top1": round(sum(r == 1 for r in values) / n, 3),
            "top3": round(sum(1 <= r <= 3 for r in values) / n, 3),
            "mrr": round(sum(1 / r for r in values if r) / n, 3),
        }

    result: dict[str, Any] = {"questions": len(rows)}
    for mode in MODES:
        per_variety = {v: figures(r) for v, r in sorted(ranks[mode].items())}
        every = [r for values in ranks[mode].values() for r in values]
        result[mode] = {"all": figures(every), **per_variety}
    every_answer = [a for values in answered.values() for a in values]
    result["answered"] = {
        "all": round(statistics.fmean(every_answer), 3) if every_answer else 0.0,
        **{v: round(statistics.fmean(a), 3) for v, a in sorted(answered.items())},
    }
    result["rejected"] = round(statistics.fmean(rejected), 3) if rejected else None
    result["latency_ms"] = {
        "p50": round(_percentile(latencies, 0.5), 1),
        "p95": round(_percentile(latencies, 0.95), 1),
    }
    return result


def _print_table(result: dict[str, Any]) -> None:
    print(f"{'variety':<14}" + "".join(f"{m + ' top1/top3/mrr':>28}" for m in MODES))
    for variety in result["fused"]:
        cells = []
        for mode in MODES:
            f = result[mode].get(variety, {"top1": 0, "top3": 0, "mrr": 0, "n": 0})
            cells.append(f"{f['top1']:.2f}/{f['top3']:.2f}/{f['mrr']:.2f} (n={f['n']})")
        print(f"{variety:<14}" + "".join(f"{c:>28}" for c in cells))
    print(f"answered (procedure right after decisions): {result['answered']}")
    print(f"out-of-scope rejected: {result['rejected']}")
    print(f"latency ms: {result['latency_ms']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="Only the first N questions.")
    parser.add_argument("--sweep", action="store_true", help="Also try BM25 weights/thresholds.")
    args = parser.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    rows = load(limit=args.limit)
    assistant = Assistant.over(
        progress=lambda done, total: print(
            f"\rindex {done}/{total}", end="", file=sys.stderr, flush=True
        )
    )
    if args.sweep:
        _sweep(rows, assistant)
    result = evaluate(rows, assistant)
    _print_table(result)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _sweep(rows: list[dict[str, Any]], assistant: Assistant) -> None:
    """Top-1 for a grid of BM25 weights and thresholds (how the constants were chosen)."""
    from jisr.assistant.language import identify

    scoped = [(identify(r["question"]), r["expected"]) for r in rows if r.get("expected")]
    for weight in (0.0, 0.01, 0.02, 0.03, 0.05, 0.1):
        for threshold in (0.0, 2.0, 4.0, 6.0, 8.0):
            hits = 0
            for understood, expected in scoped:
                ranked = assistant.index.search(
                    understood.search_text,
                    country_hint=understood.country_hint,
                    bm25_weight=weight,
                    bm25_threshold=threshold,
                )
                hits += bool(ranked) and ranked[0].id == expected
            print(f"sweep weight={weight} threshold={threshold} top1={hits / len(scoped):.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
