"""The registry's services: members, subsystems, services, gateways and access rights.

Typed functions, ``session`` first, keyword-only arguments after; they ``flush()`` and raise
the block's errors. Each change is a security-relevant act and is appended to the registry
node's ``security`` audit chain (pass the node's checkpoint ``signer`` so checkpoints get
signed). What they write is published to gateways by the signed global configuration
(``jisr.exchange.globalconf``).

Access rights name a service, a client subsystem, a method (``*`` for any) and a path
pattern matched against the path after the service code (``*`` for any; ``*`` in a pattern
matches any characters, ``/`` included; ``/births/*`` matches ``/births/42``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core.audit import service as audit
from jisr.core.clock import utcnow
from jisr.core.i18n import _
from jisr.exchange.errors import (
    AccessRightAlreadyGranted,
    AccessRightNotFound,
    ExchangeError,
    GatewayAlreadyExists,
    GatewayNotFound,
    MemberAlreadyExists,
    MemberNotFound,
    ServiceAlreadyExists,
    ServiceDescriptionNotFound,
    ServiceNotFound,
    SubsystemAlreadyExists,
    SubsystemNotFound,
)
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId
from jisr.exchange.models import AccessRight, Gateway, Member, Service, Subsystem

SECURITY_CHAIN = "security"
# Service codes the gateways answer themselves (the service metadata protocol for REST).
METASERVICES = ("listMethods", "allowedMethods", "getOpenAPI")
METHODS = ("*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PATH_PATTERN = re.compile(r"^(\*|/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$")


@dataclass(frozen=True)
class MemberInfo:
    id: str
    name: str


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    base_url: str
    has_openapi: bool


@dataclass(frozen=True)
class GatewayInfo:
    name: str
    member: str
    address: str
    tls_certificate: str
    signing_certificate: str


@dataclass(frozen=True)
class AccessRightInfo:
    service: str
    client: str
    method: str
    path: str


def _log(
    session: Session, event: str, data: dict[str, Any], signer: audit.CheckpointSigner | None
) -> None:
    audit.append(session, SECURITY_CHAIN, event=event, data=data, actor="registry", signer=signer)


# --- lookups ---------------------------------------------------------------------------------


def _member(session: Session, member: MemberId) -> Member:
    row = session.scalars(
        sa.select(Member).where(
            Member.instance == member.instance,
            Member.member_class == member.member_class,
            Member.code == member.code,
        )
    ).one_or_none()
    if row is None:
        raise MemberNotFound(_("There is no member {member}."), member=str(member))
    return row


def _subsystem(session: Session, subsystem: SubsystemId) -> Subsystem:
    member = _member(session, subsystem.member)
    row = session.scalars(
        sa.select(Subsystem).where(
            Subsystem.member_id == member.id, Subsystem.code == subsystem.code
        )
    ).one_or_none()
    if row is None:
        raise SubsystemNotFound(_("There is no subsystem {subsystem}."), subsystem=str(subsystem))
    return row


def _service(session: Session, service: ServiceId) -> Service:
    subsystem = _subsystem(session, service.subsystem)
    row = session.scalars(
        sa.select(Service).where(Service.subsystem_id == subsystem.id, Service.code == service.code)
    ).one_or_none()
    if row is None:
        raise ServiceNotFound(_("There is no service {service}."), service=str(service))
    return row


def get_member(session: Session, *, member: MemberId) -> MemberInfo:
    """One member; ``MemberNotFound`` if it is not registered."""
    row = _member(session, member)
    return MemberInfo(id=str(member), name=row.name)


def member_id(row: Member) -> MemberId:
    return MemberId(row.instance, row.member_class, row.code)


def subsystem_id(row: Subsystem) -> SubsystemId:
    return SubsystemId(row.member.instance, row.member.member_class, row.member.code, row.code)


def service_id(row: Service) -> ServiceId:
    s = subsystem_id(row.subsystem)
    return ServiceId(s.instance, s.member_class, s.member_code, s.code, row.code)


# --- members and subsystems ------------------------------------------------------------------


def add_member(
    session: Session,
    *,
    member: MemberId,
    name: str,
    signer: audit.CheckpointSigner | None = None,
) -> MemberInfo:
    """Register an organisation; ``MemberAlreadyExists`` if it is registered."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ExchangeError(_("A member needs a name of 1 to 200 characters."))
    existing = session.scalars(
        sa.select(Member.id).where(
            Member.instance == member.instance,
            Member.member_class == member.member_class,
            Member.code == member.code,
        )
    ).first()
    if existing is not None:
        raise MemberAlreadyExists(_("Member {member} already exists."), member=str(member))
    session.add(
        Member(
            instance=member.instance,
            member_class=member.member_class,
            code=member.code,
            name=name,
            created_at=utcnow(),
        )
    )
    session.flush()
    _log(session, "exchange.member.added", {"member": str(member), "name": name}, signer)
    return MemberInfo(id=str(member), name=name)


def list_members(session: Session) -> list[MemberInfo]:
    rows = session.scalars(sa.select(Member).order_by(Member.member_class, Member.code))
    return [MemberInfo(id=str(member_id(row)), name=row.name) for row in rows]


def add_subsystem(
    session: Session, *, subsystem: SubsystemId, signer: audit.CheckpointSigner | None = None
) -> str:
    """Register a subsystem of an existing member."""
    member = _member(session, subsystem.member)
    taken = session.scalars(
        sa.select(Subsystem.id).where(
            Subsystem.member_id == member.id, Subsystem.code == subsystem.code
        )
    ).first()
    if taken is not None:
        raise SubsystemAlreadyExists(
            _("Subsystem {subsystem} already exists."), subsystem=str(subsystem)
        )
    session.add(Subsystem(member_id=member.id, code=subsystem.code, created_at=utcnow()))
    session.flush()
    _log(session, "exchange.subsystem.added", {"subsystem": str(subsystem)}, signer)
    return str(subsystem)


def list_subsystems(session: Session) -> list[str]:
    rows = session.scalars(sa.select(Subsystem).join(Subsystem.member))
    return sorted(str(subsystem_id(row)) for row in rows)


# --- services --------------------------------------------------------------------------------


def _check_base_url(url: str) -> str:
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", url):
        raise ExchangeError(
            _("{url!r} is not an http(s) base URL without query or fragment."), url=url
        )
    return url.rstrip("/")


def add_service(
    session: Session,
    *,
    service: ServiceId,
    base_url: str,
    openapi: str | None = None,
    signer: audit.CheckpointSigner | None = None,
) -> ServiceInfo:
    """Register a service of a subsystem, answered by its information system at ``base_url``."""
    if service.code in METASERVICES:
        raise ExchangeError(
            _("{code} is the name of a metaservice the gateways answer; choose another code."),
            code=service.code,
        )
    subsystem = _subsystem(session, service.subsystem)
    url = _check_base_url(base_url)
    taken = session.scalars(
        sa.select(Service.id).where(
            Service.subsystem_id == subsystem.id, Service.code == service.code
        )
    ).first()
    if taken is not None:
        raise ServiceAlreadyExists(_("Service {service} already exists."), service=str(service))
    session.add(
        Service(
            subsystem_id=subsystem.id,
            code=service.code,
            base_url=url,
            openapi=openapi,
            created_at=utcnow(),
        )
    )
    session.flush()
    _log(session, "exchange.service.added", {"service": str(service), "url": url}, signer)
    return ServiceInfo(id=str(service), base_url=url, has_openapi=openapi is not None)


def set_service_url(
    session: Session,
    *,
    service: ServiceId,
    base_url: str,
    signer: audit.CheckpointSigner | None = None,
) -> ServiceInfo:
    """Move a service to another base URL (its information system moved)."""
    row = _service(session, service)
    row.base_url = _check_base_url(base_url)
    session.flush()
    _log(session, "exchange.service.moved", {"service": str(service), "url": row.base_url}, signer)
    return ServiceInfo(id=str(service), base_url=row.base_url, has_openapi=row.openapi is not None)


def get_openapi(session: Session, *, service: ServiceId) -> str:
    """The OpenAPI document registered for ``service`` (as registered: JSON or YAML text)."""
    row = _service(session, service)
    if row.openapi is None:
        raise ServiceDescriptionNotFound(
            _("Service {service} has no OpenAPI description."), service=str(service)
        )
    return row.openapi


def list_services(session: Session) -> list[ServiceInfo]:
    rows = session.scalars(sa.select(Service))
    infos = [
        ServiceInfo(id=str(service_id(r)), base_url=r.base_url, has_openapi=r.openapi is not None)
        for r in rows
    ]
    return sorted(infos, key=lambda info: info.id)


# --- access rights ---------------------------------------------------------------------------


def _check_rule(method: str, path: str) -> tuple[str, str]:
    method = method.upper()
    if method not in METHODS:
        raise ExchangeError(
            _("Method {method!r} is not one of {methods}."),
            method=method,
            methods=", ".join(METHODS),
        )
    if not _PATH_PATTERN.match(path) or len(path) > 500:
        raise ExchangeError(
            _("Path pattern {path!r} must be * or start with / (at most 500 characters)."),
            path=path,
        )
    return method, path


def grant_access(
    session: Session,
    *,
    service: ServiceId,
    client: SubsystemId,
    method: str = "*",
    path: str = "*",
    signer: audit.CheckpointSigner | None = None,
) -> AccessRightInfo:
    """Allow ``client`` to call ``service`` (with ``method`` on paths matching ``path``)."""
    method, path = _check_rule(method, path)
    service_row = _service(session, service)
    client_row = _subsystem(session, client)
    existing = session.scalars(
        sa.select(AccessRight.id).where(
            AccessRight.service_id == service_row.id,
            AccessRight.client_id == client_row.id,
            AccessRight.method == method,
            AccessRight.path == path,
        )
    ).first()
    info = AccessRightInfo(service=str(service), client=str(client), method=method, path=path)
    if existing is not None:
        raise AccessRightAlreadyGranted(
            _("{client} may already call {service} ({method} {path})."), **info.__dict__
        )
    session.add(
        AccessRight(
            service_id=service_row.id,
            client_id=client_row.id,
            method=method,
            path=path,
            granted_at=utcnow(),
        )
    )
    session.flush()
    _log(session, "exchange.access.granted", dict(info.__dict__), signer)
    return info


def revoke_access(
    session: Session,
    *,
    service: ServiceId,
    client: SubsystemId,
    method: str = "*",
    path: str = "*",
    signer: audit.CheckpointSigner | None = None,
) -> AccessRightInfo:
    """Withdraw exactly the right ``grant_access`` gave with the same arguments."""
    method, path = _check_rule(method, path)
    service_row = _service(session, service)
    client_row = _subsystem(session, client)
    row = session.scalars(
        sa.select(AccessRight).where(
            AccessRight.service_id == service_row.id,
            AccessRight.client_id == client_row.id,
            AccessRight.method == method,
            AccessRight.path == path,
        )
    ).one_or_none()
    info = AccessRightInfo(service=str(service), client=str(client), method=method, path=path)
    if row is None:
        raise AccessRightNotFound(
            _("{client} has no access right to {service} ({method} {path})."), **info.__dict__
        )
    session.delete(row)
    session.flush()
    _log(session, "exchange.access.revoked", dict(info.__dict__), signer)
    return info


def list_access(session: Session, *, service: ServiceId | None = None) -> list[AccessRightInfo]:
    query = sa.select(AccessRight)
    if service is not None:
        query = query.where(AccessRight.service_id == _service(session, service).id)
    infos = [
        AccessRightInfo(
            service=str(service_id(row.service)),
            client=str(subsystem_id(row.client)),
            method=row.method,
            path=row.path,
        )
        for row in session.scalars(query)
    ]
    return sorted(infos, key=lambda i: (i.service, i.client, i.method, i.path))


# --- gateways --------------------------------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) of a gateway's peer listener."""
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ExchangeError(_("{address!r} is not a host:port address."), address=address)
    if not re.match(r"^[A-Za-z0-9.-]+$", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ExchangeError(
                _("{address!r} is not a host:port address."), address=address
            ) from None
    return host, int(port_text)


def register_gateway(
    session: Session,
    *,
    name: str,
    member: MemberId,
    address: str,
    tls_certificate: str,
    signing_certificate: str,
    signer: audit.CheckpointSigner | None = None,
) -> GatewayInfo:
    """Record a member's gateway and the certificates the instance CA issued it."""
    parse_address(address)
    member_row = _member(session, member)
    taken = session.scalars(
        sa.select(Gateway.name).where(
            sa.or_(Gateway.member_id == member_row.id, Gateway.name == name)
        )
    ).first()
    if taken is not None:
        raise GatewayAlreadyExists(
            _("Member {member} already has gateway {gateway}."), member=str(member), gateway=taken
        )
    session.add(
        Gateway(
            name=name,
            member_id=member_row.id,
            address=address,
            tls_certificate=tls_certificate,
            signing_certificate=signing_certificate,
            created_at=utcnow(),
        )
    )
    session.flush()
    _log(
        session,
        "exchange.gateway.registered",
        {"gateway": name, "member": str(member), "address": address},
        signer,
    )
    return GatewayInfo(name, str(member), address, tls_certificate, signing_certificate)


def _gateway_info(row: Gateway) -> GatewayInfo:
    return GatewayInfo(
        row.name,
        str(member_id(row.member)),
        row.address,
        row.tls_certificate,
        row.signing_certificate,
    )


def get_gateway(session: Session, *, name: str) -> GatewayInfo:
    row = session.scalars(sa.select(Gateway).where(Gateway.name == name)).one_or_none()
    if row is None:
        raise GatewayNotFound(_("There is no gateway {gateway}."), gateway=name)
    return _gateway_info(row)


def list_gateways(session: Session) -> list[GatewayInfo]:
    return [
        _gateway_info(row) for row in session.scalars(sa.select(Gateway).order_by(Gateway.name))
    ]


def set_gateway_certificates(
    session: Session,
    *,
    name: str,
    tls_certificate: str | None = None,
    signing_certificate: str | None = None,
    signer: audit.CheckpointSigner | None = None,
) -> GatewayInfo:
    """Replace a gateway's certificate(s), e.g. after renewal."""
    row = session.scalars(sa.select(Gateway).where(Gateway.name == name)).one_or_none()
    if row is None:
        raise GatewayNotFound(_("There is no gateway {gateway}."), gateway=name)
    if tls_certificate is not None:
        row.tls_certificate = tls_certificate
    if signing_certificate is not None:
        row.signing_certificate = signing_certificate
    session.flush()
    _log(session, "exchange.gateway.certificates", {"gateway": name}, signer)
    return _gateway_info(row)
