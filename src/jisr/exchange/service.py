"""The registry's services: members, subsystems, services, gateways and access rights.

Typed functions, ``session`` first, keyword-only arguments after; they ``flush()`` and raise
the block's errors. Each change is a security-relevant act and is appended to the registry
node's ``security`` audit chain (pass the node's checkpoint ``signer`` so checkpoints get
signed). What they write is published to gateways by the signed global configuration
(``jisr.exchange.globalconf``).

Access rights name a service, a client, a method (``*`` for any) and a path pattern matched
against the path after the service code (``*`` for any; ``*`` in a pattern matches any
characters, ``/`` included; ``/births/*`` matches ``/births/42``). The client is a subsystem
of this instance, a subsystem of a federated instance (an agreement with its instance must be
installed; the agreement's ``opens_services`` still decides what it may reach), or a *local
group* of the service's member: a named set of subsystems the member keeps, as X-Road's local
groups; the global configuration lists a group's right once per member of the group.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core import federation
from jisr.core.audit import service as audit
from jisr.core.clock import utcnow
from jisr.core.i18n import _
from jisr.exchange.errors import (
    AccessRightAlreadyGranted,
    AccessRightNotFound,
    ExchangeError,
    GatewayAlreadyExists,
    GatewayNotFound,
    GroupAlreadyExists,
    GroupMemberAlreadyExists,
    GroupNotFound,
    MemberAlreadyExists,
    MemberNotFound,
    ServiceAlreadyExists,
    ServiceDescriptionNotFound,
    ServiceNotFound,
    SubsystemAlreadyExists,
    SubsystemNotFound,
)
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId
from jisr.exchange.models import (
    AccessRight,
    Gateway,
    LocalGroup,
    LocalGroupMember,
    Member,
    Service,
    Subsystem,
)

SECURITY_CHAIN = "security"
# Service codes the gateways answer themselves (the service metadata protocol for REST).
METASERVICES = ("listMethods", "allowedMethods", "getOpenAPI")
METHODS = ("*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PATH_PATTERN = re.compile(r"^(\*|/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$")
_GROUP_CODE = re.compile(r"^[A-Za-z0-9'()+,\-.=?]{1,64}$")
GROUP_PREFIX = "group:"  # how an access right to a local group names its client


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
    """``client``: a subsystem identifier, or ``group:<code>`` for a local group."""

    service: str
    client: str
    method: str
    path: str


@dataclass(frozen=True)
class GroupInfo:
    member: str
    code: str
    description: str
    clients: list[str]


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


def _subject(
    session: Session, service: ServiceId, client: SubsystemId | None, group: str | None
) -> tuple[dict[str, Any], str]:
    """The columns naming an access right's client, and how the right names it."""
    if (client is None) == (group is None):
        raise ExchangeError(_("Name either a client subsystem or a local group, not both."))
    if group is not None:
        row = _group(session, service.member, group)
        return {"group_id": row.id}, GROUP_PREFIX + row.code
    assert client is not None
    if client.instance != service.instance:
        _check_federated(session, client)
        return {"foreign_client": str(client)}, str(client)
    return {"client_id": _subsystem(session, client).id}, str(client)


def _check_federated(session: Session, client: SubsystemId) -> None:
    """A subsystem of another instance may be named only with an agreement in force."""
    federation.agreement_with(session, peer=client.instance)


def _right_filter(columns: dict[str, Any]) -> list[Any]:
    return [
        AccessRight.client_id == columns.get("client_id")
        if "client_id" in columns
        else AccessRight.client_id.is_(None),
        AccessRight.group_id == columns.get("group_id")
        if "group_id" in columns
        else AccessRight.group_id.is_(None),
        AccessRight.foreign_client == columns.get("foreign_client")
        if "foreign_client" in columns
        else AccessRight.foreign_client.is_(None),
    ]


def grant_access(
    session: Session,
    *,
    service: ServiceId,
    client: SubsystemId | None = None,
    group: str | None = None,
    method: str = "*",
    path: str = "*",
    signer: audit.CheckpointSigner | None = None,
) -> AccessRightInfo:
    """Allow ``client`` (a subsystem, of this or a federated instance) or the local ``group``
    of the service's member to call ``service`` (``method`` on paths matching ``path``)."""
    method, path = _check_rule(method, path)
    service_row = _service(session, service)
    columns, named = _subject(session, service, client, group)
    existing = session.scalars(
        sa.select(AccessRight.id).where(
            AccessRight.service_id == service_row.id,
            AccessRight.method == method,
            AccessRight.path == path,
            *_right_filter(columns),
        )
    ).first()
    info = AccessRightInfo(service=str(service), client=named, method=method, path=path)
    if existing is not None:
        raise AccessRightAlreadyGranted(
            _("{client} may already call {service} ({method} {path})."), **info.__dict__
        )
    session.add(
        AccessRight(
            service_id=service_row.id, method=method, path=path, granted_at=utcnow(), **columns
        )
    )
    session.flush()
    _log(session, "exchange.access.granted", dict(info.__dict__), signer)
    return info


def revoke_access(
    session: Session,
    *,
    service: ServiceId,
    client: SubsystemId | None = None,
    group: str | None = None,
    method: str = "*",
    path: str = "*",
    signer: audit.CheckpointSigner | None = None,
) -> AccessRightInfo:
    """Withdraw exactly the right ``grant_access`` gave with the same arguments."""
    method, path = _check_rule(method, path)
    service_row = _service(session, service)
    if client is not None and client.instance != service.instance and group is None:
        columns, named = {"foreign_client": str(client)}, str(client)  # agreement may be gone
    else:
        columns, named = _subject(session, service, client, group)
    row = session.scalars(
        sa.select(AccessRight).where(
            AccessRight.service_id == service_row.id,
            AccessRight.method == method,
            AccessRight.path == path,
            *_right_filter(columns),
        )
    ).one_or_none()
    info = AccessRightInfo(service=str(service), client=named, method=method, path=path)
    if row is None:
        raise AccessRightNotFound(
            _("{client} has no access right to {service} ({method} {path})."), **info.__dict__
        )
    session.delete(row)
    session.flush()
    _log(session, "exchange.access.revoked", dict(info.__dict__), signer)
    return info


def right_client(row: AccessRight) -> str:
    """How a right names its client: a subsystem identifier or ``group:<code>``."""
    if row.client is not None:
        return str(subsystem_id(row.client))
    if row.group is not None:
        return GROUP_PREFIX + row.group.code
    return str(row.foreign_client)


def list_access(session: Session, *, service: ServiceId | None = None) -> list[AccessRightInfo]:
    query = sa.select(AccessRight)
    if service is not None:
        query = query.where(AccessRight.service_id == _service(session, service).id)
    infos = [
        AccessRightInfo(
            service=str(service_id(row.service)),
            client=right_client(row),
            method=row.method,
            path=row.path,
        )
        for row in session.scalars(query)
    ]
    return sorted(infos, key=lambda i: (i.service, i.client, i.method, i.path))


# --- local groups ----------------------------------------------------------------------------


def _group(session: Session, member: MemberId, code: str) -> LocalGroup:
    member_row = _member(session, member)
    row = session.scalars(
        sa.select(LocalGroup).where(LocalGroup.member_id == member_row.id, LocalGroup.code == code)
    ).one_or_none()
    if row is None:
        raise GroupNotFound(
            _("Member {member} has no local group {group}."), member=str(member), group=code
        )
    return row


def _group_clients(session: Session, group_id: int) -> list[str]:
    return sorted(
        session.scalars(
            sa.select(LocalGroupMember.client).where(LocalGroupMember.group_id == group_id)
        )
    )


def _group_info(session: Session, row: LocalGroup) -> GroupInfo:
    return GroupInfo(
        member=str(member_id(row.member)),
        code=row.code,
        description=row.description,
        clients=_group_clients(session, row.id),
    )


def add_group(
    session: Session,
    *,
    member: MemberId,
    code: str,
    description: str = "",
    signer: audit.CheckpointSigner | None = None,
) -> GroupInfo:
    """Create a local group of ``member`` (empty)."""
    if not _GROUP_CODE.match(code):
        raise ExchangeError(
            _("{code!r} is not a group code (1 to 64 of A-Z a-z 0-9 ' ( ) + , - . = ?)."),
            code=code,
        )
    description = description.strip()
    if len(description) > 200:
        raise ExchangeError(_("A group description has at most 200 characters."))
    member_row = _member(session, member)
    taken = session.scalars(
        sa.select(LocalGroup.id).where(
            LocalGroup.member_id == member_row.id, LocalGroup.code == code
        )
    ).first()
    if taken is not None:
        raise GroupAlreadyExists(
            _("Member {member} already has a local group {group}."),
            member=str(member),
            group=code,
        )
    row = LocalGroup(
        member_id=member_row.id, code=code, description=description, created_at=utcnow()
    )
    session.add(row)
    session.flush()
    _log(session, "exchange.group.added", {"member": str(member), "group": code}, signer)
    return _group_info(session, row)


def delete_group(
    session: Session,
    *,
    member: MemberId,
    code: str,
    signer: audit.CheckpointSigner | None = None,
) -> None:
    """Delete a local group, its membership and the access rights granted to it."""
    row = _group(session, member, code)
    session.execute(sa.delete(AccessRight).where(AccessRight.group_id == row.id))
    session.execute(sa.delete(LocalGroupMember).where(LocalGroupMember.group_id == row.id))
    session.delete(row)
    session.flush()
    _log(session, "exchange.group.deleted", {"member": str(member), "group": code}, signer)


def add_group_member(
    session: Session,
    *,
    member: MemberId,
    code: str,
    client: SubsystemId,
    signer: audit.CheckpointSigner | None = None,
) -> GroupInfo:
    """Put ``client`` (a registered subsystem, or one of a federated instance) in a group."""
    row = _group(session, member, code)
    if client.instance == member.instance:
        _subsystem(session, client)
    else:
        _check_federated(session, client)
    taken = session.scalars(
        sa.select(LocalGroupMember.id).where(
            LocalGroupMember.group_id == row.id, LocalGroupMember.client == str(client)
        )
    ).first()
    if taken is not None:
        raise GroupMemberAlreadyExists(
            _("{client} is already in group {group}."), client=str(client), group=code
        )
    session.add(LocalGroupMember(group_id=row.id, client=str(client), added_at=utcnow()))
    session.flush()
    _log(
        session,
        "exchange.group.member-added",
        {"member": str(member), "group": code, "client": str(client)},
        signer,
    )
    return _group_info(session, row)


def remove_group_member(
    session: Session,
    *,
    member: MemberId,
    code: str,
    client: SubsystemId,
    signer: audit.CheckpointSigner | None = None,
) -> GroupInfo:
    """Take ``client`` out of a group (its rights through the group end with it)."""
    row = _group(session, member, code)
    found = session.scalars(
        sa.select(LocalGroupMember).where(
            LocalGroupMember.group_id == row.id, LocalGroupMember.client == str(client)
        )
    ).one_or_none()
    if found is None:
        raise GroupNotFound(_("{client} is not in group {group}."), client=str(client), group=code)
    session.delete(found)
    session.flush()
    _log(
        session,
        "exchange.group.member-removed",
        {"member": str(member), "group": code, "client": str(client)},
        signer,
    )
    return _group_info(session, row)


def list_groups(session: Session, *, member: MemberId | None = None) -> list[GroupInfo]:
    query = sa.select(LocalGroup)
    if member is not None:
        query = query.where(LocalGroup.member_id == _member(session, member).id)
    infos = [_group_info(session, row) for row in session.scalars(query)]
    return sorted(infos, key=lambda g: (g.member, g.code))


def group_clients(session: Session, group_id: int) -> list[str]:
    """The subsystems in a group (for the global configuration)."""
    return _group_clients(session, group_id)


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
