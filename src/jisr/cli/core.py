"""Instance-level commands: init, serve, db, keys, audit, settings."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from jisr.core import db
from jisr.core.audit import service as audit
from jisr.core.crypto import jws, keystore
from jisr.core.errors import InvalidInput
from jisr.core.i18n import _, gettext
from jisr.core.instance import Instance, init_instance
from jisr.core.logging import configure_logging, get_logger
from jisr.core.settings import Environment, KeyAlgorithm, settings_reference

console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)
log = get_logger("jisr.cli")

DirOption = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")
NodeOption = typer.Option(
    None, "--node", "-n", help="Only this node (repeat for several); default: every node."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")

db_app = typer.Typer(help="The node databases: migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys of each node: list, rotate.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit logs: verify.", no_args_is_help=True)
settings_app = typer.Typer(
    help="Settings: show them, generate their reference.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    app.add_typer(settings_app, name="settings")


def init(
    directory: Path = DirOption,
    instance: str = typer.Option(
        "MA", "--instance", "-i", help="Instance code: the country, e.g. MA or QA."
    ),
    name: str | None = typer.Option(None, help="Human name of the instance."),
    environment: Environment = typer.Option(Environment.DEVELOPMENT, help="Environment."),
    nodes: str = typer.Option("registry,idp,portal", help="Comma-separated node names."),
    database_url: str | None = typer.Option(
        None, help="Database URL template with {node} (default: SQLite per node)."
    ),
    key_algorithm: KeyAlgorithm = typer.Option(KeyAlgorithm.ES256, help="Signing algorithm."),
) -> None:
    """Create an instance: settings, secrets, one database per node, keys and the CA.

    Refuses a directory that already holds an instance (or anything else), untouched.
    """
    node_names = [n.strip() for n in nodes.split(",") if n.strip()]
    with console.status("Creating the instance…") as status:
        created = init_instance(
            directory,
            code=instance,
            name=name,
            environment=environment,
            nodes=node_names,
            database_url=database_url,
            key_algorithm=key_algorithm,
            progress=lambda message: status.update(message),
        )
    created.close()
    out.print(
        f"Instance {created.code} created in {directory} (nodes: {', '.join(created.nodes)})."
    )
    out.print(f"Next: jisr serve --dir {directory}")


def serve(
    directory: Path = DirOption,
    roles: str | None = typer.Option(
        None,
        help="Comma-separated nodes to serve in this process (default: every node but "
        "`registers`, which trusts the exchange gateway in front of it and is served only "
        "when named, on an internal address: `--roles registers --host 127.0.0.1`).",
    ),
    host: str | None = typer.Option(None, help="Listen address (default: setting `host`)."),
    port: int | None = typer.Option(None, help="Port (default: setting `port`)."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
) -> None:
    """Serve the instance's nodes over HTTP until Ctrl-C."""
    import uvicorn

    from jisr.cli import cli_language
    from jisr.web.app import INTERNAL_ROLES, create_app, public_nodes

    instance = Instance.open(directory)
    role_list = parse_roles(roles)
    # unknown roles are refused before the port is bound
    nodes = instance.select(role_list) if role_list else public_nodes(instance)
    served = [node.name for node in nodes]
    listen_host = host or instance.settings.host
    listen_port = port or instance.settings.port
    configure_logging(instance.settings)
    out.print(
        f"Serving {instance.code} ({', '.join(served)}) on http://{listen_host}:{listen_port}"
    )
    internal = sorted(set(served) & INTERNAL_ROLES)
    left_out = sorted(set(instance.nodes) & INTERNAL_ROLES - set(served))
    if left_out:
        out.print(
            gettext(
                _(
                    "Not served: {roles} (internal; serve it apart, behind the exchange "
                    "gateway: --roles {roles} --host 127.0.0.1)."
                ),
                cli_language(),
            ).format(roles=",".join(left_out))
        )
    if internal:
        log.info("internal-roles-served", roles=internal, host=listen_host)
        if not is_loopback(listen_host):
            log.warning("internal-roles-on-non-loopback-address", roles=internal, host=listen_host)
            console.print(
                gettext(
                    _(
                        "Warning: {roles} trusts the client id its callers send; {host} is not "
                        "a loopback address: make sure only the exchange gateway can reach it."
                    ),
                    cli_language(),
                ).format(roles=",".join(internal), host=listen_host)
            )
    if workers > 1:
        os.environ["JISR_INSTANCE_DIR"] = str(directory)
        os.environ["JISR_ROLES"] = ",".join(role_list or [])
        uvicorn.run(
            "jisr.web.asgi:app_factory",
            factory=True,
            host=listen_host,
            port=listen_port,
            workers=workers,
            log_config=None,
            access_log=False,
        )
        return
    uvicorn.run(
        create_app(instance, roles=role_list),
        host=listen_host,
        port=listen_port,
        log_config=None,
        access_log=False,
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@db_app.command("upgrade")
def db_upgrade(directory: Path = DirOption, node: list[str] | None = NodeOption) -> None:
    """Apply pending migrations to each node's database."""
    instance = Instance.open(directory)
    for item in instance.select(node):
        db.ensure_database(item.database_url)
        before = db.current_revisions(item.engine)
        db.upgrade(item.engine)
        after = db.current_revisions(item.engine)
        state = (
            "already up to date"
            if before == after
            else f"{', '.join(sorted(before)) or 'empty'} → {', '.join(sorted(after))}"
        )
        out.print(f"{item.name}: {state}")
    instance.close()


@keys_app.command("list")
def keys_list(
    directory: Path = DirOption, node: list[str] | None = NodeOption, as_json: bool = JsonOption
) -> None:
    """List each node's keys: kid, purpose, algorithm, status."""
    instance = Instance.open(directory)
    rows: list[dict[str, Any]] = []
    for item in instance.select(node):
        with item.session() as session:
            for info in keystore.list_keys(session):
                rows.append(
                    {
                        "node": item.name,
                        "kid": info.kid,
                        "purpose": info.purpose,
                        "algorithm": info.algorithm,
                        "status": info.status,
                        "backend": info.backend,
                        "created_at": info.created_at.isoformat(),
                    }
                )
    instance.close()
    if as_json:
        out.print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("node", "kid", "purpose", "algorithm", "status", "created")
    for row in rows:
        table.add_row(
            row["node"],
            row["kid"],
            row["purpose"],
            row["algorithm"],
            row["status"],
            row["created_at"][:19],
        )
    out.print(table)


@keys_app.command("rotate")
def keys_rotate(
    directory: Path = DirOption,
    node: str = typer.Option(..., "--node", "-n", help="The node whose key to rotate."),
    purpose: str = typer.Option("signing", help="Key purpose (signing, ca…)."),
) -> None:
    """Make a new active key; the old one is kept to verify what it signed."""
    instance = Instance.open(directory)
    target = instance.node(node)
    with target.session() as session:
        info = keystore.rotate_key(session, target.keys, purpose=purpose)
        target.record(session, "key.rotated", {"kid": info.kid, "purpose": purpose})
    instance.close()
    out.print(
        f"{node}: new {purpose} key {info.kid} ({info.algorithm}); "
        "the previous one is retired and still verifies."
    )


@audit_app.command("verify")
def audit_verify(
    directory: Path = DirOption,
    node: list[str] | None = NodeOption,
    chain: str | None = typer.Option(None, help="Only this chain."),
    as_json: bool = JsonOption,
) -> None:
    """Check every audit chain of every node; exit 1 naming the first broken record."""
    instance = Instance.open(directory)
    reports: list[dict[str, Any]] = []
    broken = False
    for item in instance.select(node):
        with item.session() as session:
            verifier = jws.keystore_verifier(session)
            found = (
                [audit.verify_chain(session, chain, verifier=verifier)]
                if chain
                else audit.verify_all(session, verifier=verifier)
            )
            for report in found:
                first = report.findings[0] if report.findings else None
                broken |= not report.ok
                reports.append(
                    {
                        "node": item.name,
                        "chain": report.chain,
                        "ok": report.ok,
                        "records": report.records_checked,
                        "checkpoints": report.checkpoints_checked,
                        "first_problem": first.message if first else None,
                        "findings": [
                            {"seq": f.seq, "kind": f.kind, "message": f.message}
                            for f in report.findings
                        ],
                    }
                )
    instance.close()
    if as_json:
        out.print(json.dumps({"ok": not broken, "chains": reports}, ensure_ascii=False, indent=2))
    else:
        for row in reports:
            state = "intact" if row["ok"] else f"BROKEN: {row['first_problem']}"
            out.print(
                f"{row['node']}/{row['chain']}: {row['records']} records, "
                f"{row['checkpoints']} checkpoints, {state}"
            )
    if broken:
        raise typer.Exit(1)


@settings_app.command("docs")
def settings_docs(
    output: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
) -> None:
    """Print (or write) the settings reference in Markdown (docs/configuration.md)."""
    text = settings_reference()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        out.print(text, markup=False)


@settings_app.command("show")
def settings_show(directory: Path = DirOption) -> None:
    """Print the instance's effective settings (secrets hidden) as JSON."""
    instance = Instance.open(directory)
    values = json.loads(instance.settings.model_dump_json())
    out.print(json.dumps(values, ensure_ascii=False, indent=2))


def parse_roles(value: str | None) -> list[str] | None:
    if value is None:
        return None
    roles = [r.strip() for r in value.split(",") if r.strip()]
    if not roles:
        raise InvalidInput(_("--roles names no node."))
    return roles
