"""Evaluate the assistant on ``dev.jsonl`` or ``test.jsonl``: top-1, top-3, MRR, refusals, latency.

Two sets of questions, in the same format: ``dev.jsonl`` (540 questions: the first dev set and
the first held-out set, both consulted since; every constant, word list and threshold of the
assistant is chosen on it) and ``test.jsonl`` (a fresh blind set, written independently of the
aliases and of the dev questions, never used for tuning: only its aggregate figures are
looked at, once). ``--set test`` evaluates the second.

Each line of a set is ``{"question", "variety", "expected"}``: ``variety`` one of ``msa``,
``darija_ar``, ``darija_latn`` (Arabizi), ``gulf``, ``fr``, ``en`` for questions about a
procedure (``expected`` its id), or ``out_of_scope`` / ``adversarial`` (``expected`` null). In
the same run, over the same index:

* ``fused``: the assistant's ranking (e5 with BM25 as a thresholded second signal, country
  hints); ``e5``: multilingual-e5-small alone, reading the question as typed (not its MSA
  rendering); ``bm25``: BM25 alone, reading what the assistant's BM25 reads (the baselines) — each
  with top-1, top-3 and MRR (over the three best) per variety and over all;
* ``answered``: per variety, the share of questions whose answer names the expected procedure
  (``procedure``, after the no-match and clarification decisions); ``clarified``: the share
  answered with a clarifying question instead;
* ``rejected``: the share of out-of-scope and adversarial questions answered with
  ``procedure`` null, over both and for each;
* latency of ``ask`` (fused) per question, p50 and p95, after a warm-up, as wall-clock time
  (``latency_ms``) and as CPU time of the process (``cpu_ms``: what one query costs one
  core, whatever else the machine runs).

The last line printed is one JSON object of every figure.

``--reduced`` (what CI runs): a fixed, balanced subset — an index over the ten procedures of
``REDUCED_PROCEDURES`` only (built in seconds), at most ``REDUCED_PER_VARIETY`` questions of
each variety about them, and the first ``REDUCED_PER_VARIETY`` out-of-scope and adversarial
questions. Its figures are higher than the full set's (fewer procedures to confuse).

``--misses`` also prints each question whose fused ranking misses (the question, the expected
procedure, the three best), before the JSON line.

    .venv/bin/python benchmarks/assistant/evaluate.py [--set dev|test] [--reduced] [--limit N]
        [--sweep] [--misses]
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

from jisr.assistant.service import Assistant

DEV_SET = Path(__file__).resolve().parent / "dev.jsonl"
TEST_SET = Path(__file__).resolve().parent / "test.jsonl"
SETS = {"dev": DEV_SET, "test": TEST_SET}
MODES = ("fused", "e5", "bm25")
IN_SCOPE = ("msa", "darija_ar", "darija_latn", "gulf", "fr", "en")
REFUSE = ("out_of_scope", "adversarial")
REDUCED_PROCEDURES = (
    "ma-residence-certificate",
    "ma-cnie-renewal",
    "ma-cnie-duplicate",
    "ma-passport",
    "ma-driving-licence",
    "ma-company-registration",
    "qa-qid-replacement",
    "qa-residence-permit-renewal",
    "qa-residence-permit-issuance",
    "qa-work-visa",
)
REDUCED_PER_VARIETY = 6


def load(path: Path = DEV_SET, limit: int | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return rows[:limit] if limit else rows


def reduced(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixed, balanced subset of ``--reduced`` (see the module docstring), in file order."""
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for row in rows:
        variety = row["variety"]
        fits = row["expected"] in REDUCED_PROCEDURES or (
            row["expected"] is None and variety in REFUSE
        )
        if fits and taken[variety] < REDUCED_PER_VARIETY:
            taken[variety] += 1
            chosen.append(row)
    return chosen


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _figures(ranks: list[int]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "n": len(ranks),
        "top1": round(sum(r == 1 for r in ranks) / n, 3),
        "top3": round(sum(1 <= r <= 3 for r in ranks) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
    }


def _share(values: list[float]) -> float:
    return round(statistics.fmean(values), 3) if values else 0.0


def evaluate(
    rows: list[dict[str, Any]],
    assistant: Assistant,
    misses: list[dict[str, Any]] | None = None,
    **search: Any,
) -> dict[str, Any]:
    """Every figure of the module docstring for ``rows``; each question the fused ranking
    does not put first is appended to ``misses`` when given."""
    ranks: dict[str, dict[str, list[int]]] = {m: defaultdict(list) for m in MODES}
    answered: dict[str, list[float]] = defaultdict(list)
    clarified: dict[str, list[float]] = defaultdict(list)
    rejected: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    cpu: list[float] = []
    assistant.ask("warm")
    for row in rows:
        question, expected, variety = row["question"], row.get("expected"), row["variety"]
        started, started_cpu = time.perf_counter(), time.process_time()
        answer = assistant.ask(question)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        if expected is None:
            rejected[variety].append(float(answer.procedure is None))
            continue
        answered[variety].append(
            float(answer.procedure is not None and answer.procedure.id == expected)
        )
        clarified[variety].append(float(answer.procedure is None and len(answer.citations) == 2))
        for mode in MODES:
            ids = [s.id for s in assistant.rank(question, mode=mode, **search)]
            ranks[mode][variety].append(ids.index(expected) + 1 if expected in ids else 0)
            if mode == "fused" and misses is not None and ids[:1] != [expected]:
                misses.append(row | {"got": ids})

    result: dict[str, Any] = {"questions": len(rows)}
    for mode in MODES:
        every = [r for values in ranks[mode].values() for r in values]
        result[mode] = {"all": _figures(every)} | {
            v: _figures(ranks[mode][v]) for v in sorted(ranks[mode])
        }
    for name, shares in (("answered", answered), ("clarified", clarified)):
        result[name] = {"all": _share([a for values in shares.values() for a in values])} | {
            v: _share(shares[v]) for v in sorted(shares)
        }
    every_refusal = [r for values in rejected.values() for r in values]
    result["rejected"] = {"all": _share(every_refusal), "n": len(every_refusal)} | {
        v: _share(rejected[v]) for v in sorted(rejected)
    }
    result["latency_ms"] = {
        "p50": round(_percentile(latencies, 0.5), 1),
        "p95": round(_percentile(latencies, 0.95), 1),
    }
    result["cpu_ms"] = {
        "p50": round(_percentile(cpu, 0.5), 1),
        "p95": round(_percentile(cpu, 0.95), 1),
    }
    return result


def _print_table(result: dict[str, Any]) -> None:
    # Three decimals, as in the JSON line (two would round a second time: 0.925 → 0.93 for
    # 49 of 53 = 0.9245).
    print(f"{'variety':<14}" + "".join(f"{m + ' top1/top3/mrr':>31}" for m in MODES))
    for variety in result["fused"]:
        cells = []
        for mode in MODES:
            f = result[mode].get(variety, {"top1": 0, "top3": 0, "mrr": 0, "n": 0})
            cells.append(f"{f['top1']:.3f}/{f['top3']:.3f}/{f['mrr']:.3f} (n={f['n']})")
        print(f"{variety:<14}" + "".join(f"{c:>31}" for c in cells))
    print(f"answered (procedure right after decisions): {result['answered']}")
    print(f"clarifying question instead: {result['clarified']}")
    print(f"out-of-scope and adversarial rejected: {result['rejected']}")
    print(f"latency ms: {result['latency_ms']} (CPU time of the process: {result['cpu_ms']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--set", choices=sorted(SETS), default="dev", help="dev (tuned on) or test (held out)."
    )
    parser.add_argument("--reduced", action="store_true", help="The fixed subset CI runs.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N questions.")
    parser.add_argument("--sweep", action="store_true", help="Also try BM25 weights/thresholds.")
    parser.add_argument(
        "--misses",
        action="store_true",
        help="Also print each question the fused ranking misses (question, expected, top 3).",
    )
    args = parser.parse_args(argv)
    rows = load(SETS[args.set], limit=args.limit)
    procedures = None
    if args.reduced:
        from jisr.services import service as catalogue_service

        rows = reduced(rows)
        procedures = [catalogue_service.get_procedure(i) for i in REDUCED_PROCEDURES]
    assistant = Assistant.over(
        procedures,
        progress=lambda done, total: print(
            f"\rindex {done}/{total}", end="", file=sys.stderr, flush=True
        ),
    )
    if args.sweep:
        _sweep(rows, assistant)
    missed: list[dict[str, Any]] = []
    result = evaluate(rows, assistant, misses=missed if args.misses else None)
    for miss in sorted(missed, key=lambda m: m["variety"]):
        print(f"MISS {miss['variety']:<12} {miss['question']}")
        print(f"     expected {miss['expected']}  got {' | '.join(miss['got'])}")
    result["set"] = "reduced" if args.reduced else "full"
    result["questions_file"] = args.set
    _print_table(result)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _sweep(rows: list[dict[str, Any]], assistant: Assistant) -> None:
    """Top-1 for a grid of BM25 weights and thresholds (how the constants were chosen)."""
    from jisr.assistant.language import identify

    vocabulary = assistant.index.vocabulary
    scoped = [
        (identify(r["question"], vocabulary), r["expected"]) for r in rows if r.get("expected")
    ]
    for weight in (0.0, 0.05, 0.08, 0.12, 0.15, 0.2):
        for threshold in (0.0, 1.0, 2.0, 4.0):
            hits = 0
            for understood, expected in scoped:
                ranked = assistant.index.search(
                    understood.search_text,
                    country_hint=understood.country_hint,
                    country_prior=understood.country_prior,
                    bm25_weight=weight,
                    bm25_threshold=threshold,
                    embed_text=understood.embed_text,
                    intents=understood.intents,
                )
                hits += bool(ranked) and ranked[0].id == expected
            print(f"sweep weight={weight} threshold={threshold} top1={hits / len(scoped):.3f}")


if __name__ == "__main__":
    from jisr.core.logging import configure_logging
    from jisr.core.settings import Settings

    configure_logging(Settings(log_level="WARNING"))  # one line per question otherwise
    raise SystemExit(main())
