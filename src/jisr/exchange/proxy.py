"""The gateway's two listeners, and what they share.

A call, end to end::

    client IS --HTTP--> client proxy --mTLS, signed envelope--> server proxy --HTTP--> provider IS
              <-------- (verified)   <----- signed response ---              <--------

``jisr.exchange.client_proxy`` (for the member's own information systems) and
``jisr.exchange.server_proxy`` (for other gateways, over mutual TLS) each hold one side; this
module holds the parts both use: what both listeners are given (``Context``), what is known of
a message (``Call``), parsing ``/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE[/path]``, reading a
bounded body, the X-Road error response, logging a refusal, and checking a peer's signing
certificate.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp

from jisr.core.crypto import ca
from jisr.core.errors import CertificateRefused, InvalidInput
from jisr.exchange.errors import InvalidIdentifier, XRoadFault
from jisr.exchange.gateway import GatewayRuntime, log
from jisr.exchange.globalconf import GlobalConf, PeerGateway
from jisr.exchange.http1 import Client, Request, Response
from jisr.exchange.identifiers import ServiceId

JSON_TYPE = "application/json; charset=utf-8"
OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Context:
    """What both listeners of a gateway work with."""

    runtime: GatewayRuntime
    client: Client  # the hot path: other gateways and provider systems (``jisr.exchange.http1``)
    http: aiohttp.ClientSession  # off it: OpenAPI documents (metaservices)


@dataclass
class Call:
    """What is known of one message so far (for logging and refusals)."""

    id: str
    client: str | None = None
    service: str | None = None
    signature: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def parse_target(request: Request) -> tuple[ServiceId, str]:
    """The service id and the path after it, from ``/r1/…`` (percent-encoded parts)."""
    raw = request.raw_path
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
        service = _service_of(tuple(parts[2:7]))
    except (InvalidIdentifier, InvalidInput, UnicodeDecodeError, ValueError) as error:
        raise XRoadFault(
            "Client.InvalidServiceIdentifier", f"Malformed service identifier: {error}"
        ) from error
    path = "/" + parts[7] if len(parts) == 8 else ""
    return service, path


@functools.lru_cache(maxsize=4096)
def _service_of(raw_parts: tuple[str, ...]) -> ServiceId:
    """The service named by the five percent-encoded parts (kept: a few services are
    called over and over; a refusal is never kept)."""
    return ServiceId.parse("/".join(unquote(p, errors="strict") for p in raw_parts))


def read_body(request: Request, limit: int, fault: str) -> bytes:
    """The request's body; ``fault`` when it is larger than ``limit`` (the listener read no
    more than its own limit, the same setting, and dropped the rest)."""
    if request.too_large or len(request.body) > limit:
        raise XRoadFault(fault, f"The body is larger than {limit} bytes.")
    return request.body


def fault_response(fault: XRoadFault, call: Call, headers: dict[str, str]) -> Response:
    return Response(
        status=fault.status,
        body=json.dumps(fault.body(call.id)).encode("utf-8"),
        headers={
            "Content-Type": JSON_TYPE,
            "X-Road-Error": fault.type,
            "X-Road-Id": call.id,
            **headers,
        },
    )


async def refuse(runtime: GatewayRuntime, fault: XRoadFault, call: Call, side: str) -> None:
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


__all__ = [
    "JSON_TYPE",
    "OCTETS",
    "Call",
    "Context",
    "check_signing_certificate",
    "fault_response",
    "parse_target",
    "read_body",
    "refuse",
]
