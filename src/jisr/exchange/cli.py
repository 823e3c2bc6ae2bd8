"""``jisr exchange``: administer the registry, create and serve gateways, verify and archive
message logs.

Every command takes ``--dir D`` (the instance directory), opens sessions of the nodes it needs
and calls the block's services; none speaks HTTP to its own instance (``gateway serve`` and
the gateways themselves excepted: they are the network).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from jisr.core.audit import service as audit
from jisr.core.crypto import jws
from jisr.core.errors import NotFound
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.exchange import archive, federation, globalconf, provisioning, pubsub_cli, service
from jisr.exchange.gateway import MESSAGE_LOG
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId

app = typer.Typer(
    help="The information mediator: members, subsystems, services, access rights, gateways, "
    "the global configuration and the message logs.",
    no_args_is_help=True,
)
member_app = typer.Typer(help="Member organisations (INSTANCE/CLASS/CODE).", no_args_is_help=True)
subsystem_app = typer.Typer(help="Subsystems of members.", no_args_is_help=True)
service_app = typer.Typer(help="Services that subsystems provide.", no_args_is_help=True)
access_app = typer.Typer(help="Access rights of client subsystems.", no_args_is_help=True)
gateway_app = typer.Typer(help="Gateways (security servers).", no_args_is_help=True)
globalconf_app = typer.Typer(help="The signed global configuration.", no_args_is_help=True)
log_app = typer.Typer(help="The gateways' message logs.", no_args_is_help=True)
for sub, name in (
    (member_app, "member"),
    (subsystem_app, "subsystem"),
    (service_app, "service"),
    (access_app, "access"),
    (gateway_app, "gateway"),
    (globalconf_app, "globalconf"),
    (log_app, "log"),
):
    app.add_typer(sub, name=name)
app.add_typer(pubsub_cli.app, name="pubsub")

out = Console(highlight=False, soft_wrap=True)
DirOption = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")
JsonOption = typer.Option(False, "--json", help="Print JSON.")


def _emit(items: list[Any], as_json: bool, line: Any) -> None:
    if as_json:
        out.print_json(json.dumps([dataclasses.asdict(i) for i in items]))
        return
    for item in items:
        out.print(line(item))
    if not items:
        out.print("(none)")


_opened: list[Instance] = []


@app.callback()
def _group(ctx: typer.Context) -> None:
    """The information mediator."""
    ctx.call_on_close(_close_opened)


def _close_opened() -> None:
    while _opened:
        _opened.pop().close()


def _open(directory: Path) -> Instance:
    """The instance, closed when the command ends (also when it fails)."""
    instance = Instance.open(directory)
    _opened.append(instance)
    return instance


def _registry(directory: Path) -> tuple[Instance, Any]:
    instance = _open(directory)
    return instance, instance.node(REGISTRY_NODE)


@contextmanager
def _registry_session(directory: Path) -> Iterator[tuple[Any, Session]]:
    """The registry node of the instance in ``directory`` and one session of it (committed
    on success); the instance is closed afterwards, also after an error."""
    instance, registry = _registry(directory)
    try:
        with registry.session() as session:
            yield registry, session
    finally:
        instance.close()


# --- members, subsystems, services -----------------------------------------------------------


@member_app.command("add")
def member_add(
    member: str = typer.Argument(..., help="INSTANCE/CLASS/CODE, e.g. MA/GOV/CIVIL-REGISTRY."),
    name: str = typer.Option(..., "--name", help="The organisation's name."),
    directory: Path = DirOption,
) -> None:
    """Register a member organisation."""
    with _registry_session(directory) as (registry, session):
        info = service.add_member(
            session,
            member=MemberId.parse(member),
            name=name,
            signer=registry.checkpoint_signer(session),
        )
    out.print(f"Member {info.id} added.")


@member_app.command("list")
def member_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """List members."""
    with _registry_session(directory) as (registry, session):
        items = service.list_members(session)
    _emit(items, as_json, lambda m: f"{m.id}  {m.name}")


@subsystem_app.command("add")
def subsystem_add(
    subsystem: str = typer.Argument(..., help="INSTANCE/CLASS/MEMBER/SUBSYSTEM."),
    directory: Path = DirOption,
) -> None:
    """Register a subsystem of a member."""
    with _registry_session(directory) as (registry, session):
        added = service.add_subsystem(
            session,
            subsystem=SubsystemId.parse(subsystem),
            signer=registry.checkpoint_signer(session),
        )
    out.print(f"Subsystem {added} added.")


@subsystem_app.command("list")
def subsystem_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """List subsystems."""
    with _registry_session(directory) as (registry, session):
        items = service.list_subsystems(session)
    if as_json:
        out.print_json(json.dumps(items))
    else:
        for item in items or ["(none)"]:
            out.print(item)


@service_app.command("add")
def service_add(
    service_id: str = typer.Argument(..., help="INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE."),
    url: str = typer.Option(..., "--url", help="Base URL of the provider's information system."),
    openapi: Path | None = typer.Option(None, help="Its OpenAPI document (JSON or YAML file)."),
    directory: Path = DirOption,
) -> None:
    """Register a service and where its information system answers."""
    document = openapi.read_text(encoding="utf-8") if openapi else None
    with _registry_session(directory) as (registry, session):
        info = service.add_service(
            session,
            service=ServiceId.parse(service_id),
            base_url=url,
            openapi=document,
            signer=registry.checkpoint_signer(session),
        )
    out.print(f"Service {info.id} added ({info.base_url}).")


@service_app.command("list")
def service_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """List services."""
    with _registry_session(directory) as (registry, session):
        items = service.list_services(session)
    _emit(items, as_json, lambda s: f"{s.id}  {s.base_url}")


# --- access rights ---------------------------------------------------------------------------

MethodOption = typer.Option("*", "--method", help="HTTP method, or * for any.")
PathOption = typer.Option("*", "--path", help="Path pattern after the service, e.g. /births/*.")


ClientArgument = typer.Argument(
    None, help="The client subsystem (of this instance or a federated one); or use --group."
)
GroupOption = typer.Option(
    None, "--group", help="A local group of the service's member, instead of a client."
)


def _change_access(
    change: Callable[..., service.AccessRightInfo],
    directory: Path,
    service_id: str,
    client: str | None,
    group: str | None,
    method: str,
    path: str,
) -> service.AccessRightInfo:
    """Grant or revoke (``change``) the access right of a client or a local group."""
    with _registry_session(directory) as (registry, session):
        info = change(
            session,
            service=ServiceId.parse(service_id),
            client=SubsystemId.parse(client) if client else None,
            group=group,
            method=method,
            path=path,
            signer=registry.checkpoint_signer(session),
        )
    return info


@access_app.command("grant")
def access_grant(
    service_id: str = typer.Argument(..., help="The service."),
    client: str | None = ClientArgument,
    group: str | None = GroupOption,
    method: str = MethodOption,
    path: str = PathOption,
    directory: Path = DirOption,
) -> None:
    """Allow a client subsystem, or a local group, to call a service."""
    info = _change_access(service.grant_access, directory, service_id, client, group, method, path)
    out.print(f"Granted: {info.client} may call {info.service} ({info.method} {info.path}).")


@access_app.command("revoke")
def access_revoke(
    service_id: str = typer.Argument(..., help="The service."),
    client: str | None = ClientArgument,
    group: str | None = GroupOption,
    method: str = MethodOption,
    path: str = PathOption,
    directory: Path = DirOption,
) -> None:
    """Withdraw an access right (the same client or group, method and path as granted)."""
    info = _change_access(service.revoke_access, directory, service_id, client, group, method, path)
    out.print(f"Revoked: {info.client} on {info.service} ({info.method} {info.path}).")


@access_app.command("list")
def access_list(
    directory: Path = DirOption,
    service_id: str | None = typer.Option(None, "--service", help="Only this service."),
    as_json: bool = JsonOption,
) -> None:
    """List access rights."""
    with _registry_session(directory) as (registry, session):
        only = ServiceId.parse(service_id) if service_id else None
        items = service.list_access(session, service=only)
    _emit(items, as_json, lambda a: f"{a.client} -> {a.service}  {a.method} {a.path}")


# --- local groups ----------------------------------------------------------------------------

group_app = typer.Typer(
    help="Local groups of client subsystems, per member; access rights may name a group.",
    no_args_is_help=True,
)
app.add_typer(group_app, name="group")
MemberArgument = typer.Argument(..., help="The member owning the group (INSTANCE/CLASS/CODE).")
CodeArgument = typer.Argument(..., help="The group code.")


def _change_group(
    directory: Path,
    member: str,
    code: str,
    clients: list[str],
    change: Callable[..., service.GroupInfo],
) -> service.GroupInfo:
    """Add or remove (``change``) each client in turn; the group as the last change left it."""
    with _registry_session(directory) as (registry, session):
        signer = registry.checkpoint_signer(session)
        for client in clients:
            info = change(
                session,
                member=MemberId.parse(member),
                code=code,
                client=SubsystemId.parse(client),
                signer=signer,
            )
    return info


@group_app.command("create")
def group_create(
    member: str = MemberArgument,
    code: str = CodeArgument,
    description: str = typer.Option("", "--description", help="What the group is for."),
    directory: Path = DirOption,
) -> None:
    """Create an empty local group of a member."""
    with _registry_session(directory) as (registry, session):
        info = service.add_group(
            session,
            member=MemberId.parse(member),
            code=code,
            description=description,
            signer=registry.checkpoint_signer(session),
        )
    out.print(f"Group {info.code} of {info.member} created.")


@group_app.command("delete")
def group_delete(
    member: str = MemberArgument, code: str = CodeArgument, directory: Path = DirOption
) -> None:
    """Delete a local group, and the access rights granted to it."""
    with _registry_session(directory) as (registry, session):
        service.delete_group(
            session,
            member=MemberId.parse(member),
            code=code,
            signer=registry.checkpoint_signer(session),
        )
    out.print(f"Group {code} of {member} deleted.")


@group_app.command("add")
def group_add(
    member: str = MemberArgument,
    code: str = CodeArgument,
    clients: list[str] = typer.Argument(..., help="Subsystems to put in the group."),
    directory: Path = DirOption,
) -> None:
    """Put subsystems in a local group."""
    info = _change_group(directory, member, code, clients, service.add_group_member)
    out.print(f"Group {info.code} of {info.member}: {', '.join(info.clients)}.")


@group_app.command("remove")
def group_remove(
    member: str = MemberArgument,
    code: str = CodeArgument,
    clients: list[str] = typer.Argument(..., help="Subsystems to take out of the group."),
    directory: Path = DirOption,
) -> None:
    """Take subsystems out of a local group (their rights through it end)."""
    info = _change_group(directory, member, code, clients, service.remove_group_member)
    out.print(f"Group {info.code} of {info.member}: {', '.join(info.clients) or '(empty)'}.")


@group_app.command("list")
def group_list(
    directory: Path = DirOption,
    member: str | None = typer.Option(None, "--member", help="Only this member's groups."),
    as_json: bool = JsonOption,
) -> None:
    """List local groups and their subsystems."""
    with _registry_session(directory) as (registry, session):
        items = service.list_groups(session, member=MemberId.parse(member) if member else None)
    _emit(items, as_json, lambda g: f"{g.member} {g.code}: {', '.join(g.clients) or '(empty)'}")


# --- federation --------------------------------------------------------------------------------

federation_app = typer.Typer(
    help="Cross-border exchange: federated instances' shared parameters.", no_args_is_help=True
)
app.add_typer(federation_app, name="federation")


@federation_app.command("sync")
def federation_sync(
    peer: str = typer.Argument(..., help="The federated instance, e.g. QA."),
    url: str | None = typer.Option(
        None, "--url", help="Its registry's base URL (default: the one its agreement names)."
    ),
    directory: Path = DirOption,
) -> None:
    """Download a federated instance's shared parameters now, checked with the key the
    agreement pins; the next global configuration carries them to the gateways."""
    instance, registry = _registry(directory)
    info = federation.refresh_peer(registry, peer=peer, base_url=url)
    instance.close()
    out.print(
        f"Shared parameters of {info.peer} version {info.version} verified and kept "
        f"(agreement {info.agreement_id}, valid until {info.expires_at:%Y-%m-%d %H:%M} UTC)."
    )


@federation_app.command("list")
def federation_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """List the federated instances' shared parameters held."""
    with _registry_session(directory) as (registry, session):
        items = federation.list_peer_confs(session)
    if as_json:
        out.print_json(json.dumps([dataclasses.asdict(i) for i in items], default=str))
        return
    _emit(
        items,
        False,
        lambda p: f"{p.peer}  v{p.version}  agreement {p.agreement_id}  until {p.expires_at}",
    )


# --- gateways --------------------------------------------------------------------------------


@gateway_app.command("add")
def gateway_add(
    member: str = typer.Option(..., "--member", help="The member whose gateway this is."),
    address: str = typer.Option(..., "--address", help="host:port of its mutual-TLS listener."),
    registry_url: str | None = typer.Option(
        None, help="Where it downloads the global configuration (default: setting)."
    ),
    directory: Path = DirOption,
) -> None:
    """Create a member's gateway node, its certificates and anchor, and register it."""
    instance = _open(directory)
    info = provisioning.create_gateway(
        instance, member=MemberId.parse(member), address=address, registry_url=registry_url
    )
    instance.close()
    out.print(f"Gateway {info.name} of {info.member} created (peers reach it at {info.address}).")
    out.print(f"Next: jisr exchange gateway serve --dir {directory} --node {info.name}")


@gateway_app.command("list")
def gateway_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """List gateways."""
    with _registry_session(directory) as (registry, session):
        items = service.list_gateways(session)
    if as_json:
        out.print_json(
            json.dumps([{"name": g.name, "member": g.member, "address": g.address} for g in items])
        )
        return
    for g in items:
        out.print(f"{g.name}  {g.member}  {g.address}")
    if not items:
        out.print("(none)")


@gateway_app.command("serve")
def gateway_serve(
    node: str = typer.Option(..., "--node", "-n", help="The gateway node, e.g. gateway-x."),
    port: int = typer.Option(8080, help="Port of the client proxy (plain HTTP, loopback)."),
    peer_port: int | None = typer.Option(None, help="Port of the mutual-TLS listener."),
    registry_url: str | None = typer.Option(None, help="Registry base URL (default: anchor)."),
    directory: Path = DirOption,
) -> None:
    """Serve a gateway (client proxy and mutual-TLS listener) until Ctrl-C."""
    from jisr.exchange.server import start_gateway

    instance = _open(directory)
    running = start_gateway(
        instance, node, port=port, peer_port=peer_port, registry_url=registry_url
    )
    out.print(
        f"Gateway {node}: information systems call {running.url}/r1/…; peers reach "
        f"https://{running.peer_host}:{running.peer_port} (mutual TLS)."
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        out.print("Stopping.")
    finally:
        running.stop()
        instance.close()


# --- global configuration and logs -----------------------------------------------------------


@globalconf_app.command("show")
def globalconf_show(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """Show the global configuration the registry publishes now."""
    instance, registry = _registry(directory)
    settings = instance.settings
    with registry.session() as session:
        signed = globalconf.current(
            session,
            registry.keys,
            instance=settings.instance_code,
            validity_seconds=settings.exchange_globalconf_validity_seconds,
            crl_validity_hours=settings.crl_validity_hours,
        )
        document = jws.verify_with_keystore(session, signed.token, typ=globalconf.TYP).json()
    instance.close()
    if as_json:
        out.print_json(json.dumps(document))
        return
    out.print(f"Global configuration of {document['instance']}, version {document['version']}")
    out.print(f"  generated {document['generated_at']}, expires {document['expires_at']}")
    for key in ("members", "subsystems", "services", "gateways", "access_rights", "revoked"):
        out.print(f"  {key}: {len(document[key])}")


def _gateway_logs(directory: Path) -> list[dict[str, Any]]:
    instance = _open(directory)
    results: list[dict[str, Any]] = []
    for node in instance.nodes.values():
        if not node.name.startswith("gateway-"):
            continue
        with node.session() as session:
            try:
                report = audit.verify_chain(
                    session, MESSAGE_LOG, verifier=jws.keystore_verifier(session)
                )
            except NotFound:
                results.append({"node": node.name, "ok": True, "records": 0, "findings": []})
                continue
        results.append(
            {
                "node": node.name,
                "ok": report.ok,
                "records": report.records_checked,
                "findings": [f.to_dict() for f in report.findings],
            }
        )
    instance.close()
    return results


def _print_gateways(results: list[dict[str, Any]]) -> None:
    for r in results:
        state = "intact" if r["ok"] else f"BROKEN: {r['findings'][0]['message']}"
        out.print(f"{r['node']}/{MESSAGE_LOG}: {r['records']} records, {state}")
    if not results:
        out.print("No gateway nodes in this instance.")


@log_app.command("verify")
def log_verify(
    archive_path: Path | None = typer.Argument(
        None,
        metavar="[ARCHIVE]",
        help="An archive made by `log export`, verified offline (instead of --dir).",
    ),
    directory: Path | None = typer.Option(
        None, "--dir", "-d", help="The instance directory: verify its gateways' logs in place."
    ),
    trusted_ca: Path | None = typer.Option(
        None, "--ca", help="With ARCHIVE: the CA certificate (PEM) the archive's CA must equal."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check the message log of every gateway node (--dir), or an archive (ARCHIVE); exit 1
    naming the first broken record."""
    if (archive_path is None) == (directory is None):
        raise typer.BadParameter("Give either ARCHIVE or --dir (one of them).")
    if archive_path is not None:
        _verify_archive(archive_path, trusted_ca, as_json)
        return
    assert directory is not None
    results = _gateway_logs(directory)
    ok = all(r["ok"] for r in results)
    if as_json:
        out.print_json(json.dumps({"ok": ok, "gateways": results}))
    else:
        _print_gateways(results)
    if not ok:
        raise typer.Exit(1)


def _verify_archive(path: Path, trusted_ca: Path | None, as_json: bool) -> None:
    report = archive.verify_archive(
        path, trusted_ca=trusted_ca.read_bytes() if trusted_ca else None
    )
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        period = f" from {report.since or 'the start'} until {report.until or 'the export'}"
        out.print(f"Archive of instance {report.instance}{period}; CA SHA-256 {report.ca_sha256}")
        _print_gateways([g.__dict__ for g in report.gateways])
        for problem in report.manifest:
            out.print(f"BROKEN: {problem}")
    if not report.ok:
        raise typer.Exit(1)


def _moment(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@log_app.command("export")
def log_export(
    out_path: Path = typer.Option(..., "--out", "-o", help="The archive to write (a ZIP file)."),
    node: list[str] | None = typer.Option(
        None, "--node", "-n", help="Only this gateway node (repeatable; default: every gateway)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Start of the period, ISO 8601 (UTC if no offset), included."
    ),
    until: str | None = typer.Option(
        None, "--until", help="End of the period, ISO 8601 (UTC if no offset), excluded."
    ),
    directory: Path = DirOption,
) -> None:
    """Export the gateways' message logs (or a period) as an archive verifiable offline."""
    instance = _open(directory)
    summary = archive.export_archive(
        instance,
        out=out_path,
        nodes=node or None,
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
    )
    instance.close()
    for g in summary.gateways:
        span = f"records {g.first_seq}–{g.last_seq}" if g.records else "no records"
        out.print(f"{g.node}/{MESSAGE_LOG}: {span}, {g.checkpoints} checkpoints")
    out.print(f"Archive written to {summary.path}; check it with: jisr exchange log verify FILE")
