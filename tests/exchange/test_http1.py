"""The gateway's own HTTP/1.1 (``jisr.exchange.http1``), over real sockets on loopback.

Each promise of the module docstring has a test: the server is driven by raw bytes (and by
httpx as an independent peer), the client talks to raw asyncio servers written here, which
answer with Content-Length, chunked or close-delimited bodies, interim answers, malformed
bytes, or close a connection at the worst moment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jisr.exchange import http1
from jisr.exchange.http1 import (
    AnswerTooLarge,
    Client,
    Headers,
    Request,
    Response,
    header,
    join_url,
    serve,
    split_url,
)

HOST = "127.0.0.1"
T = TypeVar("T")
WAIT = 120.0  # generous bound on anything that must eventually happen (a loaded machine)


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """Run ``scenario`` on a new event loop in a thread of its own: the session's browser
    (Playwright's sync API, tests/conftest.py) keeps a loop running in the main thread of
    whichever worker ran a page test first, and ``asyncio.run`` refuses to start there."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("ok", asyncio.run(asyncio.wait_for(scenario, 600))))
        except BaseException as error:  # re-raised in the test's thread
            outcome.append(("error", error))

    thread = threading.Thread(target=target, name="http1-test")
    thread.start()
    thread.join()
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


# --- helpers: the server side ------------------------------------------------------------------


async def describe(request: Request) -> Response:
    """Answers with what it received, as JSON."""
    answer = {
        "method": request.method,
        "path": request.raw_path,
        "raw_query": request.raw_query,
        "query": request.query,
        "body": request.body.decode("latin-1"),
        "too_large": request.too_large,
        "peer_port": request.transport.get_extra_info("peername")[1]
        if request.transport is not None
        else None,
        "x_test": request.headers.getall("x-test"),
    }
    return Response(
        200, body=json.dumps(answer).encode(), headers={"Content-Type": "application/json"}
    )


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One answer of ``http1``'s server (it always sends Content-Length)."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, _ = lines[0].split(" ", 2)
        assert version == "HTTP/1.1"
        fields: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if int(status) < 200:
            return int(status), fields, b""
        body = await reader.readexactly(int(fields["content-length"]))
    return int(status), fields, body


async def eof(reader: asyncio.StreamReader) -> bool:
    """Whether the peer closes the connection with nothing more sent. Polled, and bounded in
    turns rather than seconds, so that a machine stalled for a while fails no test."""
    for _ in range(int(WAIT / 0.05)):
        if reader.at_eof():
            return True
        await asyncio.sleep(0.05)
    return False


@dataclass
class Peer:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


async def connect(port: int) -> Peer:
    reader, writer = await asyncio.open_connection(HOST, port)
    return Peer(reader, writer)


async def listen(handler: http1.Handler = describe, **options: Any) -> http1.Listener:
    options.setdefault("max_body_bytes", 1000)
    return await serve(handler, HOST, 0, **options)


GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"


# --- the server --------------------------------------------------------------------------------


def test_keep_alive_two_requests_on_one_connection() -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        await peer.send(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        status, fields, body = await read_answer(peer.reader)
        assert status == 200 and "connection" not in fields
        assert json.loads(body)["path"] == "/one"
        await peer.send(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = await read_answer(peer.reader)
        assert status == 200 and json.loads(body)["path"] == "/two"
        await peer.close()
        await listener.close()

    run(scenario())


def test_pipelined_requests_are_answered_in_order() -> None:
    async def slow_first(request: Request) -> Response:
        if request.raw_path == "/1":
            await asyncio.sleep(0.05)  # the later requests must still wait their turn
        return Response(200, body=request.raw_path.encode())

    async def scenario() -> None:
        listener = await listen(slow_first)
        peer = await connect(listener.port)
        await peer.send(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [(await read_answer(peer.reader))[2] for _ in range(3)]
        assert bodies == [b"/1", b"/2", b"/3"]
        await peer.close()
        await listener.close()

    run(scenario())


def test_content_length_and_chunked_request_bodies() -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        await peer.send(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello")
        await peer.send(b" world")  # the body may come in several segments
        _, _, body = await read_answer(peer.reader)
        assert json.loads(body)["body"] == "hello world"
        await peer.send(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        _, _, body = await read_answer(peer.reader)
        assert json.loads(body)["body"] == "hello world"
        await peer.close()
        await listener.close()

    run(scenario())


def test_an_independent_client_keep_alive_and_chunked_upload() -> None:
    async def parts() -> Any:
        for part in (b"abc", b"def", b"ghi"):
            yield part

    async def scenario() -> None:
        listener = await listen()
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{listener.port}") as client:
            first = await client.get("/p%20q", params={"a": "é", "b": "2"})
            second = await client.post("/up", content=parts())
            assert first.status_code == second.status_code == 200
            assert first.json()["path"] == "/p%20q"
            assert first.json()["query"] == {"a": "é", "b": "2"}
            assert second.json()["body"] == "abcdefghi"
            assert first.json()["peer_port"] == second.json()["peer_port"]  # one connection
        await listener.close()

    run(scenario())


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_reaches_the_handler_as_too_large(chunked: bool) -> None:
    async def scenario() -> None:
        listener = await listen(max_body_bytes=10)
        peer = await connect(listener.port)
        big = b"x" * 25
        if chunked:
            await peer.send(
                b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"5\r\n" + big[i : i + 5] + b"\r\n" for i in range(0, 25, 5))
                + b"0\r\n\r\n"
            )
        else:
            await peer.send(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n\r\n" + big)
        status, _, body = await read_answer(peer.reader)
        assert status == 200
        assert json.loads(body)["too_large"] is True and json.loads(body)["body"] == ""
        # the rest was read and dropped: the connection still answers, and a body at the
        # limit is not too large
        await peer.send(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
        _, _, body = await read_answer(peer.reader)
        assert json.loads(body) | {"peer_port": None} == {
            "method": "POST",
            "path": "/ok",
            "raw_query": "",
            "query": {},
            "body": "0123456789",
            "too_large": False,
            "peer_port": None,
            "x_test": [],
        }
        await peer.close()
        await listener.close()

    run(scenario())


def test_expect_100_continue_gets_100_continue_before_the_body() -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        await peer.send(
            b"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        status, _, _ = await read_answer(peer.reader)
        assert status == 100  # sent before the body
        await peer.send(b"data")
        status, _, body = await read_answer(peer.reader)
        assert status == 200 and json.loads(body)["body"] == "data"
        await peer.close()
        await listener.close()

    run(scenario())


def test_a_request_head_over_the_limit_gets_431_and_close() -> None:
    async def scenario() -> None:
        listener = await listen(max_head_bytes=200)
        for request in (
            b"GET /" + b"u" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 300 + b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1234567890\r\n" * 20 + b"\r\n",
        ):
            peer = await connect(listener.port)
            await peer.send(request)
            status, fields, _ = await read_answer(peer.reader)
            assert status == 431 and fields["connection"] == "close"
            assert await eof(peer.reader)
            await peer.close()
        # a head under the limit is served
        peer = await connect(listener.port)
        await peer.send(GET)
        assert (await read_answer(peer.reader))[0] == 200
        await peer.close()
        await listener.close()

    run(scenario())


def test_a_header_line_that_never_ends_gets_431() -> None:
    """httptools holds a header line until it ends: the limit still applies while it grows."""

    async def scenario() -> None:
        listener = await listen(max_head_bytes=200)
        peer = await connect(listener.port)
        answer = asyncio.create_task(read_answer(peer.reader))
        await peer.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if answer.done():
                break
            await peer.send(b"v" * 50)
        status, fields, _ = await answer
        assert status == 431 and fields["connection"] == "close"
        await peer.close()
        await listener.close()

    run(scenario())


def test_a_head_under_the_limit_in_many_segments_is_served() -> None:
    async def scenario() -> None:
        listener = await listen(max_head_bytes=200, max_body_bytes=100_000)
        peer = await connect(listener.port)
        request = (
            b"GET /" + b"p" * 60 + b" HTTP/1.1\r\nHost: x\r\nX-Test: " + b"v" * 80 + b"\r\n\r\n"
        )
        for index in range(0, len(request), 7):
            await peer.send(request[index : index + 7])
            await asyncio.sleep(0.001)
        status, _, body = await read_answer(peer.reader)
        assert status == 200 and json.loads(body)["x_test"] == ["v" * 80]
        # the end of one head, a large body and the start of the next head in one segment
        big = b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n" + b"b" * 50_000
        await peer.send(big[:20])
        await asyncio.sleep(0.01)
        await peer.send(big[20:] + request[:30])
        await asyncio.sleep(0.01)
        await peer.send(request[30:])
        assert json.loads((await read_answer(peer.reader))[2])["path"] == "/big"
        assert (await read_answer(peer.reader))[0] == 200
        await peer.close()
        await listener.close()

    run(scenario())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Name: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    ],
)
def test_a_malformed_request_gets_400_and_close(request_bytes: bytes) -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        await peer.send(request_bytes)
        status, fields, body = await read_answer(peer.reader)
        assert status == 400 and fields["connection"] == "close"
        assert body.startswith(b"Malformed HTTP request")
        assert await eof(peer.reader)
        await peer.close()
        await listener.close()

    run(scenario())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"POST /h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 2\r\n\r\nhi",
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
    ],
    ids=["websocket", "h2c-with-body", "connect"],
)
def test_an_upgrade_request_gets_501_and_close_and_its_handler_never_runs(
    request_bytes: bytes,
) -> None:
    async def scenario() -> None:
        calls: list[str] = []

        async def recording(request: Request) -> Response:
            calls.append(request.raw_path)
            return Response(200, body=request.raw_path.encode())

        listener = await listen(recording)
        peer = await connect(listener.port)
        await peer.send(request_bytes)
        status, fields, _ = await read_answer(peer.reader)
        assert status == 501 and fields["connection"] == "close"
        assert await eof(peer.reader)
        assert calls == []
        await peer.close()
        await listener.close()

    run(scenario())


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 300 + b"\r\n\r\n", 431),
    ],
    ids=["malformed", "upgrade", "head-too-large"],
)
def test_an_error_after_pipelined_requests_is_answered_after_them(bad: bytes, status: int) -> None:
    async def scenario() -> None:
        async def slow(request: Request) -> Response:
            await asyncio.sleep(0.01)
            return Response(200, body=request.raw_path.encode())

        listener = await listen(slow, max_head_bytes=200)
        peer = await connect(listener.port)
        await peer.send(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n" + bad
        )
        assert (await read_answer(peer.reader))[::2] == (200, b"/1")
        assert (await read_answer(peer.reader))[::2] == (200, b"/2")
        answer_status, fields, _ = await read_answer(peer.reader)
        assert answer_status == status and fields["connection"] == "close"
        assert await eof(peer.reader)
        await peer.close()
        await listener.close()

    run(scenario())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.0\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
def test_the_connection_closes_when_the_client_asks_or_speaks_http_1_0(
    request_bytes: bytes,
) -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        await peer.send(request_bytes)
        status, fields, _ = await read_answer(peer.reader)
        assert status == 200 and fields["connection"] == "close"
        assert await eof(peer.reader)
        await peer.close()
        await listener.close()

    run(scenario())


def test_http_1_0_with_keep_alive_stays_open() -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        for _ in range(2):
            await peer.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, fields, _ = await read_answer(peer.reader)
            assert status == 200 and "connection" not in fields
        await peer.close()
        await listener.close()

    run(scenario())


def test_head_is_answered_with_content_length_and_no_body() -> None:
    async def fixed(request: Request) -> Response:
        return Response(
            200,
            body=b"twelve bytes",
            headers=[("X-Kind", "fixed"), ("Content-Length", "999"), ("Connection", "close")],
        )

    async def scenario() -> None:
        listener = await listen(fixed)
        peer = await connect(listener.port)
        await peer.send(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
        async with asyncio.timeout(WAIT):
            head = await peer.reader.readuntil(b"\r\n\r\n")
        assert b"Content-Length: 12\r\n" in head and b"X-Kind: fixed\r\n" in head
        # the handler's own framing headers are not sent: the server frames the answer
        assert b"999" not in head and b"Connection" not in head
        # no body followed: the next bytes are the answer to the pipelined GET
        status, fields, body = await read_answer(peer.reader)
        assert status == 200 and body == b"twelve bytes" and fields["content-length"] == "12"
        await peer.close()
        await listener.close()

    run(scenario())


def test_a_failing_handler_gets_500_and_the_connection_keeps_serving() -> None:
    async def flaky(request: Request) -> Response:
        if request.raw_path == "/fail":
            raise RuntimeError("a bug")
        return Response(204)

    async def scenario() -> None:
        listener = await listen(flaky)
        peer = await connect(listener.port)
        await peer.send(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        status, fields, body = await read_answer(peer.reader)
        assert status == 500 and "connection" not in fields
        assert body == b"Internal error of the gateway."
        await peer.send(GET)
        assert (await read_answer(peer.reader))[0] == 204
        await peer.close()
        await listener.close()

    run(scenario())


def test_an_answer_header_that_cannot_be_sent_gets_500_and_the_connection_keeps_serving() -> None:
    """A line break in a header field would split the answer (a peer's signed envelope
    carries header fields): refused; so is a value that is not Latin-1."""

    async def unsafe(request: Request) -> Response:
        if request.raw_path == "/crlf":
            return Response(200, headers={"X-A": "1\r\nSet-Cookie: evil=1"})
        if request.raw_path == "/lf-name":
            return Response(200, headers=[("X-A\nX-B", "1")])
        if request.raw_path == "/arabic":
            return Response(200, headers={"X-Name": "\u0645\u062d\u0645\u062f"})
        return Response(200, body=b"ok", headers={"X-Fine": "caf\u00e9"})

    async def scenario() -> None:
        listener = await listen(unsafe)
        peer = await connect(listener.port)
        for path in (b"/crlf", b"/lf-name", b"/arabic"):
            await peer.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status, fields, body = await read_answer(peer.reader)
            assert status == 500 and "set-cookie" not in fields and "x-name" not in fields
            assert body == b"Internal error of the gateway."
        await peer.send(GET)
        status, fields, body = await read_answer(peer.reader)
        assert (status, body, fields["x-fine"]) == (200, b"ok", "caf\u00e9")  # Latin-1
        await peer.close()
        await listener.close()

    run(scenario())


def test_an_idle_keep_alive_connection_is_closed() -> None:
    async def scenario() -> None:
        listener = await listen(keepalive_seconds=0.1)
        peer = await connect(listener.port)
        await peer.send(GET)
        assert (await read_answer(peer.reader))[0] == 200
        assert await eof(peer.reader)  # closed by the server, eventually
        await peer.close()
        silent = await connect(listener.port)  # a connection that never sends anything
        assert await eof(silent.reader)
        await silent.close()
        await listener.close()

    run(scenario())


def test_targets_absolute_form_raw_path_and_query() -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        cases = [
            (b"http://example.org:8080/a/b?x=1&y=2", "/a/b", "x=1&y=2"),
            (b"https://example.org", "/", ""),
            (b"/a%20b/%2F%C3%A9?q=%C3%A9+x&q=second&e=", "/a%20b/%2F%C3%A9", None),
            (b"/frag?k=v#not-sent", "/frag", "k=v"),
        ]
        for target, path, raw_query in cases:
            await peer.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            _, _, body = await read_answer(peer.reader)
            answer = json.loads(body)
            assert answer["path"] == path
            if raw_query is not None:
                assert answer["raw_query"] == raw_query
        assert answer["query"] == {"k": "v"}
        await peer.send(b"GET /q?q=%C3%A9+x&q=second&e=&flag HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = json.loads((await read_answer(peer.reader))[2])
        assert answer["raw_query"] == "q=%C3%A9+x&q=second&e=&flag"
        assert answer["query"] == {"q": "é x"}  # first value, decoded; blank values dropped
        await peer.close()
        await listener.close()

    run(scenario())


def test_request_headers_are_case_insensitive_and_multi_valued() -> None:
    async def scenario() -> None:
        listener = await listen()
        peer = await connect(listener.port)
        await peer.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: one\r\nx-test: two\r\n\r\n")
        _, _, body = await read_answer(peer.reader)
        assert json.loads(body)["x_test"] == ["one", "two"]
        await peer.close()
        await listener.close()

    run(scenario())


def test_headers_and_request_objects() -> None:
    headers = Headers([("Content-Type", "a/b"), ("X-Twice", "1"), ("x-twice", "2")])
    assert headers.get("content-type") == headers.get("CONTENT-TYPE") == "a/b"
    assert headers.get("missing") is None and headers.get("missing", "d") == "d"
    assert headers.getall("X-TWICE") == ["1", "2"]
    assert headers.getall("missing") == [] and headers.getall("missing", ["d"]) == ["d"]
    assert "x-twice" in headers and "nope" not in headers and 3 not in headers
    assert len(headers) == 3 and headers.items()[2] == ("x-twice", "2")
    headers.getall("x-twice").append("3")  # a copy: the headers are unchanged
    assert headers.getall("x-twice") == ["1", "2"]
    assert len(Headers()) == 0 and Headers().get("a") is None

    request = Request("GET", "/", "a=1&b=%20&a=2&c", Headers(), b"", False, None)
    assert request.query == {"a": "1", "b": " "}
    assert request.peer_certificate() is None
    assert Response(201, headers={"A": "1"}).headers == [("A", "1")]
    assert Response(headers=[("A", "1"), ("A", "2")]).headers == [("A", "1"), ("A", "2")]
    assert Response().status == 200 and Response().body == b""


def test_close_waits_for_the_handler_in_flight() -> None:
    async def scenario() -> None:
        started = asyncio.Event()
        release = asyncio.Event()

        async def slow(request: Request) -> Response:
            started.set()
            await release.wait()
            return Response(200, body=b"done")

        listener = await listen(slow)
        port = listener.port
        peer = await connect(port)
        await peer.send(GET)
        async with asyncio.timeout(WAIT):
            await started.wait()
        closing = asyncio.create_task(listener.close())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not closing.done()
        # no new connection is accepted meanwhile
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, port)
        release.set()
        status, _, body = await read_answer(peer.reader)
        assert (status, body) == (200, b"done")
        async with asyncio.timeout(WAIT):
            await closing
        assert await eof(peer.reader)
        await peer.close()

    run(scenario())


def test_close_stops_waiting_after_its_grace() -> None:
    async def scenario() -> None:
        started = asyncio.Event()

        async def stuck(request: Request) -> Response:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("never")  # pragma: no cover

        listener = await listen(stuck)
        peer = await connect(listener.port)
        await peer.send(GET)
        async with asyncio.timeout(WAIT):
            await started.wait()
            await listener.close(grace=0.05)
        assert await eof(peer.reader)  # closed without an answer
        await peer.close()

    run(scenario())


def test_a_handler_is_not_cancelled_when_its_client_goes_away() -> None:
    async def scenario() -> None:
        started = asyncio.Event()
        release = asyncio.Event()
        finished = asyncio.Event()

        async def slow(request: Request) -> Response:
            started.set()
            await release.wait()
            finished.set()
            return Response(200, body=b"nobody reads this")

        listener = await listen(slow)
        peer = await connect(listener.port)
        await peer.send(GET)
        async with asyncio.timeout(WAIT):
            await started.wait()
        await peer.close()
        for _ in range(20):
            await asyncio.sleep(0)
        release.set()
        async with asyncio.timeout(WAIT):
            await finished.wait()
        await listener.close()

    run(scenario())


# --- helpers: raw servers for the client --------------------------------------------------------


@dataclass
class Seen:
    """What a raw server received: one list of (request line, body) per connection."""

    connections: list[list[tuple[str, bytes]]] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def requests(self) -> list[str]:
        return [line for connection in self.connections for line, _ in connection]


Script = Callable[[int, int, str, bytes, asyncio.StreamWriter], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    return lines[0], fields, body


async def raw_server(script: Script) -> tuple[asyncio.Server, Seen]:
    """A server that reads requests and lets ``script(connection index, request index,
    request line, body, writer)`` answer; the script returns False to end the connection."""
    seen = Seen()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.tasks.add(task)
        index = len(seen.connections)
        requests: list[tuple[str, bytes]] = []
        seen.connections.append(requests)
        try:
            while True:
                received = await read_request(reader)
                if received is None:
                    break
                line, _, body = received
                requests.append((line, body))
                if not await script(index, len(requests) - 1, line, body, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, HOST, 0)
    return server, seen


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def stop(
    server: asyncio.Server, client: Client | None = None, seen: Seen | None = None
) -> None:
    """Close the client, then wait for the raw server's connections to end."""
    if client is not None:
        await client.close()
    server.close()
    if seen is not None and seen.tasks:
        await asyncio.wait(seen.tasks, timeout=WAIT)
    await server.wait_closed()


def answering(*chunks: bytes, keep: bool = True) -> Script:
    """A script that writes ``chunks`` (with pauses in between) to every request."""

    async def script(c: int, r: int, line: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.001)
        return keep

    return script


# --- the client ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n", b"hello"), b"hello"),
        (
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n",
                b"2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n",
            ),
            b"hello",
        ),
    ],
    ids=["content-length", "chunked"],
)
def test_client_reads_delimited_answers_and_reuses_the_connection(
    answer: tuple[bytes, ...], expected: bytes
) -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering(*answer))
        client = Client(timeout=WAIT)
        for index in range(3):
            status, headers, body = await client.request(
                "GET", HOST, port_of(server), f"/r{index}?q=1", limit=100
            )
            assert (status, body) == (200, expected)
        assert seen.requests == [
            "GET /r0?q=1 HTTP/1.1",
            "GET /r1?q=1 HTTP/1.1",
            "GET /r2?q=1 HTTP/1.1",
        ]
        assert len(seen.connections) == 1  # one connection for the three
        await stop(server, client, seen)

    run(scenario())


def test_client_sends_headers_body_and_host() -> None:
    async def scenario() -> None:
        received: list[tuple[str, dict[str, str], bytes]] = []

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await read_request(reader)
            assert request is not None
            received.append(request)
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nX-Id: 7\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(connection, HOST, 0)
        client = Client(timeout=WAIT)
        status, headers, body = await client.request(
            "POST",
            HOST,
            port_of(server),
            "/p",
            headers=[("X-Road-Client", "MA/GOV/X")],
            body=b"payload",
            limit=10,
        )
        assert (status, body) == (201, b"")
        assert header(headers, "x-id") == "7"
        line, fields, sent = received[0]
        assert line == "POST /p HTTP/1.1"
        assert fields["host"] == f"{HOST}:{port_of(server)}"
        assert fields["x-road-client"] == "MA/GOV/X" and fields["content-length"] == "7"
        assert sent == b"payload"
        await stop(server, client)

    run(scenario())


def test_client_reads_a_close_delimited_answer() -> None:
    async def scenario() -> None:
        server, seen = await raw_server(
            answering(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nsome ", b"bytes until close", keep=False)
        )
        client = Client(timeout=WAIT)
        for _ in range(2):
            status, headers, body = await client.request(
                "GET", HOST, port_of(server), "/", limit=100
            )
            assert (status, body) == (200, b"some bytes until close")
            assert header(headers, "X-A") == "1"
        assert len(seen.connections) == 2  # such a connection is never reused
        await stop(server, client, seen)

    run(scenario())


@pytest.mark.parametrize(
    ("answer", "keep"),
    [
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", b"0123456789A"), True),
        (
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"6\r\n012345\r\n5\r\n6789A\r\n0\r\n\r\n",
            ),
            True,
        ),
        ((b"HTTP/1.1 200 OK\r\n\r\n0123456789A",), False),
    ],
    ids=["content-length", "chunked", "close-delimited"],
)
def test_client_refuses_an_answer_over_the_limit(answer: tuple[bytes, ...], keep: bool) -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering(*answer, keep=keep))
        client = Client(timeout=WAIT)
        with pytest.raises(AnswerTooLarge):
            await client.request("GET", HOST, port_of(server), "/", limit=10)
        # the connection is not reused; a larger limit reads the whole answer
        status, _, body = await client.request("GET", HOST, port_of(server), "/", limit=12)
        assert status == 200 and len(body) == 11
        assert len(seen.connections) == 2
        await stop(server, client, seen)

    run(scenario())


def test_client_answers_without_body_204_304_and_head() -> None:
    async def script(c: int, r: int, line: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if line.startswith("HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
        elif line.startswith("GET /204"):
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif line.startswith("GET /304"):
            writer.write(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: e\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def scenario() -> None:
        server, seen = await raw_server(script)
        client = Client(timeout=WAIT)
        port = port_of(server)
        assert (await client.request("GET", HOST, port, "/204", limit=10))[::2] == (204, b"")
        status, headers, body = await client.request("GET", HOST, port, "/304", limit=10)
        assert (status, body, header(headers, "etag")) == (304, b"", "e")
        assert (await client.request("GET", HOST, port, "/", limit=10))[::2] == (200, b"ok")
        assert len(seen.connections) == 1  # 204 and 304 left the connection reusable
        status, headers, body = await client.request("HEAD", HOST, port, "/", limit=10)
        assert (status, body, header(headers, "content-length")) == (200, b"", "42")
        assert (await client.request("GET", HOST, port, "/", limit=10))[::2] == (200, b"ok")
        await stop(server, client, seen)

    run(scenario())


def test_client_and_server_head_together() -> None:
    async def scenario() -> None:
        listener = await listen()
        client = Client(timeout=WAIT)
        status, headers, body = await client.request("HEAD", HOST, listener.port, "/", limit=10)
        assert status == 200 and body == b"" and int(header(headers, "Content-Length") or 0) > 10
        status, _, body = await client.request("GET", HOST, listener.port, "/x", limit=1000)
        assert status == 200 and json.loads(body)["path"] == "/x"
        await client.close()
        await listener.close()

    run(scenario())


@pytest.mark.parametrize("split", [False, True])
def test_client_skips_a_100_continue_interim_answer(split: bool) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"

    async def scenario() -> None:
        server, seen = await raw_server(
            answering(interim, final) if split else answering(interim + final)
        )
        client = Client(timeout=WAIT)
        for _ in range(2):
            status, headers, body = await client.request(
                "POST", HOST, port_of(server), "/", body=b"b", limit=10
            )
            assert (status, body) == (200, b"done") and header(headers, "content-length") == "4"
        assert len(seen.connections) == 1
        await stop(server, client, seen)

    run(scenario())


def test_client_opens_a_new_connection_when_the_server_closed_the_idle_one() -> None:
    async def scenario() -> None:
        closed = asyncio.Event()

        async def script(
            c: int, r: int, line: str, body: bytes, writer: asyncio.StreamWriter
        ) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            closed.set()
            return False  # answered as keep-alive, then closed while idle

        server, seen = await raw_server(script)
        client = Client(timeout=WAIT)
        assert (await client.request("GET", HOST, port_of(server), "/", limit=10))[0] == 200
        async with asyncio.timeout(WAIT):
            await closed.wait()
        for _ in range(10):
            await asyncio.sleep(0)
        assert (await client.request("GET", HOST, port_of(server), "/", limit=10))[0] == 200
        assert len(seen.connections) == 2
        await stop(server, client, seen)

    run(scenario())


def drop_second_request(
    c: int, r: int, line: str, body: bytes, writer: asyncio.StreamWriter
) -> Awaitable[bool]:
    """Answers, but the first connection closes on its second request without answering
    (the race of a request sent on a connection the server is closing)."""

    async def script() -> bool:
        if c == 0 and r == 1:
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    return script()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_client_retries_an_idempotent_request_on_a_dropped_reused_connection(method: str) -> None:
    async def scenario() -> None:
        server, seen = await raw_server(drop_second_request)
        client = Client(timeout=WAIT)
        port = port_of(server)
        assert (await client.request("GET", HOST, port, "/first", limit=10))[0] == 200
        status, _, body = await client.request(method, HOST, port, "/again", limit=10)
        assert (status, body) == (200, b"ok")
        assert [len(requests) for requests in seen.connections] == [2, 1]
        assert seen.requests[1:] == [f"{method} /again HTTP/1.1"] * 2
        await stop(server, client, seen)

    run(scenario())


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_client_does_not_retry_a_non_idempotent_request(method: str) -> None:
    async def scenario() -> None:
        server, seen = await raw_server(drop_second_request)
        client = Client(timeout=WAIT)
        port = port_of(server)
        assert (await client.request("GET", HOST, port, "/first", limit=10))[0] == 200
        with pytest.raises(ConnectionError):
            await client.request(method, HOST, port, "/once", body=b"x", limit=10)
        assert seen.requests == ["GET /first HTTP/1.1", f"{method} /once HTTP/1.1"]
        # the next request goes on a new connection
        assert (await client.request(method, HOST, port, "/next", limit=10))[0] == 200
        assert len(seen.connections) == 2
        await stop(server, client, seen)

    run(scenario())


def test_client_does_not_retry_on_a_new_connection() -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering(keep=False))  # reads, closes, never answers
        client = Client(timeout=WAIT)
        with pytest.raises(ConnectionError):
            await client.request("GET", HOST, port_of(server), "/", limit=10)
        assert seen.requests == ["GET / HTTP/1.1"]
        await stop(server, client, seen)

    run(scenario())


def test_client_does_not_reuse_a_connection_idle_too_long() -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        client = Client(timeout=WAIT, keepalive_seconds=0.01)
        assert (await client.request("GET", HOST, port_of(server), "/", limit=10))[0] == 200
        await asyncio.sleep(0.05)
        assert (await client.request("GET", HOST, port_of(server), "/", limit=10))[0] == 200
        assert len(seen.connections) == 2
        await stop(server, client, seen)

    run(scenario())


async def times_out(client: Client, *, close: bool = True) -> None:
    """``client`` calls a server that never answers and fails with its own ``TimeoutError``,
    well before a guard of ``WAIT``; the client is closed after unless ``close`` is False."""
    release = asyncio.Event()

    async def silent(c: int, r: int, line: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        return False

    server, seen = await raw_server(silent)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(WAIT):
            await client.request("GET", HOST, port_of(server), "/", limit=10)
    assert time.monotonic() - started < WAIT / 2
    release.set()
    if close:
        await stop(server, client, seen)
    else:
        server.close()
        await server.wait_closed()


def test_client_times_out() -> None:
    run(times_out(Client(timeout=0.2)))


def test_client_times_out_on_a_later_event_loop_too() -> None:
    """The deadline timer belongs to a loop: a client used again from a new loop (the first
    one closed, the client left open) still times out there."""
    client = Client(timeout=0.2)
    run(times_out(client, close=False))
    run(times_out(client))


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # then the server closes
    ],
    ids=["garbage", "status", "length", "chunk", "truncated"],
)
def test_client_refuses_a_malformed_answer(answer: bytes) -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering(answer, keep=False))
        client = Client(timeout=WAIT)
        with pytest.raises(ConnectionError):
            await client.request("GET", HOST, port_of(server), "/", limit=100)
        await stop(server, client, seen)

    run(scenario())


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/a HTTP/1.1\r\nX-Smuggled: 1\r\n", []),
        ("/a", [("X-A", "1\r\nX-Smuggled: 1")]),
        ("/a", [("X-A", "1\nX-Smuggled: 1")]),
        ("/a", [("X-A", "1\rX-Smuggled: 1")]),
        ("/a", [("X-A\r\nX-Smuggled", "1")]),
        ("/a", [("X-Name", "\u0645\u062d\u0645\u062f")]),
    ],
    ids=["target", "value-crlf", "value-lf", "value-cr", "name", "not-latin-1"],
)
def test_client_refuses_a_head_it_cannot_send_as_it_is(
    target: str, headers: list[tuple[str, str]]
) -> None:
    """A line break in a target or a header field would smuggle a request (a peer's signed
    envelope carries header fields): nothing is sent."""

    async def scenario() -> None:
        server, seen = await raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        client = Client(timeout=WAIT)
        with pytest.raises(ValueError):
            await client.request("GET", HOST, port_of(server), target, headers=headers, limit=10)
        status, _, _ = await client.request("GET", HOST, port_of(server), "/b", limit=10)
        assert status == 200 and seen.requests == ["GET /b HTTP/1.1"]
        await stop(server, client, seen)

    run(scenario())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["connection-close", "http-1.0"],
)
def test_client_does_not_reuse_a_connection_its_server_ends(answer: bytes) -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering(answer))  # the raw server does not close
        client = Client(timeout=WAIT)
        for _ in range(2):
            assert (await client.request("GET", HOST, port_of(server), "/", limit=10))[2] == b"ok"
        assert len(seen.connections) == 2
        await stop(server, client, seen)

    run(scenario())


def test_client_concurrent_requests_use_several_connections_then_reuse_them() -> None:
    async def scenario() -> None:
        both = asyncio.Event()
        arrived = 0

        async def script(
            c: int, r: int, line: str, body: bytes, writer: asyncio.StreamWriter
        ) -> bool:
            nonlocal arrived
            arrived += 1
            if arrived == 2:
                both.set()
            await both.wait()  # the first answer waits for the second request
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % c)
            return True

        server, seen = await raw_server(script)
        client = Client(timeout=WAIT, max_idle_per_host=1)
        port = port_of(server)
        answers = await asyncio.gather(
            client.request("GET", HOST, port, "/1", limit=10),
            client.request("GET", HOST, port, "/2", limit=10),
        )
        assert sorted(answer[2] for answer in answers) == [b"0", b"1"]
        assert len(seen.connections) == 2
        # one of the two was kept (max_idle_per_host=1): the next requests go on it
        for _ in range(2):
            assert (await client.request("GET", HOST, port, "/3", limit=10))[0] == 200
        assert len(seen.connections) == 2
        assert sorted(len(requests) for requests in seen.connections) == [1, 3]
        await stop(server, client, seen)

    run(scenario())


def test_client_refuses_a_connection_nobody_listens_on() -> None:
    async def scenario() -> None:
        server, seen = await raw_server(answering())
        port = port_of(server)
        await stop(server)
        client = Client(timeout=WAIT)
        with pytest.raises(OSError):
            await client.request("GET", HOST, port, "/", limit=10)
        await client.close()

    run(scenario())


# --- TLS ----------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_pem: bytes
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path
    client_der: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path, label: str) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"test CA {label}"))
        .issuer_name(_name(f"test CA {label}"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, usage: x509.ObjectIdentifier) -> tuple[bytes, bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return (
            cert.public_bytes(serialization.Encoding.PEM),
            key_pem,
            cert.public_bytes(serialization.Encoding.DER),
        )

    server_pem, server_key, _ = leaf("server", ExtendedKeyUsageOID.SERVER_AUTH)
    client_pem, client_key, client_der = leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {}
    for name, data in (
        ("server.pem", server_pem),
        ("server.key", server_key),
        ("client.pem", client_pem),
        ("client.key", client_key),
    ):
        path = directory / f"{label}-{name}"
        path.write_bytes(data)
        files[name] = path
    return Pki(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_file=files["server.pem"],
        key_file=files["server.key"],
        client_cert_file=files["client.pem"],
        client_key_file=files["client.key"],
        client_der=client_der,
    )


def server_context(pki: Pki, *, require_client: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pki.ca_pem.decode())
    return context


def client_context(trusted: Pki, *, identity: Pki | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=trusted.ca_pem.decode())
    if identity is not None:
        context.load_cert_chain(identity.client_cert_file, identity.client_key_file)
    return context


def test_tls_with_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "good")

    async def whose(request: Request) -> Response:
        der = request.peer_certificate()
        return Response(200, body=der or b"none")

    async def scenario() -> None:
        served = server_context(pki, require_client=True)
        listener = await listen(whose, ssl_context=served)
        # read once per connection: the certificate must not change under a renegotiation
        assert served.options & ssl.OP_NO_RENEGOTIATION
        client = Client(timeout=WAIT)
        context = client_context(pki, identity=pki)
        for _ in range(2):  # two requests on one connection: the same certificate
            status, _, body = await client.request(
                "GET", HOST, listener.port, "/", ssl_context=context, limit=10_000
            )
            assert status == 200 and body == pki.client_der
        await client.close()
        await listener.close()

    run(scenario())


def test_tls_refuses_a_server_certificate_of_another_ca(tmp_path: Path) -> None:
    good = make_pki(tmp_path, "good")
    other = make_pki(tmp_path, "other")

    async def scenario() -> None:
        listener = await listen(ssl_context=server_context(other, require_client=False))
        client = Client(timeout=WAIT)
        with pytest.raises(ssl.SSLError):
            await client.request(
                "GET", HOST, listener.port, "/", ssl_context=client_context(good), limit=10
            )
        # the same server, trusted, answers; a plain request to a TLS port does not
        status, _, _ = await client.request(
            "GET", HOST, listener.port, "/", ssl_context=client_context(other), limit=10_000
        )
        assert status == 200
        with pytest.raises(OSError):
            await client.request("GET", HOST, listener.port, "/", limit=10_000)
        await client.close()
        await listener.close()

    run(scenario())


def test_failed_tls_handshakes_are_reported_with_the_address(tmp_path: Path) -> None:
    good = make_pki(tmp_path, "good")
    other = make_pki(tmp_path, "other")
    reported: list[tuple[OSError, tuple[Any, ...]]] = []

    async def until(count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(reported) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(reported) == count, reported

    async def scenario() -> None:
        listener = await listen(
            ssl_context=server_context(good, require_client=True),
            on_tls_refused=lambda error, address: reported.append((error, address)),
            request_seconds=0.5,
        )
        client = Client(timeout=WAIT)

        async def status_as(identity: Pki) -> int:
            status, _, _ = await client.request(
                "GET",
                HOST,
                listener.port,
                "/",
                ssl_context=client_context(good, identity=identity),
                limit=10_000,
            )
            return status

        # the right certificate: served, nothing reported
        assert await status_as(good) == 200 and reported == []
        # a client certificate of another CA
        with pytest.raises(OSError):
            await status_as(other)
        await until(1)
        error, address = reported[0]
        assert isinstance(error, ssl.SSLCertVerificationError)
        assert error.verify_message == "unable to get local issuer certificate"
        assert address[0] == HOST and isinstance(address[1], int)
        # plain HTTP on the TLS port
        peer = await connect(listener.port)
        await peer.send(GET)
        assert await peer.reader.read() == b""  # closed, unanswered
        peer.writer.close()
        await until(2)
        assert isinstance(reported[1][0], ssl.SSLError)
        assert reported[1][0].reason == "HTTP_REQUEST"
        # a connection that says nothing: refused when the handshake time is up
        peer = await connect(listener.port)
        assert await asyncio.wait_for(peer.reader.read(), WAIT) == b""
        await until(3)
        assert isinstance(reported[2][0], TimeoutError)
        peer.writer.close()
        # the listener still serves
        assert await status_as(good) == 200 and len(reported) == 3
        await client.close()
        await listener.close()

    run(scenario())


def test_a_failing_refusal_report_does_not_stop_the_listener(tmp_path: Path) -> None:
    good = make_pki(tmp_path, "good")

    def broken(error: OSError, address: tuple[Any, ...]) -> None:
        raise RuntimeError("the report fails")

    async def scenario() -> None:
        listener = await listen(
            ssl_context=server_context(good, require_client=False), on_tls_refused=broken
        )
        peer = await connect(listener.port)
        await peer.send(GET)
        assert await peer.reader.read() == b""
        peer.writer.close()
        client = Client(timeout=WAIT)
        status, _, _ = await client.request(
            "GET", HOST, listener.port, "/", ssl_context=client_context(good), limit=10_000
        )
        assert status == 200
        await client.close()
        await listener.close()

    run(scenario())


# --- helpers of the module ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.org", ("http", "example.org", 80, "/")),
        ("https://example.org", ("https", "example.org", 443, "/")),
        ("http://example.org/", ("http", "example.org", 80, "/")),
        (
            "https://example.org:8443/a/b?x=1&y=%20",
            ("https", "example.org", 8443, "/a/b?x=1&y=%20"),
        ),
        ("http://10.0.0.1:8080", ("http", "10.0.0.1", 8080, "/")),
        ("https://[::1]:8443/p", ("https", "::1", 8443, "/p")),
        ("https://[2001:db8::1]", ("https", "2001:db8::1", 443, "/")),
        ("http://[::1]/x?y", ("http", "::1", 80, "/x?y")),
        ("http://example.org:8000?x=1", ("http", "example.org", 8000, "/?x=1")),
        ("http://example.org?x=1", ("http", "example.org", 80, "/?x=1")),
    ],
)
def test_split_url(url: str, expected: tuple[str, str, int, str]) -> None:
    assert split_url(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://example.org/", "example.org/x", "HTTP//x", "http://example.org:port/"]
)
def test_split_url_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValueError):
        split_url(url)


BASES = [
    "http://example.org",
    "http://example.org/",
    "https://example.org:8443/api",
    "https://example.org:8443/api/",
    "http://[::1]:8080/v1",
    "http://example.org/api?fixed=1",
    "http://example.org/api#top",
    "http://example.org:8000?x=1",
    " http://example.org/a\tb",
]
TAILS = ["", "/", "/births/MA:AB123456", "//twice", "/a%20b/c", "x", "/a#frag", "/a\r\nb"]
QUERIES = ["", "x=1", "x=1&y=%20", "a#b", "q=\t"]


@pytest.mark.parametrize("base", BASES)
def test_join_url_is_split_url_of_the_joined_text(base: str) -> None:
    """The provider's gateway joins a service's base URL and a call's path and query
    (``join_url``, the base split once): always what ``split_url`` says of the whole text."""
    for path in TAILS:
        for query in QUERIES:
            whole = base + path + (f"?{query}" if query else "")
            try:
                expected = split_url(whole)
            except ValueError:
                with pytest.raises(ValueError):
                    join_url(base, path, query)
                continue
            assert join_url(base, path, query) == expected, (base, path, query)


def test_join_url_refuses_a_bad_base() -> None:
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(ValueError):
            join_url("http://example.org:port", "/x")


def test_header() -> None:
    items = [("Content-Type", "a/b"), ("X-Twice", "1"), ("x-twice", "2")]
    assert header(items, "content-type") == "a/b"
    assert header(items, "X-TWICE") == "1"
    assert header(items, "missing") is None
    assert header([], "a") is None


# --- back-pressure and slow clients (lead) ----------------------------------------------------


def test_a_request_that_trickles_in_too_slowly_gets_408_and_close() -> None:
    async def main() -> bytes:
        async def handler(request: http1.Request) -> http1.Response:
            return http1.Response(200, body=b"ok")

        listener = await http1.serve(
            handler, "127.0.0.1", 0, max_body_bytes=1024, request_seconds=0.3
        )
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), timeout=30)
            writer.close()
            return data
        finally:
            await listener.close()

    answer = run(main())
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in answer


def test_a_client_that_reads_no_answers_is_read_no_further() -> None:
    """Pipelined requests already read are queued; with MAX_QUEUED or more waiting the
    connection is read no further (what the client sends next stays unread), and it resumes
    once the queue drains: every request answered, in order."""

    async def main() -> tuple[int, list[int], bytes]:
        gate = asyncio.Event()
        seen = 0

        async def handler(request: http1.Request) -> http1.Response:
            nonlocal seen
            seen += 1
            await gate.wait()
            return http1.Response(200, body=request.raw_path.encode())

        listener = await http1.serve(handler, "127.0.0.1", 0, max_body_bytes=1024)
        waiting: list[int] = []
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            batch = http1.MAX_QUEUED * 2
            for start in (0, batch):
                writer.write(
                    b"".join(
                        f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                        for i in range(start, start + batch)
                    )
                )
                await writer.drain()
                await asyncio.sleep(0.3)
                connection = next(iter(listener._server.connections))
                waiting.append(len(connection.queue))
            gate.set()
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 * batch:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=30)
                assert chunk, "the connection closed early"
                data += chunk
            writer.close()
            return seen, waiting, data
        finally:
            await listener.close()

    seen, waiting, data = run(main())
    batch = http1.MAX_QUEUED * 2
    assert waiting[0] == batch - 1  # one being answered, the rest of the first read queued
    assert waiting[1] == waiting[0], "the paused connection was read"
    assert seen == 2 * batch
    answers = data.split(b"HTTP/1.1 200")[1:]
    assert [part.split(b"\r\n\r\n", 1)[1][: len(f"/{i}")] for i, part in enumerate(answers)] == [
        f"/{i}".encode() for i in range(2 * batch)
    ]
