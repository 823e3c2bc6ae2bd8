"""The gateway's own HTTP/1.1: a server protocol and a keep-alive client, on ``httptools``.

Why not aiohttp here (it still serves everything off the hot path: the configuration
download, OpenAPI documents, pub/sub pushes). A call through the information mediator
crosses four HTTP hops inside the two gateways (two servers, two clients). With aiohttp's
server and client on those hops the gateways spent about 2.2 ms CPU per call against a
cryptographic floor of 0.63 ms, two thirds of it in HTTP machinery (``benchmarks/
exchange_overhead.py`` with py-spy; docs/exchange.md, Overhead). This module keeps only what
the gateway needs: ``httptools`` (llhttp, the parser of Node.js, as uvicorn uses it) parses,
one ``transport.write`` sends a whole message, and nothing else runs per request.

Server (``serve``): HTTP/1.1 with keep-alive and pipelined requests answered in order,
``Content-Length`` and chunked request bodies, ``Expect: 100-continue``; limits on the
request head (``max_head_bytes``, else 431) and body (``max_body_bytes``: the rest is read
and dropped, and the handler sees ``Request.too_large``, so it answers with its own error);
idle keep-alive connections closed after ``keepalive_seconds``, a request that takes longer
than ``request_seconds`` to arrive answered 408 and closed (a slow client holds no connection
for ever); a connection is read no further while ``MAX_QUEUED`` pipelined requests wait or
its write buffer is full (a client that does not read its answers); a malformed request gets 400,
an upgrade or CONNECT 501 (its handler never runs), and the connection is closed after the
answers to the requests pipelined before it. A handler that fails, or answers a header field
that cannot be sent as it is (a line break, not Latin-1), gets a 500 (logged); a handler is
never cancelled when its client goes away (what it logs is committed all the same). Over TLS
the listener accepts connections itself, so that a failed handshake (with the peer's address)
reaches ``on_tls_refused`` instead of being dropped in silence; it must be done within
``request_seconds``.

Client (``Client``): one pool of keep-alive connections per (host, port, TLS context), the
most recently used first; a connection idle for ``keepalive_seconds`` (shorter than the
servers') or closed by its server is not reused; a request whose reused connection was closed
before any byte of the answer came back is sent once more on a new one, when its method is
idempotent. ``Content-Length``, chunked and close-delimited answers; an answer larger than the
limit raises ``AnswerTooLarge``; a whole exchange is bounded by ``timeout`` (``TimeoutError``).
Errors are ``OSError`` (``ssl.SSLError`` for TLS) or ``TimeoutError``; a target or header
field with a line break (or not Latin-1) raises ``ValueError`` and nothing is sent.
"""

from __future__ import annotations

import asyncio
import functools
import http
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httptools

from jisr.core.logging import get_logger

log = get_logger("jisr.exchange.http")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
MAX_QUEUED = 16  # pipelined requests waiting on one connection before it is read no further
_REASONS = {status.value: status.phrase.encode("ascii") for status in http.HTTPStatus}


class Headers:
    """Header fields in received order; names compared case-insensitively."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = items if items is not None else []
        self._index: dict[str, list[str]] | None = None

    def _map(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._items:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._map().get(name.lower())
        return values[0] if values else default

    def getall(self, name: str, default: list[str] | None = None) -> list[str]:
        values = self._map().get(name.lower())
        return list(values) if values else (default if default is not None else [])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map()

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Request:
    """One received request: the target as sent (percent-encoded), its head and its body."""

    __slots__ = (
        "method",
        "raw_path",
        "raw_query",
        "headers",
        "body",
        "too_large",
        "transport",
        "_peer",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Headers,
        body: bytes,
        too_large: bool,
        transport: asyncio.BaseTransport | None,
        peer: bytes | None = None,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.raw_query = raw_query
        self.headers = headers
        self.body = body
        self.too_large = too_large
        self.transport = transport
        self._peer = peer

    @property
    def query(self) -> dict[str, str]:
        """The query's parameters (the first value of each), percent-decoded."""
        return {name: value for name, value in reversed(parse_qsl(self.raw_query))}

    def peer_certificate(self) -> bytes | None:
        """The TLS client certificate, DER-encoded (None on a plain connection), as read
        once when the connection was made (``serve``: contexts refuse renegotiation)."""
        return self._peer


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(
        self,
        status: int = 200,
        *,
        body: bytes = b"",
        headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, dict):
            self.headers = list(headers.items())
        else:
            self.headers = list(headers)


Handler = Callable[[Request], Awaitable[Response]]

_SKIPPED_RESPONSE_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})


def _head(status: int, headers: list[tuple[str, str]], length: int, close: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
    for name, value in headers:
        if name.lower() in _SKIPPED_RESPONSE_HEADERS:
            continue
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(b"Content-Length: %d\r\n" % length)
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    head = b"".join(lines)
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines):
        raise ValueError("a line break inside a header field of the answer")
    return head


def _plain(status: int, text: str) -> bytes:
    body = text.encode("utf-8")
    head = _head(status, [("Content-Type", "text/plain; charset=utf-8")], len(body), True)
    return head + body


# --- server -----------------------------------------------------------------------------------


class _Server:
    """What the connections of one listener share."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_head_bytes: int,
        max_body_bytes: int,
        keepalive_seconds: float,
        request_seconds: float = 60.0,
    ) -> None:
        self.handler = handler
        self.request_seconds = request_seconds
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes
        self.keepalive_seconds = keepalive_seconds
        self.connections: set[_ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[tuple[Request, bool]] = deque()
        self.busy = False
        self.closing = False
        self.failure: bytes | None = None  # the error answer that ends the connection
        self.last_active = time.monotonic()
        self.receiving_since: float | None = None  # a request begun, not yet whole
        self.paused_for: set[str] = set()  # why reading is paused: "queue", "writes"
        self.peer: bytes | None = None  # the TLS client certificate (DER), if any
        self._reset()

    def _reset(self) -> None:
        self.url: list[bytes] = []
        self.head_bytes = 0
        self.in_head = False  # from the target to the end of the head
        self.head_segments = 0  # bytes of segments wholly inside the unfinished head
        self.header_items: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.too_large = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        # Read once per connection (after the handshake), not per request: ``serve`` sets
        # OP_NO_RENEGOTIATION, so the certificate cannot change while the connection lasts.
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.peer = bytes(der) if der else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        unfinished = self.url if self.in_head else None  # the head this segment continues
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(501, "Protocol upgrades are not supported.")
        except httptools.HttpParserError as error:
            # httptools wraps what a callback raises: the callback's own error is the context
            if isinstance(error.__context__, _HeadTooLarge):
                self._fail(431, "The request head is too large.")
            else:
                self._fail(400, f"Malformed HTTP request: {error}")
        else:
            if unfinished is not None and unfinished is self.url and self.in_head:
                # httptools holds a header line until it ends (no callback): count the
                # segments that lie wholly inside a head still unfinished
                self.head_segments += len(data)
                if self.head_segments > self.server.max_head_bytes:
                    self._fail(431, "The request head is too large.")

    def _pause(self, why: str) -> None:
        if not self.paused_for and self.transport is not None:
            self.transport.pause_reading()
        self.paused_for.add(why)

    def _resume(self, why: str) -> None:
        if why in self.paused_for:
            self.paused_for.discard(why)
            if not self.paused_for and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    # Back-pressure: a client that sends requests without reading the answers is read no
    # further while MAX_QUEUED requests wait or the transport's write buffer is full.
    def pause_writing(self) -> None:
        self._pause("writes")

    def resume_writing(self) -> None:
        self._resume("writes")

    def _fail(self, status: int, text: str) -> None:
        """Answer ``status`` and close, after the answers to the requests received before."""
        if self.transport is None or self.closing or self.failure is not None:
            return
        self.failure = _plain(status, text)
        if not self.busy:
            self._send_failure()

    def _send_failure(self) -> None:
        if self.transport is not None and self.failure is not None:
            self.closing = True
            self.transport.write(self.failure)
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.receiving_since = time.monotonic()

    def on_url(self, url: bytes) -> None:
        self.in_head = True
        self.head_bytes += len(url)
        if self.head_bytes > self.server.max_head_bytes:
            raise _HeadTooLarge
        self.url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > self.server.max_head_bytes:
            raise _HeadTooLarge
        self.header_items.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        for name, value in self.header_items:
            if name.lower() == "expect" and value.lower() == "100-continue":
                if self.transport is not None:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif name.lower() == "content-length":
                try:
                    self.too_large = int(value) > self.server.max_body_bytes
                except ValueError:
                    pass  # llhttp refuses a malformed Content-Length

    def on_body(self, body: bytes) -> None:
        if self.too_large:
            return  # read and dropped; the handler answers with its own error
        self.body_bytes += len(body)
        if self.body_bytes > self.server.max_body_bytes:
            self.too_large = True
            self.body.clear()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        url = b"".join(self.url)
        if not url.startswith(b"/"):  # absolute form: keep the path and query only
            scheme_end = url.find(b"://")
            slash = url.find(b"/", scheme_end + 3) if scheme_end >= 0 else -1
            url = url[slash:] if slash >= 0 else b"/"
        path, _, query = url.partition(b"?")
        request = Request(
            self.parser.get_method().decode("ascii"),
            path.decode("latin-1"),
            query.split(b"#", 1)[0].decode("latin-1"),
            Headers(self.header_items),
            b"".join(self.body) if not self.too_large else b"",
            self.too_large,
            self.transport,
            self.peer,
        )
        keep_alive = bool(self.parser.should_keep_alive())
        self.receiving_since = None
        self._reset()
        if self.closing or self.parser.should_upgrade():
            return  # an upgrade (or CONNECT) is refused with 501, its handler never runs
        self.queue.append((request, keep_alive))
        if len(self.queue) >= MAX_QUEUED:
            self._pause("queue")
        if not self.busy:
            self.busy = True
            task = self.loop.create_task(self._answer_all())
            self.server.tasks.add(task)
            task.add_done_callback(self.server.tasks.discard)

    async def _answer_all(self) -> None:
        try:
            while self.queue:
                request, keep_alive = self.queue.popleft()
                if len(self.queue) < MAX_QUEUED // 2:
                    self._resume("queue")
                try:
                    response = await self.server.handler(request)
                except Exception as error:  # a bug: answer 500, keep serving
                    log.exception("http.handler-failed", error=repr(error))
                    response = Response(500, body=b"Internal error of the gateway.")
                self.last_active = time.monotonic()
                transport = self.transport
                if transport is None or self.closing or transport.is_closing():
                    self.queue.clear()
                    return
                close = not keep_alive
                try:
                    head = _head(response.status, response.headers, len(response.body), close)
                except ValueError as error:  # a header field that cannot be sent as it is
                    log.error("http.answer-refused", error=repr(error))
                    response = Response(500, body=b"Internal error of the gateway.")
                    head = _head(500, [], len(response.body), close)
                body = b"" if request.method == "HEAD" else response.body
                transport.write(head + body)
                if close:
                    self.closing = True
                    transport.close()
                    return
            if self.failure is not None:
                self._send_failure()
        finally:
            self.busy = False

    def close_if_idle(self, now: float) -> None:
        """Close a keep-alive connection idle too long, and answer 408 to a request whose head
        and body take longer than ``request_seconds`` to arrive (however slowly they trickle:
        a slow client does not hold a connection for ever)."""
        started = self.receiving_since
        if started is not None and now - started > self.server.request_seconds:
            self._fail(408, "The request took too long to arrive.")
            return
        idle = now - self.last_active > self.server.keepalive_seconds
        if idle and not self.busy and self.transport is not None:
            self.closing = True
            self.transport.close()


class _HeadTooLarge(Exception):
    pass


class Listener:
    """A listening socket and its connections; ``close()`` ends them, answering what is in
    flight first."""

    def __init__(self, server: _Server, aserver: asyncio.Server | _TLSAcceptor) -> None:
        self._server = server
        self._aserver = aserver
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    @property
    def port(self) -> int:
        return int(self._aserver.sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        while True:
            period = min(self._server.keepalive_seconds, self._server.request_seconds) / 4
            await asyncio.sleep(max(0.05, period))
            now = time.monotonic()
            for connection in list(self._server.connections):
                connection.close_if_idle(now)

    async def close(self, grace: float = 5.0) -> None:
        self._sweeper.cancel()
        self._aserver.close()
        if self._server.tasks:
            await asyncio.wait(list(self._server.tasks), timeout=grace)
        for connection in list(self._server.connections):
            if connection.transport is not None:
                connection.transport.close()
        await self._aserver.wait_closed()


TLSRefused = Callable[[OSError, tuple[Any, ...]], None]


class _TLSAcceptor:
    """Accepts the connections of a TLS listener itself (``sock_accept``, then
    ``connect_accepted_socket``) instead of ``loop.create_server(ssl=…)``, whose failed
    handshakes end in silence (asyncio and uvloop only log them in debug mode): each failed
    handshake is reported to ``on_refused`` with the peer's address. A handshake not done
    within ``handshake_seconds`` fails with ``TimeoutError``. Only connection set-up takes
    this path; the connection then runs as it would have under ``create_server``."""

    def __init__(
        self,
        sockets: list[socket.socket],
        factory: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        on_refused: TLSRefused | None,
        handshake_seconds: float,
    ) -> None:
        self.sockets = sockets
        self._factory = factory
        self._context = context
        self._on_refused = on_refused
        self._handshake_seconds = handshake_seconds
        self._handshakes: set[asyncio.Task[None]] = set()
        self._waiting: set[socket.socket] = set()  # accepted, not yet handed to a transport
        loop = asyncio.get_running_loop()
        self._accepting = [loop.create_task(self._accept(sock)) for sock in sockets]

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(listening)
            except OSError as error:  # out of file descriptors, say: the backlog waits
                log.warning("http.accept-failed", error=repr(error))
                await asyncio.sleep(0.1)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as create_server
            self._waiting.add(sock)
            task = loop.create_task(self._handshake(sock, address))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, address: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        self._waiting.discard(sock)  # the transport owns it from here, and closes it
        try:
            # The loop's own handshake time-out is a margin above ours (its error would be a
            # ConnectionAbortedError, like others).
            async with asyncio.timeout(self._handshake_seconds):
                await loop.connect_accepted_socket(
                    self._factory,
                    sock,
                    ssl=self._context,
                    ssl_handshake_timeout=self._handshake_seconds + 5,
                )
        except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
            if self._on_refused is not None:
                try:
                    self._on_refused(error, address)
                except Exception:  # what reports the refusal must not end the acceptor
                    log.exception("http.tls-refused-report-failed", address=str(address))

    def close(self) -> None:
        for task in (*self._accepting, *self._handshakes):
            task.cancel()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._accepting, *self._handshakes, return_exceptions=True)
        # closed once no task waits on them any more (a cancelled accept lets go of its
        # socket on the loop's next turn); and those accepted but never handed over
        for sock in (*self.sockets, *self._waiting):
            sock.close()
        self._waiting.clear()


async def _listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets on every address of ``host`` (as ``create_server`` binds them)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):  # once each, in order
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    on_tls_refused: TLSRefused | None = None,
    max_head_bytes: int = 64 * 1024,
    max_body_bytes: int,
    keepalive_seconds: float = 75.0,
    request_seconds: float = 60.0,
    backlog: int = 1024,
) -> Listener:
    """Listen on ``host:port`` (0: any free port) and answer each request with ``handler``.

    With ``ssl_context``, renegotiation is turned off on it (``OP_NO_RENEGOTIATION``): a
    connection's client certificate is read once, after the handshake, for all its requests.
    A handshake that fails (a certificate refused, no certificate, not TLS at all, the peer
    gone, or not done within ``request_seconds``) closes the connection and is reported to
    ``on_tls_refused(error, address)``: ``ssl.SSLError`` (``SSLCertVerificationError`` with its
    ``verify_message``), ``TimeoutError``, or another ``OSError`` when the peer went away.
    """
    server = _Server(
        handler,
        max_head_bytes=max_head_bytes,
        max_body_bytes=max_body_bytes,
        keepalive_seconds=keepalive_seconds,
        request_seconds=request_seconds,
    )
    loop = asyncio.get_running_loop()
    if ssl_context is None:
        aserver = await loop.create_server(
            lambda: _ServerConnection(server), host, port, backlog=backlog
        )
        return Listener(server, aserver)
    ssl_context.options |= ssl.OP_NO_RENEGOTIATION
    sockets = await _listening_sockets(host, port, backlog)
    acceptor = _TLSAcceptor(
        sockets, lambda: _ServerConnection(server), ssl_context, on_tls_refused, request_seconds
    )
    return Listener(server, acceptor)


# --- client -----------------------------------------------------------------------------------


class AnswerTooLarge(Exception):
    """The answer's body is larger than the limit the caller gave."""


class _Dropped(ConnectionError):
    """A reused connection closed before any byte of the answer: the request may be sent again."""


class _ClientConnection(asyncio.Protocol):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self._start(False)

    def _start(self, head: bool) -> None:
        self.head_only = head
        self.received = False
        self.status = 0
        self.header_items: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.headers_done = False
        self.delimited = False  # the answer says where it ends (length or chunked)
        self.complete = False
        self.keep_alive = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not self.delimited and not self.head_only:
            self.complete = True  # a close-delimited answer ends here
            waiter.set_result(None)
        elif not self.received:
            waiter.set_exception(_Dropped(f"the connection closed before the answer: {exc!r}"))
        else:
            waiter.set_exception(exc or ConnectionResetError("the connection closed mid-answer"))

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            # httptools wraps what a callback raises: the callback's own error is the context
            if isinstance(error.__context__, AnswerTooLarge):
                self._error(error.__context__)
            else:
                self._error(ConnectionError(f"malformed HTTP answer: {error}"))

    def _error(self, error: BaseException) -> None:
        self.keep_alive = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_items.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.status = self.parser.get_status_code()
        for name, value in self.header_items:
            lowered = name.lower()
            if lowered == "content-length" or (
                lowered == "transfer-encoding" and "chunked" in value.lower()
            ):
                self.delimited = True
        if self.head_only:  # no body follows an answer to HEAD; never reused
            self.complete = True
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.limit:
            raise AnswerTooLarge(f"the answer is larger than {self.limit} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.head_only:
            return
        if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
            self._start(False)
            return
        self.complete = True
        self.keep_alive = bool(self.parser.should_keep_alive())
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Client:
    """Keep-alive HTTP/1.1 connections to other gateways and to provider systems."""

    def __init__(
        self,
        *,
        timeout: float,
        keepalive_seconds: float = 15.0,
        max_idle_per_host: int = 64,
    ) -> None:
        self.timeout = timeout
        self.keepalive_seconds = keepalive_seconds
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[tuple[str, int, int], list[_ClientConnection]] = {}
        self._open: set[_ClientConnection] = set()
        # Answers awaited -> the loop time they time out at, looked at by one timer
        # (``_sweep``) every tenth of the timeout (at most a second): ``asyncio.timeout``
        # around every request (a timer scheduled and cancelled, a context manager) was
        # 3-4 % of a gateway's CPU in py-spy. A request fails at most that much late.
        self._deadlines: dict[asyncio.Future[None], float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweeping: asyncio.AbstractEventLoop | None = None  # the loop of ``_sweeper``
        self._sweep_every = min(1.0, max(0.01, timeout / 10))

    async def request(
        self,
        method: str,
        host: str,
        port: int,
        target: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        ssl_context: ssl.SSLContext | None = None,
        limit: int,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request; its answer's status, header fields and body."""
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {_authority(host, port)}\r\n"]
        for name, value in headers:
            lines.append(f"{name}: {value}\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        if head.count("\n") != len(lines) + 1 or head.count("\r") != len(lines) + 1:
            raise ValueError("a line break inside the request line or a header field")
        message = head.encode("latin-1") + body
        key = (host, port, id(ssl_context) if ssl_context is not None else 0)
        deadline = asyncio.get_running_loop().time() + self.timeout
        for attempt in range(2):
            connection, reused = await self._acquire(key, host, port, ssl_context, limit, deadline)
            try:
                return await self._exchange(connection, message, method == "HEAD", key, deadline)
            except BaseException as error:
                connection.keep_alive = False
                if connection.transport is not None:
                    connection.transport.close()
                self._open.discard(connection)
                retry = isinstance(error, _Dropped) and reused and not attempt
                if not (retry and method in IDEMPOTENT):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(
        self,
        key: tuple[str, int, int],
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        limit: int,
        deadline: float,
    ) -> tuple[_ClientConnection, bool]:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.lost or now - connection.idle_since > self.keepalive_seconds:
                if connection.transport is not None:
                    connection.transport.close()
                self._open.discard(connection)
                continue
            connection.limit = limit
            return connection, True
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline):
            _, connection = await loop.create_connection(
                lambda: _ClientConnection(limit),
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            )
        self._open.add(connection)
        return connection, False

    async def _exchange(
        self,
        connection: _ClientConnection,
        message: bytes,
        head: bool,
        key: tuple[str, int, int],
        deadline: float,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        transport = connection.transport
        if transport is None or connection.lost:
            raise _Dropped("the connection is closed")
        connection._start(head)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        connection.waiter = waiter
        self._deadlines[waiter] = deadline
        if self._sweeper is None or self._sweeping is not loop:  # (a client may outlive a loop)
            self._sweeper, self._sweeping = (
                loop.call_later(self._sweep_every, self._sweep, loop),
                loop,
            )
        try:
            transport.write(message)
            await waiter
        finally:
            connection.waiter = None
            del self._deadlines[waiter]
        answer = (connection.status, connection.header_items, b"".join(connection.body))
        if connection.keep_alive and not connection.lost and not head:
            connection.idle_since = time.monotonic()
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle_per_host:
                idle.append(connection)
                return answer
        transport.close()
        self._open.discard(connection)
        return answer

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the answers awaited past their deadline (``TimeoutError``, as
        ``asyncio.timeout`` raised); look again later while any is awaited."""
        self._sweeper = None
        now = loop.time()
        for waiter, deadline in list(self._deadlines.items()):
            if deadline <= now and not waiter.done():
                waiter.set_exception(TimeoutError("no answer in time"))
        if self._deadlines:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep, loop)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._open):
            if connection.transport is not None:
                connection.transport.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_url(url: str) -> tuple[str, str, int, str]:
    """``http(s)://host[:port][/path][?query]`` → (scheme, host, port, path and query as
    given; ``/`` when there is no path). ``ValueError`` for anything else."""
    parts = urlsplit(url)  # kept by the standard library: the same URLs come again and again
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:100]!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)  # ValueError when malformed
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


def join_url(base: str, path: str, query: str = "") -> tuple[str, str, int, str]:
    """``split_url(base + path + ("?" + query if query else ""))``, with ``base`` (a
    service's base URL: the same few again and again) split once and kept; the rest is
    joined as text when that gives exactly the same answer (``split_url`` otherwise)."""
    suffix = f"?{query}" if query else ""
    scheme, host, port, prefix = _split_base(base)
    if (
        prefix is None  # the base has a query or fragment of its own
        or (path and path[0] != "/")
        or "?" in path
        or not _PLAIN_TAIL.isdisjoint(path)
        or not _PLAIN_TAIL.isdisjoint(query)
    ):
        return split_url(base + path + suffix)
    return scheme, host, port, (prefix + path or "/") + suffix


_PLAIN_TAIL = frozenset("#\t\r\n")  # urlsplit cuts or drops these


@functools.lru_cache(maxsize=256)
def _split_base(base: str) -> tuple[str, str, int, str | None]:
    """(scheme, host, port, path: None when ``base`` has a query or fragment)."""
    scheme, host, port, _ = split_url(base)
    if "?" in base or "#" in base:
        return scheme, host, port, None
    return scheme, host, port, urlsplit(base).path  # the target without its "/" default


def header(items: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive) among ``items``."""
    lowered = name.lower()
    for key, value in items:
        if key.lower() == lowered:
            return value
    return None


__all__ = [
    "AnswerTooLarge",
    "Client",
    "Handler",
    "Headers",
    "Listener",
    "Request",
    "Response",
    "header",
    "serve",
    "split_url",
]
