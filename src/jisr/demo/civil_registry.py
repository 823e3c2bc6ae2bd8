"""The MA civil registry's information system, as the demo's data provider: a tiny ASGI app.

``GET /births/<national id>`` answers the birth record of a person of the MA demo population
(the same seeded people as the population register, ``jisr.demo.people``) and 404 for anyone
else. It knows nothing of the exchange: the
civil registry's gateway calls it on loopback, like any agency's existing system.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from jisr.demo import people
from jisr.identity.identifiers import parse_national_id

CITIZEN = "MA:AB123456"


def _birth_records() -> dict[str, dict[str, str]]:
    records = {}
    for person in people.demo_people("MA", people.DEMO_COUNT):
        display = parse_national_id(person.national_id).display
        records[display] = {
            "national_id": display,
            "name_ar": f"{person.given_name_ar} {person.family_name_ar}",
            "name_latin": f"{person.given_name_latin} {person.family_name_latin}",
            "born": person.birth_date.isoformat(),
            "place": person.birth_place,
            "registered_by": "MA/GOV/CIVIL-REGISTRY",
        }
    return records


BIRTHS = _birth_records()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    record = BIRTHS.get(path.removeprefix("/births/")) if path.startswith("/births/") else None
    status, body = (200, record) if record else (404, {"error": "no birth record"})
    await send_json(send, status, body)


async def send_json(send: Any, status: int, body: Any) -> None:
    """Answer an ASGI HTTP request with ``body`` as JSON."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode("utf-8")})


@dataclass
class RunningApp:
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(
    asgi: Any, *, host: str, port: int, timeout: float, name: str, what: str
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve ``asgi`` in a background thread ``name``; once it listens, the server, the
    thread and its URL (``RuntimeError`` naming ``what`` if it does not start)."""
    config = uvicorn.Config(asgi, host=host, port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://{host}:{bound}"


def start(host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0) -> RunningApp:
    """Serve the app in a background thread; returns once it listens."""
    server, thread, url = serve(
        app,
        host=host,
        port=port,
        timeout=timeout,
        name="civil-registry-is",
        what="the civil registry's system",
    )
    return RunningApp(server=server, thread=thread, url=url)
