"""Running a gateway: both listeners and the configuration refresh, in one event loop.

``start_gateway(instance, "gateway-x")`` starts, in a background thread, an event loop
(uvloop's) with

* the client proxy on ``host:port`` (plain HTTP; bind it to loopback or the member's internal
  network only: whoever reaches it speaks for the member's subsystems);
* the server proxy on the gateway's registered address (mutual TLS), or ``peer_port``; a
  handshake it refuses is logged (``server_proxy.HandshakeRefusals``);
* a task downloading the global configuration every ``exchange_globalconf_refresh_seconds``;
* one pool of keep-alive connections for the other gateways and the provider systems.

Both listeners and that pool are the gateway's own lean HTTP/1.1 (``jisr.exchange.http1``,
on ``httptools``; why: its docstring); aiohttp's client serves what is off the hot path
(the configuration, OpenAPI documents, pub/sub pushes).

It returns once both sockets listen. ``jisr exchange gateway serve`` runs the same until
Ctrl-C; tests and the demo keep the ``RunningGateway`` and call ``stop()``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from jisr.core.instance import Instance
from jisr.exchange import client_proxy, http1, pubsub, server_proxy
from jisr.exchange.gateway import GatewayRuntime
from jisr.exchange.proxy import Context
from jisr.exchange.service import parse_address

try:  # libuv's event loop: less CPU per call than asyncio's own (docs/exchange.md, Overhead)
    import uvloop
except ImportError:  # pragma: no cover - a dependency; asyncio's loop works the same, slower
    uvloop = None  # type: ignore[assignment]

MAX_HEADER_BYTES = 64 * 1024  # the signed envelope travels in one header


@dataclass
class RunningGateway:
    runtime: GatewayRuntime
    thread: threading.Thread
    host: str
    port: int
    peer_host: str
    peer_port: int
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _stopped: asyncio.Event = field(repr=False)
    _http: aiohttp.ClientSession = field(repr=False)

    @property
    def url(self) -> str:
        """Where the member's information systems call (the client proxy)."""
        return f"http://{self.host}:{self.port}"

    def refresh_now(self, timeout: float = 15.0) -> bool:
        """Download the global configuration now (as the schedule would); True on success."""
        future = asyncio.run_coroutine_threadsafe(self.runtime.refresh(self._http), self._loop)
        return future.result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self.thread.join(timeout=10)


RETRY_FIRST_SECONDS = 1.0  # after a failed download, the next try comes this soon, then 2, 4, …


def refresh_delay(period: float, failures: int) -> float:
    """Seconds until the next download of the global configuration: the period, or after
    ``failures`` failed downloads in a row 1, 2, 4 … seconds, never more than the period (a
    gateway that started while the registry was away, or lost it, is back soon after it)."""
    if failures <= 0:
        return period
    return min(period, RETRY_FIRST_SECONDS * float(2 ** min(failures - 1, 30)))


async def _refresh_forever(
    runtime: GatewayRuntime, http: aiohttp.ClientSession, failures: int = 0
) -> None:
    period = runtime.settings.exchange_globalconf_refresh_seconds
    while True:
        await asyncio.sleep(refresh_delay(period, failures))
        failures = 0 if await runtime.refresh(http) else failures + 1


def start_gateway(
    instance: Instance,
    node_name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    peer_port: int | None = None,
    registry_url: str | None = None,
    timeout: float = 20.0,
) -> RunningGateway:
    """Serve gateway ``node_name`` in a background thread; see the module docstring."""
    runtime = GatewayRuntime(instance, node_name, registry_url=registry_url)
    try:
        runtime.open_journal()  # this process's alone; what a stopped one left goes to the chain
    except BaseException:
        runtime.close()
        raise
    anchor = runtime.files.read_anchor()
    peer_host, registered_port = parse_address(str(anchor["address"]))
    ready: threading.Event = threading.Event()
    started: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=15),
            timeout=aiohttp.ClientTimeout(total=runtime.settings.exchange_service_timeout_seconds),
            auto_decompress=False,
        )
        client = http1.Client(timeout=runtime.settings.exchange_service_timeout_seconds)
        context = Context(runtime=runtime, client=client, http=http)
        listeners: list[http1.Listener] = []
        refusals = server_proxy.HandshakeRefusals(runtime)  # the peer port's TLS refusals
        try:
            ports = []
            for handler, bind_host, bind_port, tls in (
                (client_proxy.handle_client, host, port, None),
                (
                    server_proxy.handle_peer,
                    peer_host,
                    peer_port or registered_port,
                    runtime.server_ssl,
                ),
            ):
                listener = await http1.serve(
                    functools.partial(handler, context),
                    bind_host,
                    bind_port,
                    ssl_context=tls,
                    on_tls_refused=refusals if tls is not None else None,
                    max_head_bytes=MAX_HEADER_BYTES,
                    max_body_bytes=runtime.settings.exchange_max_body_bytes,
                )
                listeners.append(listener)
                ports.append(listener.port)
            failures = 0
            if runtime.usable_conf() is None and not await runtime.refresh(http):
                failures = 1
            refresher = asyncio.create_task(_refresh_forever(runtime, http, failures))
            pusher = pubsub.start_pusher(runtime, http, host, ports[0])
            started.update(loop=loop, stopped=stopped, http=http, ports=ports)
            ready.set()
            await stopped.wait()
            refresher.cancel()
            pusher.cancel()
        except BaseException as error:
            started["error"] = error
            ready.set()
            raise
        finally:
            for listener in listeners:
                await listener.close()
            refusals.close()
            await client.close()
            await http.close()
            runtime.close()  # the message log's connection (no handler is left to log)
            await asyncio.sleep(0.1)  # let closing transports finish (aiohttp's advice)

    def run() -> None:
        factory = uvloop.new_event_loop if uvloop is not None else None
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(main())
        except BaseException:  # reported to the starter through ``started``
            ready.set()

    thread = threading.Thread(target=run, name=f"gateway-{node_name}", daemon=True)
    thread.start()
    if not ready.wait(timeout) or "error" in started or "ports" not in started:
        error = started.get("error")
        raise RuntimeError(f"gateway {node_name} did not start: {error!r}") from error
    return RunningGateway(
        runtime=runtime,
        thread=thread,
        host=host,
        port=started["ports"][0],
        peer_host=peer_host,
        peer_port=started["ports"][1],
        _loop=started["loop"],
        _stopped=started["stopped"],
        _http=started["http"],
    )


__all__ = ["RETRY_FIRST_SECONDS", "RunningGateway", "refresh_delay", "start_gateway"]
