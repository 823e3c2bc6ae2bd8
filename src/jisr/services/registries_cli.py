"""``jisr registries …``: an agency's registers (GovStack Digital Registries).

* ``init --dir D``: add the ``registers`` node to the instance (its database, migrated, and
  signing key); ``jisr serve --roles registers --host 127.0.0.1`` then serves the Data and
  Database APIs (never served by default: the node trusts the exchange gateway in front of it);
* ``create --dir D --schema FILE --name N --version V --code C [...]``: a registry database
  from a JSON Schema file;
* ``import --dir D NAME VERSION FILE``: records from a JSON Lines file (one object a line),
  all or none;
* ``list --dir D [--json]``: the databases with their record counts.

Commands open a session of the ``registers`` node and call ``jisr.services.registries``;
they record ``cli`` as the actor on the audit chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.orm import Session

from jisr.core.errors import InvalidInput
from jisr.core.i18n import _
from jisr.core.instance import Instance, Node
from jisr.services import registries

app = typer.Typer(
    help="Digital registries: registry databases with a JSON Schema, and their records.",
    no_args_is_help=True,
)

DirOption = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")
JsonOption = typer.Option(False, "--json", help="Print JSON.")
SchemaOption = typer.Option(..., "--schema", help="The JSON Schema file of the records.")
LinesArgument = typer.Argument(..., help="JSON Lines file: one record (a JSON object) a line.")
ACTOR = "cli"


def _auditor(node: Node, session: Session) -> registries.Auditor:
    return registries.node_auditor(node, session, ACTOR)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(
            _("{path} is not a readable JSON file: {reason}"), path=str(path), reason=str(error)
        ) from error


@app.command("init")
def init(directory: Path = DirOption) -> None:
    """Add the `registers` node to the instance (nothing changes if it is there)."""
    instance = Instance.open(directory)
    try:
        _node, added = registries.ensure_registers_node(instance, progress=typer.echo)
    finally:
        instance.close()
    typer.echo("registers node added" if added else "the registers node is already there")
    typer.echo(
        f"Serve it apart, behind the exchange gateway (never served by default): "
        f"jisr serve --dir {directory} --roles registers --host 127.0.0.1"
    )


@app.command("create")
def create(
    directory: Path = DirOption,
    schema: Path = SchemaOption,
    name: str = typer.Option(..., "--name", help="Registry name, as in /data/{name}/{version}."),
    version: str = typer.Option("1.0", "--version", help="Schema version."),
    code: str = typer.Option(..., "--code", help="Short code of the database, e.g. MA-BIRTHS."),
    catalog: str = typer.Option("", "--catalog", help="Catalogue the database belongs to."),
    group: str = typer.Option("", "--group", help="Group of the catalogue."),
    institution: str = typer.Option("", "--institution", help="The agency holding it."),
    description: str = typer.Option("", "--description", help="What it holds."),
    number_format: str | None = typer.Option(
        None, "--number-format", help="How new keys are numbered, e.g. '{code}-{indexNoByCode}'."
    ),
    personal_id: str | None = typer.Option(
        None, "--personal-id", help="JSON pointer to the data subject's id, e.g. /nationalId."
    ),
) -> None:
    """Create a registry database from a JSON Schema file."""
    loaded = _read_json(schema)
    flags = [{"name": registries.PERSONAL_ID_FLAG, "path": personal_id}] if personal_id else []
    instance = Instance.open(directory)
    try:
        node = instance.node(registries.REGISTERS_NODE)
        with node.session() as session:
            database = registries.create_database(
                session,
                name=name,
                version=version,
                code=code,
                schema=loaded,
                auditor=_auditor(node, session),
                group_name=group,
                catalog_name=catalog,
                institution=institution,
                description=description,
                number_format=number_format,
                schema_flags=flags,
            )
            typer.echo(f"registry {database.name} {database.version} created (id {database.id})")
    finally:
        instance.close()


@app.command("import")
def import_(
    name: str = typer.Argument(..., help="Registry name."),
    version: str = typer.Argument(..., help="Registry version."),
    path: Path = LinesArgument,
    directory: Path = DirOption,
) -> None:
    """Import records from a JSON Lines file: every line passes the schema or none is kept."""
    contents = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(
            _("{path} is not a readable text file: {reason}"), path=str(path), reason=str(error)
        ) from error
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            contents.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InvalidInput(
                _("Line {line} of {path} is not JSON: {reason}"),
                line=number,
                path=str(path),
                reason=error.msg,
            ) from error
    instance = Instance.open(directory)
    try:
        node = instance.node(registries.REGISTERS_NODE)
        with node.session() as session:
            database = registries.get_database(session, name, version)
            made = registries.create_records(
                session, database=database, contents=contents, auditor=_auditor(node, session)
            )
            typer.echo(f"{len(made)} records imported into {name} {version}")
    finally:
        instance.close()


@app.command("list")
def list_(directory: Path = DirOption, as_json: bool = JsonOption) -> None:
    """List the registry databases and how many records each holds."""
    instance = Instance.open(directory)
    try:
        node = instance.node(registries.REGISTERS_NODE)
        with node.session() as session:
            rows = [
                {
                    "id": d.id,
                    "name": d.name,
                    "version": d.version,
                    "code": d.code,
                    "catalog": d.catalog_name,
                    "institution": d.institution,
                    "records": registries.count_records(session, d),
                }
                for d in registries.list_databases(session)
            ]
    finally:
        instance.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        typer.echo(f"{row['id']}\t{row['name']}\t{row['version']}\t{row['code']}\t{row['records']}")
    if not rows:
        typer.echo("(none)")


__all__ = ["app"]
