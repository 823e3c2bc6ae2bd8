"""The gateway's two listeners: the client proxy (for the member's own information systems)
and the server proxy (for other gateways, over mutual TLS).

A call, end to end::

    client IS --HTTP--> client proxy --mTLS, signed envelope--> server proxy --HTTP--> provider IS
              <-------- (verified)   <----- signed response ---              <--------

Client proxy (``/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path]``):
  refuses a bad path or protocol version, a missing or malformed client identifier
  (``X-Road-Client``, else ``Information-Mediator-Client`` or ``X-GovStack-Client``), a client
  that is not a subsystem of this gateway's member, another instance, an unknown service, an
  outdated configuration and an oversized body; signs the request envelope, logs it, sends it
  to the provider's gateway (its TLS certificate checked against the configuration), verifies
  the signed response (signature, request hash, id, status, body digest), logs it and
  answers. ``X-Road-Id`` is generated when missing.

Server proxy (the same path, on the peer port):
  refuses a TLS certificate that is not a listed gateway's or is revoked/expired, an oversized
  body, a missing or bad signature (or a signing certificate no longer valid), a message that
  differs from its envelope or is too old, a client not of the sending gateway's member, an
  unknown service, a call without access right (service, method, path) and a replayed
  ``X-Road-Id``; logs the request (with the replay guard, in one transaction), forwards it to
  the provider's information system (no redirects followed), signs the response with
  ``X-Road-Request-Hash``, logs it and answers. Every refusal is signed, logged, then sent.
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from yarl import URL

from jisr.core.clock import utcnow
from jisr.core.crypto import ca
from jisr.core.errors import CertificateRefused, CryptoError, InvalidInput
from jisr.exchange import envelope
from jisr.exchange.errors import InvalidIdentifier, XRoadFault
from jisr.exchange.gateway import GatewayRuntime, log
from jisr.exchange.globalconf import GlobalConf, PeerGateway
from jisr.exchange.identifiers import ServiceId, SubsystemId
from jisr.exchange.models import SeenMessage

CLIENT_HEADERS = ("X-Road-Client", "Information-Mediator-Client", "X-GovStack-Client")
RUNTIME: web.AppKey[GatewayRuntime] = web.AppKey("runtime", GatewayRuntime)
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
JSON_TYPE = "application/json; charset=utf-8"
OCTETS = "application/octet-stream"


@dataclass
class Call:
    """What is known of one message so far (for logging and refusals)."""

    id: str
    client: str | None = None
    service: str | None = None
    signature: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _parse_target(request: web.Request) -> tuple[ServiceId, str]:
    """The service id and the path after it, from ``/r1/…`` (percent-encoded parts)."""
    raw = request.rel_url.raw_path
    parts = raw.split("/", 7)
    if len(parts) < 2 or not parts[1]:
        raise XRoadFault("Client.BadRequest", "The request path does not start with /r1/.")
    if parts[1] != "r1":
        raise XRoadFault(
            "Client.InvalidProtocolVersion", f"Protocol version {parts[1][:20]!r} is not r1."
        )
    if len(parts) < 7:
        raise XRoadFault(
            "Client.InvalidServiceIdentifier",
            "The path must be /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path].",
        )
    try:
        decoded = [unquote(p, errors="strict") for p in parts[2:7]]
        service = ServiceId.parse("/".join(decoded))
    except (InvalidIdentifier, InvalidInput, UnicodeDecodeError, ValueError) as error:
        raise XRoadFault(
            "Client.InvalidServiceIdentifier", f"Malformed service identifier: {error}"
        ) from error
    path = "/" + parts[7] if len(parts) == 8 else ""
    return service, path


async def _read_body(request: web.Request, limit: int, fault: str) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise XRoadFault(fault, f"The body is larger than {limit} bytes.")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise XRoadFault(fault, f"The body is larger than {limit} bytes.")
    return body


def _fault_response(fault: XRoadFault, call: Call, headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=fault.status,
        body=json.dumps(fault.body(call.id)).encode("utf-8"),
        headers={
            "Content-Type": JSON_TYPE,
            "X-Road-Error": fault.type,
            "X-Road-Id": call.id,
            **headers,
        },
    )


async def _refuse(runtime: GatewayRuntime, fault: XRoadFault, call: Call, side: str) -> None:
    log.info("exchange.refused", gateway=runtime.name, type=fault.type, id=call.id)
    await runtime.log(
        "refused",
        {
            "side": side,
            "id": call.id,
            "type": fault.type,
            "message": fault.message,
            "client": call.client,
            "service": call.service,
            "signature": call.signature,
            **{k: str(v) for k, v in (call.facts | fault.facts).items()},
        },
        actor=call.client,
        subject=call.service,
    )


def _allowed(conf: GlobalConf, service: str, client: str, method: str, path: str) -> bool:
    for rule_method, pattern in conf.access_rights.get((service, client), []):
        if rule_method not in ("*", method):
            continue
        if pattern == "*" or fnmatch.fnmatchcase(path or "/", pattern):
            return True
    return False


# --- the client proxy ------------------------------------------------------------------------


async def handle_client(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    call = Call(id=(request.headers.get("X-Road-Id") or str(uuid.uuid4()))[:255])
    try:
        return await _client_call(request, runtime, call)
    except XRoadFault as fault:
        await _refuse(runtime, fault, call, "client")
        return _fault_response(fault, call, {})


def _client_id(request: web.Request, conf: GlobalConf, runtime: GatewayRuntime) -> SubsystemId:
    values: list[str] = []
    for name in CLIENT_HEADERS:
        values = request.headers.getall(name, [])
        if values:
            break
    if not values:
        raise XRoadFault("Client.InvalidClientIdentifier", "The X-Road-Client header is missing.")
    try:
        client = SubsystemId.parse(values[-1], percent_encoded=True)  # the last one counts
    except (InvalidIdentifier, InvalidInput, UnicodeDecodeError, ValueError) as error:
        raise XRoadFault("Client.InvalidClientIdentifier", f"Malformed client: {error}") from error
    if client.instance != conf.instance:
        raise XRoadFault(
            "Client.InvalidClientIdentifier",
            f"Client {client} is of instance {client.instance}, this gateway of {conf.instance}.",
        )
    if str(client) not in conf.subsystems or client.member != runtime.member:
        raise XRoadFault(
            "Client.UnknownMember",
            f"Client {client} is not a registered subsystem of {runtime.member}.",
        )
    return client


async def _client_call(request: web.Request, runtime: GatewayRuntime, call: Call) -> web.Response:
    service, path = _parse_target(request)
    call.service = str(service)
    conf = runtime.usable_conf()
    if conf is None:
        raise XRoadFault(
            "Server.ClientProxy.OutdatedGlobalConf",
            "The global configuration is missing or expired and the registry cannot be reached.",
        )
    client = _client_id(request, conf, runtime)
    call.client = str(client)
    if service.instance != conf.instance:
        raise XRoadFault(
            "Client.InvalidServiceIdentifier",
            f"Service instance {service.instance} is not {conf.instance}, and no federation "
            "agreement names it.",
        )
    provider = conf.gateways.get(conf.gateway_of_member.get(str(service.member), ""))
    if str(service) not in conf.services or provider is None:
        raise XRoadFault("Server.ClientProxy.UnknownService", f"Unknown service {service}.")
    try:
        runtime.check_certificate(runtime.tls_certificate, ca.CertificateUsage.TLS, conf)
    except CertificateRefused as refused:
        raise XRoadFault(
            "Server.ClientProxy.SslAuthenticationFailed",
            f"This gateway's own TLS certificate is refused: {refused.detail}",
            reason=runtime.refusal_reason(refused),
        ) from refused
    try:
        runtime.check_certificate(provider.tls_certificate, ca.CertificateUsage.TLS, conf)
    except CertificateRefused as refused:
        raise XRoadFault(
            "Server.ClientProxy.SslAuthenticationFailed",
            f"The TLS certificate of {provider.name} is refused: {refused.detail}",
            reason=runtime.refusal_reason(refused),
        ) from refused
    body = await _read_body(
        request, runtime.settings.exchange_max_body_bytes, "Client.MessageTooLarge"
    )
    query = request.rel_url.raw_query_string
    signature = envelope.sign_request(
        runtime.signing_key,
        sender=runtime.name,
        instance=conf.instance,
        id=call.id,
        client=str(client),
        service=str(service),
        method=request.method,
        path=path,
        query=query,
        user_id=request.headers.get("X-Road-UserId"),
        issue=request.headers.get("X-Road-Issue"),
        headers=envelope.carried_headers(request.headers.items()),
        body=body,
    )
    call.signature = signature
    await runtime.log(
        "request.out",
        {"id": call.id, "to": provider.name, "signature": signature, **runtime.body_fields(body)},
        actor=call.client,
        subject=call.service,
    )
    status, headers, answer = await _send(request, runtime, provider, signature, path, body)
    expected_hash = envelope.request_hash(signature, body)
    answer_signature = headers.get(envelope.SIGNATURE_HEADER)
    if not answer_signature:
        raise XRoadFault(
            "Server.ClientProxy.InvalidSignatureValue", f"{provider.name} sent an unsigned answer."
        )
    try:
        check_signing_certificate(runtime, provider, conf, client_side=True)
        signed = envelope.verify(
            answer_signature,
            jwk=provider.signing_jwk,
            typ=envelope.RESPONSE_TYP,
            body=answer,
            max_skew_seconds=runtime.settings.exchange_max_clock_skew_seconds,
        )
    except CryptoError as error:
        raise XRoadFault(
            "Server.ClientProxy.InvalidSignatureValue",
            f"The answer of {provider.name} does not verify: {error.detail}",
        ) from error
    if (
        signed.get("request_hash") != expected_hash
        or signed.get("id") != call.id
        or signed.get("status") != status
        or signed.get("sender") != provider.name
        or signed.get("error") != headers.get("X-Road-Error")
    ):
        raise XRoadFault(
            "Server.ClientProxy.InconsistentResponse",
            f"The answer of {provider.name} does not match the request it was sent for.",
        )
    await runtime.log(
        "response.in",
        {
            "id": call.id,
            "from": provider.name,
            "status": status,
            "error": signed.get("error"),
            "request_hash": expected_hash,
            "signature": answer_signature,
            **runtime.body_fields(answer),
        },
        actor=call.client,
        subject=call.service,
    )
    out = {name: value for name, value in signed.headers}
    out.update(
        {
            "X-Road-Client": str(client),
            "X-Road-Service": str(service),
            "X-Road-Id": call.id,
            "X-Road-Request-Hash": expected_hash,
        }
    )
    if signed.get("error"):
        out["X-Road-Error"] = str(signed.get("error"))
    return web.Response(status=status, body=answer, headers=out)


async def _send(
    request: web.Request,
    runtime: GatewayRuntime,
    provider: PeerGateway,
    signature: str,
    path: str,
    body: bytes,
) -> tuple[int, dict[str, str], bytes]:
    http = request.app[HTTP]
    query = request.rel_url.raw_query_string
    url = f"https://{provider.address}{request.rel_url.raw_path.split('?')[0]}"
    if query:
        url += "?" + query
    limit = runtime.settings.exchange_max_body_bytes
    try:
        async with http.request(
            request.method,
            URL(url, encoded=True),
            data=body,
            headers={
                envelope.SIGNATURE_HEADER: signature,
                "Content-Type": "application/octet-stream",
            },
            ssl=runtime.peer_context(provider),
            allow_redirects=False,
        ) as response:
            answer = await response.content.read(limit + 1)
            if len(answer) > limit:
                raise XRoadFault(
                    "Server.ClientProxy.InconsistentResponse",
                    f"The answer is larger than {limit} bytes.",
                )
            return response.status, dict(response.headers), answer
    except (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError) as error:
        raise XRoadFault(
            "Server.ClientProxy.SslAuthenticationFailed",
            f"TLS with {provider.name} failed: {error}",
        ) from error
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        reason = repr(error)
        fault = "Server.ClientProxy.NetworkError"
        if "SSL" in reason or "certificate" in reason.lower() or "alert" in reason.lower():
            fault = "Server.ClientProxy.SslAuthenticationFailed"
        raise XRoadFault(fault, f"Cannot reach {provider.name}: {reason[:300]}") from error


def _peer_certificate(transport: Any) -> x509.Certificate | None:
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return x509.load_der_x509_certificate(der) if der else None


def check_signing_certificate(
    runtime: GatewayRuntime, peer: PeerGateway, conf: GlobalConf, *, client_side: bool
) -> None:
    try:
        runtime.check_certificate(peer.signing_certificate, ca.CertificateUsage.SIGNING, conf)
    except CertificateRefused as refused:
        prefix = "Server.ClientProxy" if client_side else "Server.ServerProxy"
        fault = f"{prefix}.InvalidSignatureValue" if client_side else f"{prefix}.CertValidation"
        raise XRoadFault(
            fault,
            f"The signing certificate of {peer.name} is refused: {refused.detail}",
            reason=runtime.refusal_reason(refused),
        ) from refused


# --- the server proxy ------------------------------------------------------------------------


async def handle_peer(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    call = Call(id="")
    try:
        return await _peer_call(request, runtime, call)
    except XRoadFault as fault:
        # Refused before the envelope verified: answer under the id it claims (unverified,
        # for correlation only) and hash what was received, so the sender can match it.
        signature = request.headers.get(envelope.SIGNATURE_HEADER, "")
        call.id = call.id or envelope.claimed_id(signature) or str(uuid.uuid4())
        call.signature = call.signature or signature or None
        body = call.facts.pop("_body", None)
        if body is None and fault.type != "Server.ServerProxy.MessageTooLarge":
            try:
                body = await request.content.read(runtime.settings.exchange_max_body_bytes + 1)
            except (OSError, aiohttp.ClientPayloadError):
                body = b""
        await _refuse(runtime, fault, call, "server")
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
        return _fault_response(
            fault,
            call,
            {envelope.SIGNATURE_HEADER: signed, "X-Road-Request-Hash": request_hash},
        )


def _sender(request: web.Request, runtime: GatewayRuntime, conf: GlobalConf) -> PeerGateway:
    peer = _peer_certificate(request.transport)
    sender = conf.gateway_by_tls_certificate(peer.public_bytes(Encoding.DER)) if peer else None
    if peer is None or sender is None:
        raise XRoadFault(
            "Server.ServerProxy.SslAuthenticationFailed",
            "The TLS client certificate is not the certificate of any gateway of the instance.",
        )
    try:
        runtime.check_certificate(peer, ca.CertificateUsage.TLS, conf)
    except CertificateRefused as refused:
        raise XRoadFault(
            "Server.ServerProxy.SslAuthenticationFailed",
            f"The TLS certificate of {sender.name} is refused: {refused.detail}",
            reason=runtime.refusal_reason(refused),
            peer=sender.name,
        ) from refused
    return sender


async def _peer_call(request: web.Request, runtime: GatewayRuntime, call: Call) -> web.Response:
    conf = runtime.usable_conf()
    if conf is None:
        raise XRoadFault(
            "Server.ServerProxy.OutdatedGlobalConf",
            "The provider's global configuration is missing or expired.",
        )
    sender = _sender(request, runtime, conf)
    call.facts["peer"] = sender.name
    service, path = _parse_target(request)
    call.service = str(service)
    body = await _read_body(
        request, runtime.settings.exchange_max_body_bytes, "Server.ServerProxy.MessageTooLarge"
    )
    call.facts["_body"] = body
    signature = request.headers.get(envelope.SIGNATURE_HEADER)
    if not signature:
        raise XRoadFault("Server.ServerProxy.MissingSignature", "The request is not signed.")
    call.signature = signature
    check_signing_certificate(runtime, sender, conf, client_side=False)
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
        or signed.get("query") != request.rel_url.raw_query_string
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
    if str(client) not in conf.subsystems or str(client.member) != sender.member:
        raise XRoadFault(
            "Server.ServerProxy.UnknownMember",
            f"Client {client} is not a subsystem of {sender.member}, whose gateway sent it.",
        )
    base_url = conf.services.get(str(service))
    if base_url is None or service.member != runtime.member:
        raise XRoadFault(
            "Server.ServerProxy.UnknownService", f"This gateway provides no service {service}."
        )
    if not _allowed(conf, str(service), str(client), request.method, path):
        raise XRoadFault(
            "Server.ServerProxy.AccessDenied",
            f"Client {client} has no access right to {request.method} {path or '/'} of {service}.",
        )
    request_hash = envelope.request_hash(signature, body)

    def remember(session: Session) -> None:
        session.add(SeenMessage(client=str(client), message_id=call.id, seen_at=utcnow()))
        session.flush()

    try:
        await runtime.log(
            "request.in",
            {
                "id": call.id,
                "from": sender.name,
                "signature": signature,
                **runtime.body_fields(body),
            },
            actor=call.client,
            subject=call.service,
            before=remember,
        )
    except IntegrityError as error:
        raise XRoadFault(
            "Server.ServerProxy.DuplicateMessageId",
            f"Message id {call.id} of {client} was already received (replay refused).",
        ) from error
    status, headers, answer = await _forward(request, runtime, signed, base_url, path, body)
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
    await runtime.log(
        "response.out",
        {
            "id": call.id,
            "to": sender.name,
            "status": status,
            "request_hash": request_hash,
            "signature": answer_signature,
            **runtime.body_fields(answer),
        },
        actor=call.client,
        subject=call.service,
    )
    return web.Response(
        status=status,
        body=answer,
        headers={
            envelope.SIGNATURE_HEADER: answer_signature,
            "X-Road-Request-Hash": request_hash,
            "X-Road-Id": call.id,
        },
    )


async def _forward(
    request: web.Request,
    runtime: GatewayRuntime,
    signed: envelope.Envelope,
    base_url: str,
    path: str,
    body: bytes,
) -> tuple[int, list[list[str]], bytes]:
    url = base_url + path
    if signed.get("query"):
        url += "?" + str(signed.get("query"))
    headers = [(name, value) for name, value in signed.headers]
    for name, key in (
        ("X-Road-Client", "client"),
        ("X-Road-Service", "service"),
        ("X-Road-Id", "id"),
        ("X-Road-UserId", "user_id"),
        ("X-Road-Issue", "issue"),
    ):
        if signed.get(key):
            headers.append((name, str(signed.get(key))))
    limit = runtime.settings.exchange_max_body_bytes
    try:
        async with request.app[HTTP].request(
            request.method,
            URL(url, encoded=True),
            data=body if body else None,
            headers=headers,
            allow_redirects=False,
        ) as response:
            answer = await response.content.read(limit + 1)
            if len(answer) > limit:
                raise XRoadFault(
                    "Server.ServerProxy.ServiceFailed", "The service's answer is too large."
                )
            carried = envelope.carried_headers(response.headers.items())
            return response.status, carried, answer
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise XRoadFault(
            "Server.ServerProxy.ServiceFailed", f"The service did not answer: {error!r}"[:300]
        ) from error
