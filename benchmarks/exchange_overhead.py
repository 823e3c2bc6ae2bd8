"""What the information mediator costs: a small JSON service called directly and through two
gateways (signatures and message log on), in one run.

Setup, in a temporary directory: an MA instance; the registry served by ``jisr serve`` and
each gateway by ``jisr exchange gateway serve``, each in its own process (so each gateway's
CPU time is its own); the service (answering ``GET /births/<id>`` with a small JSON document)
in another. The load generator is this process. Both speak HTTP with the gateways' own
``jisr.exchange.http1`` on uvloop, the lightest HTTP at hand: on these two cores, whatever
CPU the load generator and the service take is taken from the gateways, and with aiohttp
(server and client, about 130 us CPU per call against 28 us) they took a fifth of the
machine at 1,000 calls/s. The direct phase uses the same client and service, so
``direct_rps`` and the added latency compare like with like. Measured:

* throughput at ``--connections`` (8) keep-alive connections for ``--seconds``, directly and
  through the gateways (calls/s);
* added latency at one connection: p50 and p99 through the gateways minus the same
  percentiles directly (ms);
* the gateways' CPU time per call during the gateway throughput phase, from their own process
  accounting (``/proc/<pid>/stat`` utime + stime of both gateway processes, divided by calls);
* the floor: CPU time (``time.process_time``) of one call's security work alone, in this
  process, on the same gateway keys and databases: two envelope signatures, two
  verifications and two message-log appends (each journalled, then written to the chain in a
  transaction of its own, one call alone sharing no commit, through the same
  ``write_prepared`` on SQLite's own connection as the gateways), measured in every round
  right after the gateways' CPU time (the VM's speed drifts).

Ends with one JSON line::

    {"direct_rps", "gateway_rps", "added_p50_ms", "added_p99_ms",
     "gateway_cpu_ms_per_call", "floor_cpu_ms_per_call"}

Each figure is the median of ``--rounds`` (5) rounds of all phases and the floor, each
round's figures printed to stderr: on a shared 2-core machine one phase alone varies by a
fifth from run to run (about 80 s in all).

    .venv/bin/python benchmarks/exchange_overhead.py [--rounds 5] [--seconds 6] [--connections 8]

Each round also reports the share of the CPUs the hypervisor gave to other machines during its
gateway phase (``steal_percent``, from ``/proc/stat``; a slower host shows more often as a
lower ``direct_rps`` than as stolen time), and the share they had nothing to run
(``idle_percent``: about 10 %), and the machine's context switches per call through the
gateways (``switches_per_call``: about 4.5; each costs some 80 us of CPU on this VM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop

CLIENT = "MA/GOV/ESERVICES/PORTAL"
JOURNAL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND
SERVICE_PATH = "/r1/MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record"
CALL_PATH = "/births/MA:AB123456"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the provider's information system (run with --serve-service PORT) ----------------------


def serve_service(port: int) -> None:
    """``GET /births/<id>``: a small JSON document (on ``jisr.exchange.http1``, see below)."""
    import uvloop

    from jisr.exchange import http1

    async def birth(request: http1.Request) -> http1.Response:
        if request.method != "GET" or not request.raw_path.startswith("/births/"):
            return http1.Response(404, body=b"not found")
        document = {"national_id": request.raw_path[8:], "born": "1990-01-01", "place": "Rabat"}
        return http1.Response(
            body=json.dumps(document).encode(), headers={"Content-Type": "application/json"}
        )

    async def main() -> None:
        await http1.serve(birth, "127.0.0.1", port, max_body_bytes=1 << 20)
        await asyncio.Event().wait()

    uvloop.run(main())


# --- setup --------------------------------------------------------------------------------------


def make_instance(directory: Path, service_url: str, registry_url: str) -> tuple[str, str]:
    """The instance with both members, the service, the access right and two gateways."""
    from jisr.core.instance import REGISTRY_NODE, init_instance
    from jisr.exchange import provisioning, service
    from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId

    instance = init_instance(directory, code="MA", nodes=[REGISTRY_NODE])
    provider, consumer = MemberId.parse("MA/GOV/CIVIL-REGISTRY"), MemberId.parse("MA/GOV/ESERVICES")
    birth_record = ServiceId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record")
    registry = instance.node(REGISTRY_NODE)
    with registry.session() as session:
        service.add_member(session, member=provider, name="Civil registry")
        service.add_member(session, member=consumer, name="E-services")
        service.add_subsystem(session, subsystem=SubsystemId.parse("MA/GOV/CIVIL-REGISTRY/BIRTHS"))
        service.add_subsystem(session, subsystem=SubsystemId.parse(CLIENT))
        service.add_service(session, service=birth_record, base_url=service_url)
        service.grant_access(
            session,
            service=birth_record,
            client=SubsystemId.parse(CLIENT),
            method="GET",
            path="/births/*",
        )
    names = []
    for member in (provider, consumer):
        info = provisioning.create_gateway(
            instance,
            member=member,
            address=f"127.0.0.1:{free_port()}",
            registry_url=registry_url,
        )
        names.append(info.name)
    instance.close()
    return names[0], names[1]


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def jisr(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "jisr"), *args]


QUIET: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def start_service(port: int) -> subprocess.Popen[bytes]:
    """The small JSON service (this file with ``--serve-service PORT``)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-service", str(port)], **QUIET
    )


def start_registry(directory: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        jisr("serve", "--dir", str(directory), "--roles", "registry") + ["--port", str(port)],
        env=env,
        **QUIET,
    )


def start_gateway(
    directory: Path, node: str, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``jisr exchange gateway serve`` for ``node``, its client proxy on ``port``."""
    return subprocess.Popen(
        jisr("exchange", "gateway", "serve", "--dir", str(directory))
        + ["--node", node, "--port", str(port)],
        env=env,
        **QUIET,
    )


def wait_http(url: str, *, ok: tuple[int, ...] = (200,), timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    headers = {"X-Road-Client": CLIENT}
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in time")


def machine_ticks() -> tuple[int, int, int]:
    """(steal, idle, all) ticks of the machine (``/proc/stat``): the time the hypervisor gave
    this VM's CPUs to others, and the time they had nothing to run (idle and I/O wait);
    reported per round: the first moves every figure here, the second shows how much of the
    two cores the calls leave unused."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, fields[3] + fields[4], sum(fields)


def context_switches() -> int:
    """Context switches of the whole machine so far (``/proc/stat`` ``ctxt``): per call through
    the gateways about 4.5 at 8 connections against 0.2 per direct call, and the gateways' CPU
    per call follows them (docs/exchange.md, Tenth pass)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("ctxt "):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


# --- load ---------------------------------------------------------------------------------------


async def throughput(url: str, connections: int, seconds: float) -> tuple[float, int]:
    """Calls per second with ``connections`` keep-alive connections, and the call count."""
    client, host, port, target = _client_for(url)
    for _ in range(connections * 4):  # warm-up: connections opened, caches filled
        await _call(client, host, port, target)
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await _call(client, host, port, target)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    await client.close()
    return count / elapsed, count


async def latencies(url: str, calls: int) -> list[float]:
    """Milliseconds per call, one connection, one call after the other."""
    client, host, port, target = _client_for(url)
    times: list[float] = []
    for index in range(calls + 20):
        started = time.perf_counter()
        await _call(client, host, port, target)
        if index >= 20:
            times.append((time.perf_counter() - started) * 1000)
    await client.close()
    return sorted(times)


def _client_for(url: str) -> tuple[Any, str, int, str]:
    from jisr.exchange import http1

    _, host, port, target = http1.split_url(url)
    return http1.Client(timeout=30), host, port, target


async def _call(client: Any, host: str, port: int, target: str) -> None:
    status, _, body = await client.request(
        "GET", host, port, target, headers=[("X-Road-Client", CLIENT)], limit=1 << 20
    )
    if status != 200:
        raise RuntimeError(f"{target}: {status} {body[:300]!r}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure_round(
    direct_url: str,
    gateway_url: str,
    gateways: list[Any],
    floor: Floor,
    args: argparse.Namespace,
) -> dict[str, float]:
    """One round: throughput directly then through the gateways (with their CPU time),
    latency at one connection directly then through the gateways, then the floor (right
    after the gateways' CPU time, so both see the machine at the same speed)."""
    run = uvloop.run
    direct_rps, _ = run(throughput(direct_url, args.connections, args.seconds))
    cpu_before = sum(cpu_seconds(p.pid) for p in gateways)
    steal_before, idle_before, ticks_before = machine_ticks()
    switches_before = context_switches()
    gateway_rps, calls = run(throughput(gateway_url, args.connections, args.seconds))
    cpu_after = sum(cpu_seconds(p.pid) for p in gateways)
    steal_after, idle_after, ticks_after = machine_ticks()
    switches = context_switches() - switches_before
    direct_ms = run(latencies(direct_url, args.latency_calls))
    gateway_ms = run(latencies(gateway_url, args.latency_calls))
    return {
        "direct_rps": round(direct_rps, 1),
        "gateway_rps": round(gateway_rps, 1),
        "added_p50_ms": round(percentile(gateway_ms, 0.5) - percentile(direct_ms, 0.5), 3),
        "added_p99_ms": round(percentile(gateway_ms, 0.99) - percentile(direct_ms, 0.99), 3),
        "gateway_cpu_ms_per_call": round((cpu_after - cpu_before) * 1000 / calls, 3),
        "floor_cpu_ms_per_call": round(floor.measure(max(1, args.floor_calls // args.rounds)), 3),
        "steal_percent": round(
            100 * (steal_after - steal_before) / max(1, ticks_after - ticks_before), 1
        ),
        "idle_percent": round(
            100 * (idle_after - idle_before) / max(1, ticks_after - ticks_before), 1
        ),
        "switches_per_call": round(switches / max(1, calls), 2),
    }


# --- the floor ----------------------------------------------------------------------------------


class Floor:
    """The CPU ms of one call's security work (2 signatures, 2 verifications, 2 log appends),
    on the gateways' keys and databases, measured in this process (``measure``) once per
    round: the machine's speed drifts by a fifth within minutes on this shared VM, and a
    floor measured once, after all rounds, made the CPU/floor ratio move with that drift
    (1.48-2.66 in five runs of the same code)."""

    def __init__(self, directory: Path, provider: str, consumer: str) -> None:
        from jisr.core.instance import Instance
        from jisr.exchange.gateway import GatewayRuntime

        self.instance = Instance.open(directory)
        self.provider, self.consumer = provider, consumer
        self.client_side = GatewayRuntime(self.instance, consumer)
        self.server_side = GatewayRuntime(self.instance, provider)
        conf = self.client_side.usable_conf()
        assert conf is not None, "no global configuration cached"
        self.client_jwk = conf.gateways[consumer].signing_jwk
        self.server_jwk = conf.gateways[provider].signing_jwk
        self.body = json.dumps({"national_id": "MA:AB123456", "born": "1990-01-01"}).encode()
        self.held = {r.name: r.node.engine.connect() for r in (self.client_side, self.server_side)}
        self.connections = {
            name: held.connection.driver_connection for name, held in self.held.items()
        }
        for raw in self.connections.values():
            # As on the gateways' log connection: the commits never checkpoint (the gateways'
            # checkpointer threads do, and their CPU counts for the gateways, not here).
            raw.execute("PRAGMA wal_autocheckpoint=0")
        # Journals of the floor's own (the gateways hold theirs), in the gateways' directory.
        self.journals = {
            name: os.open(directory / f"floor-{name}.journal", JOURNAL_FLAGS, 0o600)
            for name in self.held
        }
        self.calls = 0

    def one(self) -> None:
        from jisr.core.audit import service as audit
        from jisr.core.clock import utcnow
        from jisr.exchange import envelope
        from jisr.exchange.gateway import journal_line

        self.calls += 1
        call_id = f"floor-{self.calls}"
        request = envelope.sign_request(
            self.client_side.signing_key,
            sender=self.consumer,
            instance="MA",
            id=call_id,
            client=CLIENT,
            service=SERVICE_PATH[4:],
            method="GET",
            path=CALL_PATH,
            query="",
            user_id=None,
            issue=None,
            headers=[["accept", "*/*"]],
            body=b"",
        )
        envelope.verify(
            request, jwk=self.client_jwk, typ=envelope.REQUEST_TYP, body=b"", max_skew_seconds=60
        )
        response = envelope.sign_response(
            self.server_side.signing_key,
            sender=self.provider,
            id=call_id,
            request_hash=envelope.request_hash(request, b""),
            status=200,
            error=None,
            headers=[["content-type", "application/json"]],
            body=self.body,
        )
        envelope.verify(
            response,
            jwk=self.server_jwk,
            typ=envelope.RESPONSE_TYP,
            body=self.body,
            max_skew_seconds=60,
        )
        for runtime, event, signature in (
            (self.client_side, "request.out", request),
            (self.server_side, "response.out", response),
        ):
            entry = audit.AuditEntry(
                event=event,
                data={"id": call_id, "signature": signature},
                actor=CLIENT,
                subject=SERVICE_PATH[4:],
            )
            # Appended as the gateways do it (``GatewayRuntime.log_now``, then
            # ``_write_batch``): prepared and journalled, then ``write_prepared`` on the
            # driver's connection between BEGIN IMMEDIATE and COMMIT, and the journal emptied;
            # one call alone shares its commit with no other (the gateways' commits hold
            # many calls' records).
            now = utcnow()
            prepared = audit.prepare(entry, now)
            journal = self.journals[runtime.name]
            os.write(journal, journal_line(prepared, now.isoformat(), None))
            raw = self.connections[runtime.name]
            raw.execute("BEGIN IMMEDIATE")
            audit.write_prepared(
                raw,
                "message-log",
                [prepared],
                signer=runtime.checkpoint_signer,
                checkpoint_every=runtime.settings.audit_checkpoint_every,
            )
            raw.execute("COMMIT")
            os.ftruncate(journal, 0)

    def measure(self, calls: int) -> float:
        """CPU ms per call over ``calls`` calls, after 20 not counted (caches warmed)."""
        for _ in range(20):
            self.one()
        started = time.process_time()
        for _ in range(calls):
            self.one()
        return (time.process_time() - started) * 1000 / calls

    def close(self) -> None:
        for fd in self.journals.values():
            os.close(fd)
        for connection in self.held.values():
            connection.close()
        for runtime in (self.client_side, self.server_side):
            runtime.close()
        self.instance.close()


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="each throughput phase")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of all phases; medians are reported"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument(
        "--floor-calls", type=int, default=5000, help="calls of security work alone, in all rounds"
    )
    parser.add_argument("--serve-service", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_service:
        serve_service(args.serve_service)
        return
    began = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="jisr-bench-exchange-")) / "MA"
    service_port, registry_port, client_port, peer_client_port = (free_port() for _ in range(4))
    service_url = f"http://127.0.0.1:{service_port}"
    registry_url = f"http://127.0.0.1:{registry_port}"
    env = {**os.environ, "JISR_LOG_LEVEL": "WARNING"}
    try:
        provider, consumer = make_instance(directory, service_url, registry_url)
        with processes() as running:
            running.append(start_service(service_port))
            running.append(start_registry(directory, registry_port, env))
            wait_http(f"{service_url}{CALL_PATH}")
            wait_http(f"{registry_url}/exchange/globalconf")
            gateways = []
            for node, port in ((provider, peer_client_port), (consumer, client_port)):
                process = start_gateway(directory, node, port, env)
                running.append(process)
                gateways.append(process)
            gateway_url = f"http://127.0.0.1:{client_port}{SERVICE_PATH}{CALL_PATH}"
            wait_http(gateway_url)
            direct_url = f"{service_url}{CALL_PATH}"
            floor = Floor(directory, provider, consumer)
            try:
                rounds = [
                    measure_round(direct_url, gateway_url, gateways, floor, args)
                    for _ in range(args.rounds)
                ]
            finally:
                floor.close()
    finally:
        shutil.rmtree(directory.parent, ignore_errors=True)
    result = {
        name: round(statistics.median(r[name] for r in rounds), 3 if "_ms" in name else 1)
        for name in ("direct_rps", "gateway_rps", "added_p50_ms", "added_p99_ms")
    }
    for name in ("gateway_cpu_ms_per_call", "floor_cpu_ms_per_call"):
        result[name] = round(statistics.median(r[name] for r in rounds), 3)
    ratios = [r["gateway_cpu_ms_per_call"] / r["floor_cpu_ms_per_call"] for r in rounds]
    for index, figures in enumerate(rounds, 1):
        print(f"round {index}: " + json.dumps(figures), file=sys.stderr)
    print(
        f"medians of {len(rounds)} rounds; CPU/floor "
        f"{result['gateway_cpu_ms_per_call'] / result['floor_cpu_ms_per_call']:.2f} "
        f"(per round {min(ratios):.2f}-{max(ratios):.2f}); CPU stolen by the host during "
        f"the gateway phases {min(r['steal_percent'] for r in rounds)}-"
        f"{max(r['steal_percent'] for r in rounds)} %, idle "
        f"{min(r['idle_percent'] for r in rounds)}-{max(r['idle_percent'] for r in rounds)} %, "
        f"context switches per call {min(r['switches_per_call'] for r in rounds)}-"
        f"{max(r['switches_per_call'] for r in rounds)}; "
        f"run {time.monotonic() - began:.0f} s on {os.cpu_count()} cores",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
