"""The client proxy: where the member's own information systems call.

``/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path]`` on the gateway's plain-HTTP port.
Refuses a bad path or protocol version, a missing or malformed client identifier
(``X-Road-Client``, else ``Information-Mediator-Client`` or ``X-GovStack-Client``), a client
that is not a subsystem of this gateway's member, another instance without a federation
agreement in force or a service its agreement does not open (a federated service is routed
by the instance part of its id to the peer's gateway, from its shared parameters), an
unknown service, an
outdated configuration and an oversized body; signs the request envelope, logs it (journalled
before it leaves: ``GatewayRuntime.log_now``), sends it to the
provider's gateway (its TLS certificate checked against the configuration), verifies
the signed response (signature, request hash, id, status, body digest), logs it and answers.
``X-Road-Id`` is generated when missing. ``/listClients`` and the metaservices
(``/r1/…/SUBSYSTEM/listMethods|allowedMethods|getOpenAPI``) are answered here
(``jisr.exchange.metaservices``). Shared parts: ``jisr.exchange.proxy``.
"""

from __future__ import annotations

import json
import ssl
import uuid

from jisr.core.crypto import ca
from jisr.core.errors import CertificateRefused, CryptoError, InvalidInput
from jisr.exchange import envelope, metaservices, pubsub
from jisr.exchange.errors import InvalidIdentifier, XRoadFault
from jisr.exchange.gateway import GatewayRuntime, LogRecord
from jisr.exchange.globalconf import GlobalConf, PeerGateway
from jisr.exchange.http1 import AnswerTooLarge, Request, Response, header
from jisr.exchange.identifiers import ServiceId, SubsystemId
from jisr.exchange.proxy import (
    JSON_TYPE,
    OCTETS,
    Call,
    Context,
    check_signing_certificate,
    fault_response,
    parse_target,
    read_body,
    refuse,
)

CLIENT_HEADERS = ("X-Road-Client", "Information-Mediator-Client", "X-GovStack-Client")


async def handle_client(context: Context, request: Request) -> Response:
    runtime = context.runtime
    call = Call(id=(request.headers.get("X-Road-Id") or str(uuid.uuid4()))[:255])
    try:
        if request.raw_path == "/listClients":
            return await _list_clients(request, runtime, call)
        return await _client_call(context, request, call)
    except XRoadFault as fault:
        await refuse(runtime, fault, call, "client")
        return fault_response(fault, call, {})


def _client_id(request: Request, conf: GlobalConf, runtime: GatewayRuntime) -> SubsystemId:
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


def _usable_conf(runtime: GatewayRuntime) -> GlobalConf:
    conf = runtime.usable_conf()
    if conf is None:
        raise XRoadFault(
            "Server.ClientProxy.OutdatedGlobalConf",
            "The global configuration is missing or expired and the registry cannot be reached.",
        )
    return conf


async def _list_clients(request: Request, runtime: GatewayRuntime, call: Call) -> Response:
    conf = _usable_conf(runtime)
    call.service = "listClients"
    listed = metaservices.list_clients(conf, request.query.get("instanceId") or None)
    await _log_meta(runtime, call, 200)
    return Response(
        body=json.dumps(listed).encode("utf-8"),
        headers={"Content-Type": JSON_TYPE, "X-Road-Id": call.id},
    )


async def _log_meta(runtime: GatewayRuntime, call: Call, status: int) -> None:
    await runtime.log(
        "meta",
        {"id": call.id, "status": status},
        actor=call.client,
        subject=call.service,
    )


async def _client_call(context: Context, request: Request, call: Call) -> Response:
    runtime = context.runtime
    service, path = parse_target(request)
    call.service = str(service)
    conf = _usable_conf(runtime)
    client = _client_id(request, conf, runtime)
    call.client = str(client)
    domain = conf  # where the provider's gateway and its certificates are listed
    if service.instance != conf.instance:
        domain = _federated(conf, service, call)
    elif metaservices.is_metaservice(service, path):
        if request.method != "GET":
            raise XRoadFault("Client.BadRequest", f"{service.code} answers GET only.")
        response = await metaservices.answer(
            request, runtime, context.http, conf, call, client=client, target=service
        )
        await _log_meta(runtime, call, response.status)
        return response
    elif pubsub.is_room_call(conf, service, path) and pubsub.is_local(runtime, conf, service):
        return await pubsub.answer_local(
            request, runtime, conf, call, client=client, service=service, path=path
        )
    provider = domain.gateways.get(domain.gateway_of_member.get(str(service.member), ""))
    if provider is None or (
        domain is conf
        and str(service) not in conf.services
        and not pubsub.is_room_call(conf, service, path)  # the room's gateway answers
    ):
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
        runtime.check_certificate(provider.tls_certificate, ca.CertificateUsage.TLS, domain)
    except CertificateRefused as refused:
        raise XRoadFault(
            "Server.ClientProxy.SslAuthenticationFailed",
            f"The TLS certificate of {provider.name} is refused: {refused.detail}",
            reason=runtime.refusal_reason(refused),
        ) from refused
    # A gateway of a federated instance is named with its instance (names are per instance).
    peer_label = provider.name if domain is conf else f"{domain.instance}:{provider.name}"
    body = read_body(request, runtime.settings.exchange_max_body_bytes, "Client.MessageTooLarge")
    query = request.raw_query
    signature = envelope.sign_request(
        runtime.signing_key,
        sender=runtime.name,
        instance=service.instance,  # the instance the message is addressed to
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
    runtime.log_now(  # journalled before it leaves
        LogRecord(
            "request.out",
            {
                "id": call.id,
                "to": peer_label,
                "signature": signature,
                **runtime.body_fields(body, f"request.out:{call.id}"),
            },
            actor=call.client,
            subject=call.service,
        )
    )
    status, headers, answer = await _send(context, request, provider, signature, body, peer_label)
    expected_hash = envelope.request_hash(signature, body)
    answer_signature = header(headers, envelope.SIGNATURE_HEADER)
    if not answer_signature:
        raise XRoadFault(
            "Server.ClientProxy.InvalidSignatureValue", f"{provider.name} sent an unsigned answer."
        )
    try:
        check_signing_certificate(runtime, provider, domain, client_side=True)
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
        or signed.get("error") != header(headers, "X-Road-Error")
    ):
        raise XRoadFault(
            "Server.ClientProxy.InconsistentResponse",
            f"The answer of {provider.name} does not match the request it was sent for.",
        )
    await runtime.log(
        "response.in",
        {
            "id": call.id,
            "from": peer_label,
            "status": status,
            "error": signed.get("error"),
            "request_hash": expected_hash,
            "signature": answer_signature,
            **runtime.body_fields(answer, f"response.in:{call.id}"),
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
    return Response(status, body=answer, headers=out)


def _federated(conf: GlobalConf, service: ServiceId, call: Call) -> GlobalConf:
    """The shared parameters of the instance ``service`` belongs to, when a federation with
    it is in force and its agreement opens ``service`` to this instance; refused otherwise."""
    federated = conf.federations.get(service.instance)
    if federated is None:
        raise XRoadFault(
            "Client.InvalidServiceIdentifier",
            f"Service instance {service.instance} is not {conf.instance}, and no federation "
            "agreement names it.",
        )
    call.facts["federation"] = federated.agreement_id
    if not federated.usable():
        raise XRoadFault(
            "Server.ClientProxy.OutdatedGlobalConf",
            f"The federation with {service.instance} is not in force now (agreement "
            f"{federated.agreement_id} or {service.instance}'s shared parameters expired).",
        )
    if str(service) not in federated.peer_opens:
        raise XRoadFault(
            "Server.ClientProxy.ServiceNotFederated",
            f"Service {service} is not among the services {service.instance} opens to "
            f"{conf.instance} in federation agreement {federated.agreement_id}.",
        )
    return federated.peer


async def _send(
    context: Context,
    request: Request,
    provider: PeerGateway,
    signature: str,
    body: bytes,
    peer_label: str,
) -> tuple[int, list[tuple[str, str]], bytes]:
    runtime = context.runtime
    host, _, port = provider.address.rpartition(":")
    target = request.raw_path
    if request.raw_query:
        target += "?" + request.raw_query
    limit = runtime.settings.exchange_max_body_bytes
    try:
        return await context.client.request(
            request.method,
            host,
            int(port),
            target,
            headers=((envelope.SIGNATURE_HEADER, signature), ("Content-Type", OCTETS)),
            body=body,
            ssl_context=runtime.peer_context(provider),
            limit=limit,
        )
    except AnswerTooLarge as error:
        raise XRoadFault(
            "Server.ClientProxy.InconsistentResponse",
            f"The answer is larger than {limit} bytes.",
        ) from error
    except ssl.SSLError as error:
        raise XRoadFault(
            "Server.ClientProxy.SslAuthenticationFailed",
            f"TLS with {provider.name} failed: {error}",
        ) from error
    except (TimeoutError, OSError, ValueError) as error:
        reason = repr(error)
        fault = "Server.ClientProxy.NetworkError"
        if "SSL" in reason or "certificate" in reason.lower() or "alert" in reason.lower():
            fault = "Server.ClientProxy.SslAuthenticationFailed"
        raise XRoadFault(fault, f"Cannot reach {provider.name}: {reason[:300]}") from error


__all__ = ["CLIENT_HEADERS", "handle_client"]
