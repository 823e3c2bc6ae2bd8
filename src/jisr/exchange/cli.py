"""``jisr exchange``: administer the registry, create and serve gateways, verify and archive
message logs.

Every command takes ``--dir D`` (the instance directory), opens sessions of the nodes it needs
and calls the block's services; none speaks HTTP to its own instance (``gateway serve`` and
the gateways themselves excepted: they are the network).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
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
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.exchange import archive, federation, globalconf, provisioning, pubsub_cli, service
from jisr.exchange.gateway import JOURNAL_WAIT_SECONDS, MESSAGE_LOG, wait_written
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId
from jisr.exchange.pubsub_cli import say

# Every text a person reads is marked with _() and shown through say() in the operator's
# language (JISR_LANGUAGE or the locale); --json outputs are data and stay as they are.
app = typer.Typer(
    help=say(
        _(
            "The information mediator: members, subsystems, services, access rights, gateways, "
            "the global configuration and the message logs."
        )
    ),
    no_args_is_help=True,
)
member_app = typer.Typer(
    help=say(_("Member organisations (INSTANCE/CLASS/CODE).")), no_args_is_help=True
)
subsystem_app = typer.Typer(help=say(_("Subsystems of members.")), no_args_is_help=True)
service_app = typer.Typer(help=say(_("Services that subsystems provide.")), no_args_is_help=True)
access_app = typer.Typer(help=say(_("Access rights of client subsystems.")), no_args_is_help=True)
gateway_app = typer.Typer(help=say(_("Gateways (security servers).")), no_args_is_help=True)
globalconf_app = typer.Typer(help=say(_("The signed global configuration.")), no_args_is_help=True)
log_app = typer.Typer(help=say(_("The gateways' message logs.")), no_args_is_help=True)
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
DirOption = typer.Option(
    ..., "--dir", "-d", help=say(_("The instance directory (made by `jisr init`)."))
)
JsonOption = typer.Option(False, "--json", help=say(_("Print JSON.")))


def _emit(items: list[Any], as_json: bool, line: Any) -> None:
    if as_json:
        out.print_json(json.dumps([dataclasses.asdict(i) for i in items]))
        return
    for item in items:
        out.print(line(item))
    if not items:
        out.print(say(_("(none)")))


_opened: list[Instance] = []


@app.callback()
def _group(ctx: typer.Context) -> None:
    """The information mediator (the group's help is the app's)."""
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


@member_app.command("add", help=say(_("Register a member organisation.")))
def member_add(
    member: str = typer.Argument(
        ..., help=say(_("INSTANCE/CLASS/CODE, e.g. MA/GOV/CIVIL-REGISTRY."))
    ),
    name: str = typer.Option(..., "--name", help=say(_("The organisation's name."))),
    directory: Path = DirOption,
) -> None:
    with _registry_session(directory) as (registry, session):
        info = service.add_member(
            session,
            member=MemberId.parse(member),
            name=name,
            signer=registry.checkpoint_signer(session),
        )
    out.print(say(_("Member {member} added."), member=info.id))


@member_app.command("list", help=say(_("List members.")))
def member_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    with _registry_session(directory) as (registry, session):
        items = service.list_members(session)
    _emit(items, as_json, lambda m: f"{m.id}  {m.name}")


@subsystem_app.command("add", help=say(_("Register a subsystem of a member.")))
def subsystem_add(
    subsystem: str = typer.Argument(..., help=say(_("INSTANCE/CLASS/MEMBER/SUBSYSTEM."))),
    directory: Path = DirOption,
) -> None:
    with _registry_session(directory) as (registry, session):
        added = service.add_subsystem(
            session,
            subsystem=SubsystemId.parse(subsystem),
            signer=registry.checkpoint_signer(session),
        )
    out.print(say(_("Subsystem {subsystem} added."), subsystem=added))


@subsystem_app.command("list", help=say(_("List subsystems.")))
def subsystem_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    with _registry_session(directory) as (registry, session):
        items = service.list_subsystems(session)
    if as_json:
        out.print_json(json.dumps(items))
    else:
        for item in items or [say(_("(none)"))]:
            out.print(item)


@service_app.command(
    "add", help=say(_("Register a service and where its information system answers."))
)
def service_add(
    service_id: str = typer.Argument(..., help=say(_("INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE."))),
    url: str = typer.Option(
        ..., "--url", help=say(_("Base URL of the provider's information system."))
    ),
    openapi: Path | None = typer.Option(
        None, help=say(_("Its OpenAPI document (JSON or YAML file)."))
    ),
    directory: Path = DirOption,
) -> None:
    document = openapi.read_text(encoding="utf-8") if openapi else None
    with _registry_session(directory) as (registry, session):
        info = service.add_service(
            session,
            service=ServiceId.parse(service_id),
            base_url=url,
            openapi=document,
            signer=registry.checkpoint_signer(session),
        )
    out.print(say(_("Service {service} added ({url})."), service=info.id, url=info.base_url))


@service_app.command("list", help=say(_("List services.")))
def service_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    with _registry_session(directory) as (registry, session):
        items = service.list_services(session)
    _emit(items, as_json, lambda s: f"{s.id}  {s.base_url}")


# --- access rights ---------------------------------------------------------------------------

MethodOption = typer.Option("*", "--method", help=say(_("HTTP method, or * for any.")))
PathOption = typer.Option(
    "*", "--path", help=say(_("Path pattern after the service, e.g. /births/*."))
)


ClientArgument = typer.Argument(
    None,
    help=say(_("The client subsystem (of this instance or a federated one); or use --group.")),
)
GroupOption = typer.Option(
    None, "--group", help=say(_("A local group of the service's member, instead of a client."))
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


@access_app.command(
    "grant", help=say(_("Allow a client subsystem, or a local group, to call a service."))
)
def access_grant(
    service_id: str = typer.Argument(..., help=say(_("The service."))),
    client: str | None = ClientArgument,
    group: str | None = GroupOption,
    method: str = MethodOption,
    path: str = PathOption,
    directory: Path = DirOption,
) -> None:
    info = _change_access(service.grant_access, directory, service_id, client, group, method, path)
    out.print(
        say(
            _("Granted: {client} may call {service} ({method} {path})."),
            client=info.client,
            service=info.service,
            method=info.method,
            path=info.path,
        )
    )


@access_app.command(
    "revoke",
    help=say(_("Withdraw an access right (the same client or group, method and path as granted).")),
)
def access_revoke(
    service_id: str = typer.Argument(..., help=say(_("The service."))),
    client: str | None = ClientArgument,
    group: str | None = GroupOption,
    method: str = MethodOption,
    path: str = PathOption,
    directory: Path = DirOption,
) -> None:
    info = _change_access(service.revoke_access, directory, service_id, client, group, method, path)
    out.print(
        say(
            _("Revoked: {client} on {service} ({method} {path})."),
            client=info.client,
            service=info.service,
            method=info.method,
            path=info.path,
        )
    )


@access_app.command("list", help=say(_("List access rights.")))
def access_list(
    directory: Path = DirOption,
    service_id: str | None = typer.Option(None, "--service", help=say(_("Only this service."))),
    as_json: bool = JsonOption,
) -> None:
    with _registry_session(directory) as (registry, session):
        only = ServiceId.parse(service_id) if service_id else None
        items = service.list_access(session, service=only)
    _emit(items, as_json, lambda a: f"{a.client} -> {a.service}  {a.method} {a.path}")


# --- local groups ----------------------------------------------------------------------------

group_app = typer.Typer(
    help=say(_("Local groups of client subsystems, per member; access rights may name a group.")),
    no_args_is_help=True,
)
app.add_typer(group_app, name="group")
MemberArgument = typer.Argument(
    ..., help=say(_("The member owning the group (INSTANCE/CLASS/CODE)."))
)
CodeArgument = typer.Argument(..., help=say(_("The group code.")))


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


@group_app.command("create", help=say(_("Create an empty local group of a member.")))
def group_create(
    member: str = MemberArgument,
    code: str = CodeArgument,
    description: str = typer.Option("", "--description", help=say(_("What the group is for."))),
    directory: Path = DirOption,
) -> None:
    with _registry_session(directory) as (registry, session):
        info = service.add_group(
            session,
            member=MemberId.parse(member),
            code=code,
            description=description,
            signer=registry.checkpoint_signer(session),
        )
    out.print(say(_("Group {code} of {member} created."), code=info.code, member=info.member))


@group_app.command(
    "delete", help=say(_("Delete a local group, and the access rights granted to it."))
)
def group_delete(
    member: str = MemberArgument, code: str = CodeArgument, directory: Path = DirOption
) -> None:
    with _registry_session(directory) as (registry, session):
        service.delete_group(
            session,
            member=MemberId.parse(member),
            code=code,
            signer=registry.checkpoint_signer(session),
        )
    out.print(say(_("Group {code} of {member} deleted."), code=code, member=member))


@group_app.command("add", help=say(_("Put subsystems in a local group.")))
def group_add(
    member: str = MemberArgument,
    code: str = CodeArgument,
    clients: list[str] = typer.Argument(..., help=say(_("Subsystems to put in the group."))),
    directory: Path = DirOption,
) -> None:
    info = _change_group(directory, member, code, clients, service.add_group_member)
    out.print(_group_line(info, _("Group {code} of {member}: {clients}.")))


@group_app.command(
    "remove", help=say(_("Take subsystems out of a local group (their rights through it end)."))
)
def group_remove(
    member: str = MemberArgument,
    code: str = CodeArgument,
    clients: list[str] = typer.Argument(..., help=say(_("Subsystems to take out of the group."))),
    directory: Path = DirOption,
) -> None:
    info = _change_group(directory, member, code, clients, service.remove_group_member)
    out.print(_group_line(info, _("Group {code} of {member}: {clients}.")))


@group_app.command("list", help=say(_("List local groups and their subsystems.")))
def group_list(
    directory: Path = DirOption,
    member: str | None = typer.Option(None, "--member", help=say(_("Only this member's groups."))),
    as_json: bool = JsonOption,
) -> None:
    with _registry_session(directory) as (registry, session):
        items = service.list_groups(session, member=MemberId.parse(member) if member else None)
    _emit(items, as_json, lambda g: _group_line(g, "{member} {code}: {clients}"))


def _group_line(info: service.GroupInfo, template: str) -> str:
    """``template`` (marked with ``_()``) filled with the group's code, member and clients."""
    clients = ", ".join(info.clients) or say(_("(empty)"))
    return say(template, code=info.code, member=info.member, clients=clients)


# --- federation --------------------------------------------------------------------------------

federation_app = typer.Typer(
    help=say(_("Cross-border exchange: federated instances' shared parameters.")),
    no_args_is_help=True,
)
app.add_typer(federation_app, name="federation")


@federation_app.command(
    "sync",
    help=say(
        _(
            "Download a federated instance's shared parameters now, checked with the key the "
            "agreement pins; the next global configuration carries them to the gateways."
        )
    ),
)
def federation_sync(
    peer: str = typer.Argument(..., help=say(_("The federated instance, e.g. QA."))),
    url: str | None = typer.Option(
        None,
        "--url",
        help=say(_("Its registry's base URL (default: the one its agreement names).")),
    ),
    directory: Path = DirOption,
) -> None:
    instance, registry = _registry(directory)
    info = federation.refresh_peer(registry, peer=peer, base_url=url)
    instance.close()
    out.print(
        say(
            _(
                "Shared parameters of {peer} version {version} verified and kept "
                "(agreement {agreement}, valid until {until} UTC)."
            ),
            peer=info.peer,
            version=info.version,
            agreement=info.agreement_id,
            until=f"{info.expires_at:%Y-%m-%d %H:%M}",
        )
    )


@federation_app.command(
    "list", help=say(_("List the federated instances' shared parameters held."))
)
def federation_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    with _registry_session(directory) as (registry, session):
        items = federation.list_peer_confs(session)
    if as_json:
        out.print_json(json.dumps([dataclasses.asdict(i) for i in items], default=str))
        return
    _emit(
        items,
        False,
        lambda p: say(
            _("{peer}  v{version}  agreement {agreement}  until {until}"),
            peer=p.peer,
            version=p.version,
            agreement=p.agreement_id,
            until=p.expires_at,
        ),
    )


# --- gateways --------------------------------------------------------------------------------


@gateway_app.command(
    "add",
    help=say(_("Create a member's gateway node, its certificates and anchor, and register it.")),
)
def gateway_add(
    member: str = typer.Option(..., "--member", help=say(_("The member whose gateway this is."))),
    address: str = typer.Option(
        ..., "--address", help=say(_("host:port of its mutual-TLS listener."))
    ),
    registry_url: str | None = typer.Option(
        None, help=say(_("Where it downloads the global configuration (default: setting)."))
    ),
    directory: Path = DirOption,
) -> None:
    instance = _open(directory)
    info = provisioning.create_gateway(
        instance, member=MemberId.parse(member), address=address, registry_url=registry_url
    )
    instance.close()
    out.print(
        say(
            _("Gateway {name} of {member} created (peers reach it at {address})."),
            name=info.name,
            member=info.member,
            address=info.address,
        )
    )
    out.print(
        say(
            _("Next: jisr exchange gateway serve --dir {directory} --node {name}"),
            directory=directory,
            name=info.name,
        )
    )


@gateway_app.command("list", help=say(_("List gateways.")))
def gateway_list(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
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
        out.print(say(_("(none)")))


@gateway_app.command(
    "serve", help=say(_("Serve a gateway (client proxy and mutual-TLS listener) until Ctrl-C."))
)
def gateway_serve(
    node: str = typer.Option(..., "--node", "-n", help=say(_("The gateway node, e.g. gateway-x."))),
    port: int = typer.Option(8080, help=say(_("Port of the client proxy (plain HTTP, loopback)."))),
    peer_port: int | None = typer.Option(None, help=say(_("Port of the mutual-TLS listener."))),
    registry_url: str | None = typer.Option(
        None, help=say(_("Registry base URL (default: anchor)."))
    ),
    directory: Path = DirOption,
) -> None:
    from jisr.exchange.server import start_gateway

    instance = _open(directory)
    try:
        running = start_gateway(
            instance, node, port=port, peer_port=peer_port, registry_url=registry_url
        )
    except BaseException:  # e.g. another process serves the node (GatewayBusy)
        instance.close()
        raise
    # This process is the gateway: what start-up built (modules, the configuration, the
    # schema) lives as long as it does, so the cyclic collector stops scanning it, and runs
    # less often (a call allocates a few thousand short-lived objects, almost none cyclic).
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    out.print(
        say(
            _(
                "Gateway {node}: information systems call {url}/r1/…; peers reach {peers} "
                "(mutual TLS)."
            ),
            node=node,
            url=running.url,
            peers=f"https://{running.peer_host}:{running.peer_port}",
        )
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        out.print(say(_("Stopping.")))
    finally:
        running.stop()
        instance.close()


# --- global configuration and logs -----------------------------------------------------------


@globalconf_app.command(
    "show", help=say(_("Show the global configuration the registry publishes now."))
)
def globalconf_show(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
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
    out.print(
        say(
            _("Global configuration of {instance}, version {version}"),
            instance=document["instance"],
            version=document["version"],
        )
    )
    out.print(
        "  "
        + say(
            _("generated {generated}, expires {expires}"),
            generated=document["generated_at"],
            expires=document["expires_at"],
        )
    )
    for key, label in _GLOBALCONF_LABELS:
        out.print(f"  {say(label)}: {len(document[key])}")


# the global configuration's lists, each with the label a person reads
_GLOBALCONF_LABELS = (
    ("members", _("members")),
    ("subsystems", _("subsystems")),
    ("services", _("services")),
    ("gateways", _("gateways")),
    ("access_rights", _("access_rights")),
    ("revoked", _("revoked")),
)


def _gateway_logs(directory: Path) -> list[dict[str, Any]]:
    instance = _open(directory)
    results: list[dict[str, Any]] = []
    for node in instance.nodes.values():
        if not node.name.startswith("gateway-"):
            continue
        # what a serving gateway acknowledged, in its chain first
        wait_written(instance.settings, node.name, timeout=JOURNAL_WAIT_SECONDS)
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
        if r["ok"]:
            state = say(_("intact"))
        else:
            state = say(_("BROKEN: {problem}"), problem=r["findings"][0]["message"])
        out.print(
            say(
                _("{log}: {records} records, {state}"),
                log=f"{r['node']}/{MESSAGE_LOG}",
                records=r["records"],
                state=state,
            )
        )
    if not results:
        out.print(say(_("No gateway nodes in this instance.")))


@log_app.command(
    "verify",
    help=say(
        _(
            "Check the message log of every gateway node (--dir), or an archive (ARCHIVE); "
            "exit 1 naming the first broken record."
        )
    ),
)
def log_verify(
    archive_path: Path | None = typer.Argument(
        None,
        metavar="[ARCHIVE]",
        help=say(_("An archive made by `log export`, verified offline (instead of --dir).")),
    ),
    directory: Path | None = typer.Option(
        None,
        "--dir",
        "-d",
        help=say(_("The instance directory: verify its gateways' logs in place.")),
    ),
    trusted_ca: Path | None = typer.Option(
        None,
        "--ca",
        help=say(_("With ARCHIVE: the CA certificate (PEM) the archive's CA must equal.")),
    ),
    as_json: bool = JsonOption,
) -> None:
    if (archive_path is None) == (directory is None):
        raise typer.BadParameter(say(_("Give either ARCHIVE or --dir (one of them).")))
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
        out.print(
            say(
                _("Archive of instance {instance} from {since} until {until}; CA SHA-256 {sha256}"),
                instance=report.instance,
                since=report.since or say(_("the start")),
                until=report.until or say(_("the export")),
                sha256=report.ca_sha256,
            )
        )
        _print_gateways([g.__dict__ for g in report.gateways])
        for problem in report.manifest:
            out.print(say(_("BROKEN: {problem}"), problem=problem))
    if not report.ok:
        raise typer.Exit(1)


def _moment(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            say(_("{text} is not an ISO 8601 time"), text=repr(text)), param_hint=name
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@log_app.command(
    "export",
    help=say(
        _("Export the gateways' message logs (or a period) as an archive verifiable offline.")
    ),
)
def log_export(
    out_path: Path = typer.Option(
        ..., "--out", "-o", help=say(_("The archive to write (a ZIP file)."))
    ),
    node: list[str] | None = typer.Option(
        None,
        "--node",
        "-n",
        help=say(_("Only this gateway node (repeatable; default: every gateway).")),
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help=say(_("Start of the period, ISO 8601 (UTC if no offset), included.")),
    ),
    until: str | None = typer.Option(
        None, "--until", help=say(_("End of the period, ISO 8601 (UTC if no offset), excluded."))
    ),
    directory: Path = DirOption,
) -> None:
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
        if g.records:
            span = say(_("records {first}–{last}"), first=g.first_seq, last=g.last_seq)
        else:
            span = say(_("no records"))
        out.print(
            say(
                _("{log}: {span}, {checkpoints} checkpoints"),
                log=f"{g.node}/{MESSAGE_LOG}",
                span=span,
                checkpoints=g.checkpoints,
            )
        )
    out.print(
        say(
            _("Archive written to {path}; check it with: jisr exchange log verify FILE"),
            path=summary.path,
        )
    )
