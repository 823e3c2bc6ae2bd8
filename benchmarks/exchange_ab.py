"""Paired A/B comparison of two gateway set-ups on one machine, in one run.

On a shared VM the host's speed moves ``exchange_overhead.py``'s figures by 10-40 % within
minutes, more than most changes worth trying; runs of A and B one after the other cannot
separate them. Here both run at once, under the same host: two worlds (an instance each,
with its registry and two gateways; one service for both), A's gateways started with the
environment ``--a`` and B's with ``--b`` (``KEY=VALUE`` words, e.g. ``JISR_…`` settings, or
``PYTHONPATH=/path/to/a/worktree/src`` to run another commit's code).

* latency at one connection: calls alternate A, B, B, A, … (each pair in turn first); p50,
  p90 and p99 of each, and the median of the paired differences;
* throughput at ``--connections`` (8): short phases alternating A, B, B, A, …; the median of
  each, the ratio per pair of phases, and the gateways' CPU time per call.

    .venv/bin/python benchmarks/exchange_ab.py --b "JISR_EXCHANGE_MAX_CLOCK_SKEW_SECONDS=60"

A difference is worth believing when it shows in the paired figures of several runs, in
the same direction.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import uvloop
from exchange_overhead import (
    CALL_PATH,
    SERVICE_PATH,
    _call,
    _client_for,
    cpu_seconds,
    free_port,
    make_instance,
    percentile,
    processes,
    start_gateway,
    start_registry,
    start_service,
    throughput,
    wait_http,
)

SIDES = ("A", "B")


def environment(words: str) -> dict[str, str]:
    env = {**os.environ, "JISR_LOG_LEVEL": "WARNING"}
    for word in words.split():
        name, separator, value = word.partition("=")
        if not separator or not name:
            raise SystemExit(f"not a KEY=VALUE word: {word!r}")
        env[name] = value
    return env


def start_world(
    root: Path, side: str, words: str, service_url: str, running: list[subprocess.Popen[bytes]]
) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """An instance with its registry and two gateways; returns the client gateway's URL of
    the call and the two gateway processes."""
    directory = root / side / "MA"
    registry_port, client_port, provider_port = free_port(), free_port(), free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    provider, consumer = make_instance(directory, service_url, registry_url)
    running.append(start_registry(directory, registry_port, environment("")))
    wait_http(f"{registry_url}/exchange/globalconf")
    gateways = []
    for node, port in ((provider, provider_port), (consumer, client_port)):
        process = start_gateway(directory, node, port, environment(words))
        running.append(process)
        gateways.append(process)
    url = f"http://127.0.0.1:{client_port}{SERVICE_PATH}{CALL_PATH}"
    wait_http(url)
    return url, gateways


def order(index: int) -> tuple[str, str]:
    return SIDES if index % 2 == 0 else SIDES[::-1]


async def latencies(urls: dict[str, str], calls: int) -> dict[str, list[float]]:
    """Milliseconds per call of each side, calls alternating between the sides."""
    clients = {side: _client_for(url) for side, url in urls.items()}
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for index in range(calls + 40):
        for side in order(index):
            client, host, port, target = clients[side]
            started = time.perf_counter()
            await _call(client, host, port, target)
            if index >= 40:  # warm-up not counted
                times[side].append((time.perf_counter() - started) * 1000)
    for client, *_ in clients.values():
        await client.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="", help="KEY=VALUE words for A's gateways")
    parser.add_argument("--b", default="", help="KEY=VALUE words for B's gateways")
    parser.add_argument("--calls", type=int, default=2000, help="latency calls of each side")
    parser.add_argument("--phases", type=int, default=8, help="throughput phases of each side")
    parser.add_argument("--seconds", type=float, default=3.0, help="each throughput phase")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    for words in (args.a, args.b):  # refuse a malformed word before any start-up
        environment(words)
    root = Path(tempfile.mkdtemp(prefix="jisr-bench-ab-"))
    service_port = free_port()
    service_url = f"http://127.0.0.1:{service_port}"
    rps: dict[str, list[float]] = {side: [] for side in SIDES}
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    try:
        with processes() as running:
            running.append(start_service(service_port))
            wait_http(f"{service_url}{CALL_PATH}")
            worlds = {
                side: start_world(root, side, words, service_url, running)
                for side, words in zip(SIDES, (args.a, args.b), strict=True)
            }
            times = uvloop.run(latencies({side: w[0] for side, w in worlds.items()}, args.calls))
            for index in range(args.phases):
                for side in order(index):
                    url, gateways = worlds[side]
                    before = sum(cpu_seconds(p.pid) for p in gateways)
                    rate, calls = uvloop.run(throughput(url, args.connections, args.seconds))
                    after = sum(cpu_seconds(p.pid) for p in gateways)
                    rps[side].append(rate)
                    cpu[side].append((after - before) * 1000 / max(1, calls))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for side, words in zip(SIDES, (args.a, args.b), strict=True):
        ordered = sorted(times[side])
        print(
            f"{side} [{words or 'as is'}]: latency p50 {statistics.median(times[side]):.3f} ms, "
            f"p90 {percentile(ordered, 0.9):.3f}, p99 {percentile(ordered, 0.99):.3f}; "
            f"calls/s median {statistics.median(rps[side]):.0f} "
            f"({min(rps[side]):.0f}-{max(rps[side]):.0f}); "
            f"gateway CPU {statistics.median(cpu[side]):.3f} ms/call"
        )
    paired = [b - a for a, b in zip(times["A"], times["B"], strict=True)]
    ratios = [b / a for a, b in zip(rps["A"], rps["B"], strict=True)]
    print(
        f"B - A: latency p50 {statistics.median(times['B']) - statistics.median(times['A']):+.3f}"
        f" ms, median of paired differences {statistics.median(paired):+.3f} ms; calls/s B/A "
        f"{statistics.median(ratios):.3f} (per pair of phases "
        f"{', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
