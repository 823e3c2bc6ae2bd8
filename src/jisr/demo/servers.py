"""Serving instances in background threads of one process (uvicorn servers on loopback)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn

from jisr.core.instance import Instance
from jisr.web.app import create_app


@dataclass
class RunningServer:
    instance: Instance
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start(
    instance: Instance,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 20.0,
    roles: list[str] | None = None,
) -> RunningServer:
    """Serve ``roles`` of ``instance`` (default: every node but the internal ones, see
    ``jisr.web.app.INTERNAL_ROLES``); returns once the socket listens (port 0: any free)."""
    config = uvicorn.Config(
        create_app(instance, roles=roles, configure_logs=False),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"serve-{instance.code}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(
                f"the {instance.code} server stopped while starting (is port {port} free?)"
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the {instance.code} server did not start within {timeout} s")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
    return RunningServer(
        instance=instance, server=server, thread=thread, host=host, port=int(bound)
    )
