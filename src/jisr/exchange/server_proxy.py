"""The server proxy: where other gateways call, over mutual TLS.

The same ``/r1/…`` path, on the gateway's peer port. Refuses a TLS certificate that is not a
listed gateway's (of this instance, or of a federated one whose federation is in force) or is
revoked/expired, a federated client's call to a service the agreement does not open, an
oversized body, a missing or bad signature (or a signing certificate no longer valid), a
message that differs from its envelope or is too old, a client not of the sending gateway's
member, an unknown service, a call without access right (service, method, path) and a
replayed ``X-Road-Id`` (the replay guard: ``GatewayRuntime.first_sight``, across restarts);
forwards the request to the provider's information system (no redirects followed), signs the
response with ``X-Road-Request-Hash``, logs and answers. The request's record (with its
replay-guard row) is logged (journalled: ``GatewayRuntime.log_now``) before a write or a
pub/sub room call goes on; a read's is logged with its answer's, in one write, all or none,
before the answer leaves (docs/exchange.md, Message log). Every refusal is signed, logged,
then sent. Shared parts: ``jisr.exchange.proxy``; HTTP: ``jisr.exchange.http1``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import ssl
import uuid
from collections import Counter
from typing import Any

from jisr.core.crypto import ca
from jisr.core.errors import CertificateRefused, CryptoError
from jisr.exchange import envelope, pubsub
from jisr.exchange.errors import InvalidIdentifier, XRoadFault
from jisr.exchange.gateway import GatewayRuntime, LogRecord, log
from jisr.exchange.globalconf import Federation, GlobalConf, PeerGateway
from jisr.exchange.http1 import AnswerTooLarge, Request, Response, join_url
from jisr.exchange.identifiers import SubsystemId
from jisr.exchange.proxy import (
    JSON_TYPE,
    Call,
    Context,
    check_signing_certificate,
    fault_response,
    parse_target,
    read_body,
    refuse,
)


def _allowed(conf: GlobalConf, service: str, client: str, method: str, path: str) -> bool:
    for rule_method, pattern in conf.access_rights.get((service, client), []):
        if rule_method not in ("*", method):
            continue
        if pattern == "*" or fnmatch.fnmatchcase(path or "/", pattern):
            return True
    return False


async def handle_peer(context: Context, request: Request) -> Response:
    runtime = context.runtime
    call = Call(id="")
    try:
        return await _peer_call(context, request, call)
    except XRoadFault as fault:
        # Refused before the envelope verified: answer under the id it claims (unverified,
        # for correlation only) and hash what was received, so the sender can match it.
        signature = request.headers.get(envelope.SIGNATURE_HEADER) or ""
        call.id = call.id or envelope.claimed_id(signature) or str(uuid.uuid4())
        call.signature = call.signature or signature or None
        body = call.facts.pop("_body", None)
        if body is None and not request.too_large:
            body = request.body
        await refuse(runtime, fault, call, "server")
        request_hash = envelope.request_hash(signature, body or b"")
        signed = envelope.sign_response(
            runtime.signing_key,
            sender=runtime.name,
            id=call.id,
            request_hash=request_hash,
            status=fault.status,
            error=fault.type,
            headers=[["content-type", JSON_TYPE]],
            body=json.dumps(fault.body(call.id)).encode("utf-8"),
        )
        return fault_response(
            fault,
            call,
            {envelope.SIGNATURE_HEADER: signed, "X-Road-Request-Hash": request_hash},
        )


def _sender(
    request: Request, runtime: GatewayRuntime, conf: GlobalConf
) -> tuple[PeerGateway, Federation | None]:
    """The sending gateway, by its TLS client certificate: one of this instance's, or of a
    federated instance (then with its federation, which must be in force)."""
    peer = request.peer_certificate()
    sender = conf.gateway_by_tls_certificate(peer) if peer else None
    federated: Federation | None = None
    if sender is None and peer:
        found = conf.federated_gateway(peer)
        if found is not None:
            sender, federated = found
    if sender is None:
        raise XRoadFault(
            "Server.ServerProxy.SslAuthenticationFailed",
            "The TLS client certificate is not the certificate of any gateway of the instance "
            "or of an instance it federates with.",
        )
    domain = conf
    if federated is not None:
        if not federated.usable():
            raise XRoadFault(
                "Server.ServerProxy.OutdatedGlobalConf",
                f"The federation with {federated.instance} is not in force now (agreement "
                f"{federated.agreement_id} or its shared parameters expired).",
                peer=f"{federated.instance}:{sender.name}",
            )
        domain = federated.peer
    try:
        # The listed certificate has exactly the presented DER, and is parsed once per
        # configuration instead of once per request.
        runtime.check_certificate(sender.tls_certificate, ca.CertificateUsage.TLS, domain)
    except CertificateRefused as refused:
        raise XRoadFault(
            "Server.ServerProxy.SslAuthenticationFailed",
            f"The TLS certificate of {sender.name} is refused: {refused.detail}",
            reason=runtime.refusal_reason(refused),
            peer=sender.name,
        ) from refused
    return sender, federated


async def _peer_call(context: Context, request: Request, call: Call) -> Response:
    runtime = context.runtime
    conf = runtime.usable_conf()
    if conf is None:
        raise XRoadFault(
            "Server.ServerProxy.OutdatedGlobalConf",
            "The provider's global configuration is missing or expired.",
        )
    sender, federated = _sender(request, runtime, conf)
    domain = conf if federated is None else federated.peer  # where the sender is listed
    call.facts["peer"] = sender.name if federated is None else f"{domain.instance}:{sender.name}"
    if federated is not None:
        call.facts["federation"] = federated.agreement_id
    service, path = parse_target(request)
    call.service = str(service)
    body = read_body(
        request, runtime.settings.exchange_max_body_bytes, "Server.ServerProxy.MessageTooLarge"
    )
    call.facts["_body"] = body
    signature = request.headers.get(envelope.SIGNATURE_HEADER)
    if not signature:
        raise XRoadFault("Server.ServerProxy.MissingSignature", "The request is not signed.")
    call.signature = signature
    check_signing_certificate(runtime, sender, domain, client_side=False)
    try:
        signed = envelope.verify(
            signature,
            jwk=sender.signing_jwk,
            typ=envelope.REQUEST_TYP,
            body=body,
            max_skew_seconds=runtime.settings.exchange_max_clock_skew_seconds,
        )
    except CryptoError as error:
        raise XRoadFault(
            "Server.ServerProxy.InvalidSignatureValue",
            f"The request signature of {sender.name} does not verify: {error.detail}",
        ) from error
    call.id = str(signed.get("id") or "")[:255]
    call.client = str(signed.get("client") or "")[:300] or None
    if (
        signed.get("sender") != sender.name
        or signed.get("instance") != conf.instance
        or signed.get("service") != str(service)
        or signed.get("method") != request.method
        or signed.get("path") != path
        or signed.get("query") != request.raw_query
        or not call.id
    ):
        raise XRoadFault(
            "Server.ServerProxy.InvalidMessage",
            "The request differs from its signed envelope (sender, instance, service, method, "
            "path or query).",
        )
    try:
        client = SubsystemId.parse(str(signed.get("client")))
    except InvalidIdentifier as error:
        raise XRoadFault("Server.ServerProxy.UnknownMember", f"Bad client: {error}") from error
    if (
        str(client) not in domain.subsystems
        or str(client.member) != sender.member
        or client.instance != domain.instance
    ):
        raise XRoadFault(
            "Server.ServerProxy.UnknownMember",
            f"Client {client} is not a subsystem of {sender.member}, whose gateway sent it.",
        )
    if federated is not None and str(service) not in federated.opens:
        raise XRoadFault(
            "Server.ServerProxy.ServiceNotFederated",
            f"Service {service} is not among the services {conf.instance} opens to "
            f"{federated.instance} in federation agreement {federated.agreement_id}.",
        )
    room = pubsub.is_room_call(conf, service, path)  # pub/sub: the broker answers, below
    base_url = conf.services.get(str(service))
    if (base_url is None and not room) or service.member != runtime.member:
        raise XRoadFault(
            "Server.ServerProxy.UnknownService", f"This gateway provides no service {service}."
        )
    if not room and not _allowed(conf, str(service), str(client), request.method, path):
        raise XRoadFault(
            "Server.ServerProxy.AccessDenied",
            f"Client {client} has no access right to {request.method} {path or '/'} of {service}.",
        )
    request_hash = envelope.request_hash(signature, body)
    if not runtime.first_sight(str(client), call.id):
        raise _replayed(call, client)
    received = LogRecord(
        "request.in",
        {
            "id": call.id,
            "from": call.facts["peer"],
            "signature": signature,
            **runtime.body_fields(body, f"request.in:{call.id}"),
        },
        actor=call.client,
        subject=call.service,
        seen=(str(client), call.id),  # the replay guard's row, written with the record
    )
    read = not room and request.method in READ_ONLY
    if not read:
        # A call that may change something at the provider (a write, or a pub/sub room's
        # state) goes on only once its record (and replay-guard row) is logged.
        runtime.log_now(received)
    try:
        if room:
            await runtime.flush()  # the broker's records follow this call's in the chain
            status, headers, answer = await pubsub.answer_signed(
                runtime,
                conf,
                call_id=call.id,
                client=client,
                service=service,
                method=request.method,
                path=path,
                body=body,
                peer=str(call.facts["peer"]),
            )
        else:
            status, headers, answer = await _forward(
                context, request, signed, base_url or "", path, body
            )
    except XRoadFault:
        if read:  # the request's record first, then the refusal's
            runtime.log_now(received)
        raise
    answer_signature = envelope.sign_response(
        runtime.signing_key,
        sender=runtime.name,
        id=call.id,
        request_hash=request_hash,
        status=status,
        error=None,
        headers=headers,
        body=answer,
    )
    answered = LogRecord(
        "response.out",
        {
            "id": call.id,
            "to": call.facts["peer"],
            "status": status,
            "request_hash": request_hash,
            "signature": answer_signature,
            **runtime.body_fields(answer, f"response.out:{call.id}"),
        },
        actor=call.client,
        subject=call.service,
    )
    # A read changes nothing at the provider, and what it reads leaves this gateway only in
    # the answer: its request's record is logged with the answer's, in one write (all or
    # none), before the answer leaves.
    if read:
        runtime.log_now(received, answered)
    else:
        runtime.log_now(answered)
    return Response(
        status,
        body=answer,
        headers={
            envelope.SIGNATURE_HEADER: answer_signature,
            "X-Road-Request-Hash": request_hash,
            "X-Road-Id": call.id,
        },
    )


READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def _replayed(call: Call, client: SubsystemId) -> XRoadFault:
    return XRoadFault(
        "Server.ServerProxy.DuplicateMessageId",
        f"Message id {call.id} of {client} was already received (replay refused).",
    )


_FORWARDED = (  # (header to the provider's system, envelope field)
    ("X-Road-Client", "client"),
    ("X-Road-Service", "service"),
    ("X-Road-Id", "id"),
    ("X-Road-UserId", "user_id"),
    ("X-Road-Issue", "issue"),
)


async def _forward(
    context: Context,
    request: Request,
    signed: envelope.Envelope,
    base_url: str,
    path: str,
    body: bytes,
) -> tuple[int, list[list[str]], bytes]:
    runtime = context.runtime
    payload = signed.payload
    headers = signed.headers  # a new list
    for name, key in _FORWARDED:
        value = payload.get(key)
        if value:
            headers.append((name, str(value)))
    limit = runtime.settings.exchange_max_body_bytes
    try:
        scheme, host, port, target = join_url(base_url, path, str(payload.get("query") or ""))
        status, answer_headers, answer = await context.client.request(
            request.method,
            host,
            port,
            target,
            headers=headers,
            body=body,
            ssl_context=runtime.service_context() if scheme == "https" else None,
            limit=limit,
        )
    except AnswerTooLarge as error:
        raise XRoadFault(
            "Server.ServerProxy.ServiceFailed", "The service's answer is too large."
        ) from error
    except (TimeoutError, OSError, ValueError) as error:
        raise XRoadFault(
            "Server.ServerProxy.ServiceFailed", f"The service did not answer: {error!r}"[:300]
        ) from error
    return status, envelope.carried_headers(answer_headers), answer


# --- refused TLS handshakes ---------------------------------------------------------------------

TLS_REFUSED = "Server.ServerProxy.SslAuthenticationFailed"


def handshake_reason(error: OSError) -> tuple[str, str] | None:
    """Why a handshake on the peer port failed, as (reason, detail); None when the peer went
    away (closed or reset the connection: its own decision, e.g. it refused this gateway's
    certificate, and logged on its side; or a port probe), which is not a refusal here."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return "CERTIFICATE_VERIFY_FAILED", str(error.verify_message or error)
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return None
    if isinstance(error, ssl.SSLError):
        return str(error.reason or "SSL_ERROR"), str(error)
    if isinstance(error, TimeoutError):
        return "HANDSHAKE_TIMEOUT", "the TLS handshake was not done in time"
    return None


class HandshakeRefusals:
    """Logs the TLS handshakes the peer port refuses (``http1.serve``'s ``on_tls_refused``):
    a certificate of no CA the gateway trusts, expired or otherwise unverifiable, no
    certificate, something that is not TLS, a handshake not done in time. These never reach
    HTTP, so no X-Road error can be answered; each is a ``refused`` record of type
    ``Server.ServerProxy.SslAuthenticationFailed`` with the reason and the peer's address.

    At most ``per_second`` are logged one by one in a second (a flood of handshakes must not
    flood the log): beyond that they are counted by reason, and the count is logged as one
    record when the second ends."""

    def __init__(self, runtime: GatewayRuntime, per_second: int = 10) -> None:
        self.runtime = runtime
        self.per_second = per_second
        self._window_ends = 0.0
        self._logged = 0
        self._held: Counter[str] = Counter()
        self._summary: asyncio.TimerHandle | None = None

    def __call__(self, error: OSError, address: tuple[Any, ...]) -> None:
        found = handshake_reason(error)
        peer = _address(address)
        if found is None:
            log.debug("exchange.tls-peer-left", gateway=self.runtime.name, address=peer)
            return
        reason, detail = found
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._window_ends:
            self._window_ends, self._logged = now + 1.0, 0
        if self._logged < self.per_second:
            self._logged += 1
            log.info("exchange.tls-refused", gateway=self.runtime.name, reason=reason, address=peer)
            self._write(f"The TLS handshake was refused: {detail}", reason=reason, address=peer)
            return
        # counted: the process log (like the message log) is not flooded either
        log.debug("exchange.tls-refused", gateway=self.runtime.name, reason=reason, address=peer)
        self._held[reason] += 1
        if self._summary is None:
            self._summary = loop.call_at(self._window_ends, self._write_held)

    def _write_held(self) -> None:
        self._summary = None
        held, self._held = self._held, Counter()
        total = sum(held.values())
        if total:
            log.warning("exchange.tls-refused-many", gateway=self.runtime.name, counts=dict(held))
            self._write(
                f"{total} more TLS handshakes were refused within a second (counted by reason, "
                "not logged one by one).",
                reason="MANY",
                counts=dict(held),
            )

    def _write(self, message: str, **facts: Any) -> None:
        try:
            self.runtime.log_now(
                LogRecord(
                    "refused",
                    {
                        "side": "server",
                        "id": str(uuid.uuid4()),
                        "type": TLS_REFUSED,
                        "message": message,
                        **facts,
                    },
                )
            )
        except (OSError, RuntimeError) as error:  # the journal cannot be written, or is closed
            log.error(
                "exchange.tls-refused-not-logged", gateway=self.runtime.name, error=repr(error)
            )

    def close(self) -> None:
        """Log what is counted now (the gateway stops)."""
        if self._summary is not None:
            self._summary.cancel()
            self._write_held()


def _address(address: tuple[Any, ...]) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


__all__ = ["HandshakeRefusals", "handle_peer", "handshake_reason"]
