"""Service metadata (GovStack IM Directory API; X-Road's service metadata protocol for REST).

A member's information system asks its own gateway's client proxy:

* ``GET /listClients[?instanceId=MA]`` — the members and subsystems (GovStack: applications)
  of the instance, with their names;
* ``GET /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/listMethods[?serviceId=CODE]`` — the services of a
  provider subsystem and their endpoints (from the OpenAPI document registered for each; a
  service without one has the single endpoint ``* *``);
* ``GET /r1/…/SUBSYSTEM/allowedMethods[?serviceId=CODE]`` — the same, only those the calling
  client (``X-Road-Client`` or its GovStack aliases) may call, the endpoints being its access
  rights (method and path pattern), as X-Road does;
* ``GET /r1/…/SUBSYSTEM/getOpenAPI?serviceCode=CODE`` — the service's OpenAPI document.

Everything comes from the signed global configuration the gateway holds (the provider's
gateway would answer from the same data, so the call does not travel further); the OpenAPI
document is downloaded from the registry (``/exchange/services/<id>/openapi``) and accepted
only when its SHA-256 is the one the configuration lists, then kept in memory. Responses are
JSON in the GovStack shapes (``{"member": [...]}`` lists, camelCase fields). A metaservice
call is logged (``meta``) like any other; its refusals are X-Road errors.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import aiohttp

from jisr.exchange.errors import InvalidIdentifier, XRoadFault
from jisr.exchange.gateway import GatewayRuntime
from jisr.exchange.globalconf import GlobalConf, openapi_sha256
from jisr.exchange.http1 import Request, Response
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId
from jisr.exchange.proxy import JSON_TYPE, Call
from jisr.exchange.service import METASERVICES

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE = re.compile(r"\{[^}/]*\}")
_documents: dict[str, str] = {}  # SHA-256 -> document (immutable by construction)


def list_clients(conf: GlobalConf, instance: str | None = None) -> dict[str, Any]:
    """GovStack ``restClientDetailsListType``: members, then subsystems (``APPLICATION``);
    of a federated ``instance``, those its shared parameters list."""
    if instance not in (None, conf.instance):
        federated = conf.federations.get(instance or "")
        if federated is None or not federated.usable():
            return {"member": []}  # another instance, not federated: its clients are unknown
        conf = federated.peer  # its members and subsystems, from its shared parameters
    clients: list[dict[str, Any]] = []
    for member_text, name in sorted(conf.member_names.items()):
        member = MemberId.parse(member_text)
        clients.append({"name": name, "id": _id("MEMBER", member.instance, member)})
    for subsystem_text in sorted(conf.subsystems):
        subsystem = SubsystemId.parse(subsystem_text)
        name = conf.member_names.get(str(subsystem.member), "")
        ident = _id("APPLICATION", subsystem.instance, subsystem.member)
        clients.append({"name": name, "id": ident | {"applicationCode": subsystem.code}})
    return {"member": clients}


def _id(kind: str, instance: str, member: MemberId) -> dict[str, str]:
    return {
        "objectType": kind,
        "instanceId": instance,
        "memberClass": member.member_class,
        "memberCode": member.code,
    }


def endpoints_of(document: str | None) -> list[dict[str, str]]:
    """``{method, path}`` of every operation of a JSON OpenAPI document (``{x}`` → ``*``);
    ``* *`` without a document, or when it is not JSON."""
    try:
        paths = json.loads(document)["paths"] if document else None
    except (ValueError, KeyError, TypeError):
        paths = None
    if not isinstance(paths, dict):
        return [{"method": "*", "path": "*"}]
    found = []
    for path, operations in paths.items():
        if not isinstance(operations, dict):
            continue
        for method in _HTTP_METHODS:
            if method in operations:
                found.append({"method": method.upper(), "path": _TEMPLATE.sub("*", str(path))})
    return found


def _services_of(conf: GlobalConf, provider: SubsystemId, code: str | None) -> list[ServiceId]:
    found = []
    for text in sorted(conf.services):
        service = ServiceId.parse(text)
        if service.subsystem == provider and code in (None, service.code, text):
            found.append(service)
    return found


def _details(
    service: ServiceId, has_document: bool, endpoints: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "objectType": "SERVICE",
        "serviceType": "OPENAPI" if has_document else "REST",
        "instanceId": service.instance,
        "memberClass": service.member_class,
        "memberCode": service.member_code,
        "applicationCode": service.subsystem_code,
        "serviceCode": service.code,
        "endpointList": {"member": endpoints},
    }


async def _document(runtime: GatewayRuntime, http: aiohttp.ClientSession, service: str) -> str:
    expected = runtime.conf.openapi_hashes.get(service) if runtime.conf else None
    if expected is None:
        raise XRoadFault(
            "Server.ClientProxy.ServiceDescriptionNotFound",
            f"Service {service} has no OpenAPI description.",
        )
    cached = _documents.get(expected)
    if cached is not None:
        return cached
    url = f"{runtime.registry_url}/exchange/services/{quote(service, safe='/')}/openapi"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            text = (await response.read()).decode("utf-8")
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError, UnicodeDecodeError) as error:
        raise XRoadFault(
            "Server.ClientProxy.NetworkError", f"The registry cannot be reached: {error!r}"[:300]
        ) from error
    if status != 200 or openapi_sha256(text) != expected:
        raise XRoadFault(
            "Server.ClientProxy.ServiceDescriptionNotFound",
            f"The registry did not give the OpenAPI description of {service} the configuration "
            "lists.",
        )
    _documents[expected] = text
    return text


async def answer(
    request: Request,
    runtime: GatewayRuntime,
    http: aiohttp.ClientSession,
    conf: GlobalConf,
    call: Call,
    *,
    client: SubsystemId,
    target: ServiceId,
) -> Response:
    """``target`` names the provider subsystem and, as its code, the metaservice."""
    provider = target.subsystem
    name = target.code
    if str(provider) not in conf.subsystems:
        raise XRoadFault("Server.ClientProxy.UnknownService", f"Unknown provider {provider}.")
    query = request.query
    if name == "getOpenAPI":
        code = query.get("serviceCode", "")
        try:
            service = ServiceId.parse(f"{provider}/{code}")
        except InvalidIdentifier as error:
            raise XRoadFault(
                "Client.BadRequest", f"serviceCode is missing or malformed: {error.detail}"
            ) from error
        if str(service) not in conf.services:
            raise XRoadFault("Server.ClientProxy.UnknownService", f"Unknown service {service}.")
        text = await _document(runtime, http, str(service))
        media = JSON_TYPE if text.lstrip().startswith("{") else "text/yaml; charset=utf-8"
        return _respond(call, text.encode("utf-8"), media)
    services = []
    for service in _services_of(conf, provider, query.get("serviceId") or None):
        has_document = str(service) in conf.openapi_hashes
        if name == "allowedMethods":
            rules = conf.access_rights.get((str(service), str(client)), [])
            if not rules:
                continue
            endpoints = [{"method": method, "path": path} for method, path in rules]
        else:
            listed = await _document(runtime, http, str(service)) if has_document else None
            endpoints = endpoints_of(listed)
        services.append(_details(service, has_document, endpoints))
    return _respond(call, json.dumps({"member": services}).encode("utf-8"), JSON_TYPE)


def _respond(call: Call, body: bytes, media: str) -> Response:
    return Response(
        body=body,
        headers={"Content-Type": media, "X-Road-Id": call.id, "X-Road-Client": call.client or ""},
    )


def is_metaservice(target: ServiceId, path: str) -> bool:
    return not path and target.code in METASERVICES


__all__ = ["answer", "endpoints_of", "is_metaservice", "list_clients"]
