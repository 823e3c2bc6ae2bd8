"""``jisr identity …``: the population register and the OpenID Connect clients.

``jisr identity person add|show|search|deceased|import --dir D`` work on the instance's idp
node through ``jisr.identity.service`` (one transaction per command); ``--json`` prints JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from sqlalchemy.orm import Session

from jisr.core.i18n import _, negotiate
from jisr.core.instance import Instance, Node
from jisr.identity import service
from jisr.identity.errors import ImportRejected, InvalidPerson
from jisr.identity.schemas import DeathRecord, PersonCreate, PersonRead

Model = TypeVar("Model", bound=BaseModel)

app = typer.Typer(
    help="Digital identity: the population register and OIDC clients.", no_args_is_help=True
)


# --- jisr identity person … : the population register --------------------------------------

person_app = typer.Typer(
    help="The population register: add, show, search and import persons.", no_args_is_help=True
)
app.add_typer(person_app, name="person")

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False)
_DIR = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_SHOWN = (
    ("given_name_ar", "family_name_ar"),
    ("given_name_latin", "family_name_latin"),
    ("birth_date", "birth_place"),
    ("sex", "nationality"),
    ("status", "death_date"),
    ("address",),
    ("email", "phone"),
)


@contextmanager
def _idp(directory: Path) -> Iterator[tuple[Node, Session]]:
    instance = Instance.open(directory)
    try:
        idp = instance.node("idp")
        with idp.session() as session:
            yield idp, session
    finally:
        instance.close()


def _read(person: Any) -> PersonRead:
    return PersonRead.model_validate(person)


def _print_json(value: Any) -> None:
    _out.print_json(json.dumps(value, ensure_ascii=False))


def _print_person(person: PersonRead) -> None:
    _out.print(f"[bold]{person.national_id_display}[/bold]")
    data = person.model_dump(mode="json")
    for group in _SHOWN:
        _out.print(
            "  " + "   ".join(f"{f}: {data[f] if data[f] is not None else '-'}" for f in group)
        )


def _language() -> str:
    return negotiate(os.environ.get("JISR_LANGUAGE", "").replace("_", "-"), default="en")


def _validated(model: type[Model], values: dict[str, Any]) -> Model:
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as invalid:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise InvalidPerson(_("The person's data is not valid: {reason}"), reason=reasons) from None


@person_app.command("add")
def person_add(
    directory: Path = _DIR,
    national_id: str = typer.Option(..., help="MA:AB123456 or QA:28435612345."),
    given_name_ar: str = typer.Option(..., help="Given name(s) in Arabic script."),
    family_name_ar: str = typer.Option(..., help="Family name in Arabic script."),
    given_name_latin: str = typer.Option(..., help="Given name(s) in Latin script."),
    family_name_latin: str = typer.Option(..., help="Family name in Latin script."),
    birth_date: str = typer.Option(..., help="Date of birth, YYYY-MM-DD."),
    birth_place: str = typer.Option(..., help="Place of birth."),
    sex: str = typer.Option(..., help="M or F."),
    nationality: str = typer.Option(..., help="ISO 3166 alpha-2 code, e.g. MA."),
    address: str = typer.Option("", help="Postal address."),
    email: str | None = typer.Option(None, help="E-mail address."),
    phone: str | None = typer.Option(None, help="Phone number, e.g. +212600000000."),
    as_json: bool = _JSON,
) -> None:
    """Add one person to the register (recorded on its audit chain)."""
    data = _validated(PersonCreate, dict(locals()) | {"directory": None, "as_json": None})
    with _idp(directory) as (idp, session):
        person = _read(
            service.create_person(session, data, actor="cli", signer=idp.checkpoint_signer(session))
        )
    if as_json:
        _print_json(person.model_dump(mode="json"))
    else:
        _out.print(f"Added {person.national_id_display}.")


@person_app.command("show")
def person_show(
    national_id: str = typer.Argument(..., help="MA:AB123456 or MAAB123456."),
    directory: Path = _DIR,
    as_json: bool = _JSON,
) -> None:
    """Show one person."""
    with _idp(directory) as (_node, session):
        person = _read(service.get_person_by_national_id(session, national_id))
    if as_json:
        _print_json(person.model_dump(mode="json"))
    else:
        _print_person(person)


@person_app.command("search")
def person_search(
    query: str = typer.Argument(..., help="An identifier, or a name in Arabic or Latin script."),
    directory: Path = _DIR,
    country: str | None = typer.Option(None, help="Only this country's identifiers (MA, QA)."),
    limit: int = typer.Option(20, min=1, max=service.MAX_LIMIT, help="At most this many."),
    as_json: bool = _JSON,
) -> None:
    """Find persons by identifier or by name, spelling variants included."""
    with _idp(directory) as (_node, session):
        found = [
            _read(p) for p in service.search_persons(session, query, country=country, limit=limit)
        ]
    if as_json:
        _print_json([p.model_dump(mode="json") for p in found])
        return
    if not found:
        _out.print("No person found.")
    for p in found:
        _out.print(
            f"{p.national_id_display}  {p.given_name_latin} {p.family_name_latin}  "
            f"{p.given_name_ar} {p.family_name_ar}  {p.birth_date}  {p.status}"
        )


@person_app.command("deceased")
def person_deceased(
    national_id: str = typer.Argument(..., help="MA:AB123456 or MAAB123456."),
    death_date: str = typer.Option(..., "--date", help="Date of death, YYYY-MM-DD."),
    directory: Path = _DIR,
) -> None:
    """Record a person's death."""
    record = _validated(DeathRecord, {"death_date": death_date})
    with _idp(directory) as (idp, session):
        service.mark_deceased(
            session,
            national_id,
            death_date=record.death_date,
            actor="cli",
            signer=idp.checkpoint_signer(session),
        )
    _out.print(f"Recorded the death of {national_id} on {record.death_date}.")


@person_app.command("import")
def person_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The CSV file."),
    directory: Path = _DIR,
    skip_existing: bool = typer.Option(
        False, help="Skip identifiers already registered instead of refusing the file."
    ),
    as_json: bool = _JSON,
) -> None:
    """Import persons from a CSV file: every row is checked first; one bad row and nothing
    is imported (each bad row is listed with its line)."""
    columns = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with columns as bar, file.open(encoding="utf-8-sig", newline="") as handle:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done)

            with _idp(directory) as (idp, session):
                report = service.import_csv(
                    session,
                    handle,
                    progress=progress,
                    skip_existing=skip_existing,
                    actor="cli",
                    signer=idp.checkpoint_signer(session),
                )
    except ImportRejected as rejected:
        language = _language()
        if as_json:
            _print_json(
                {
                    "imported": 0,
                    "errors": [
                        asdict(e) | {"message": e.message(language)} for e in rejected.errors
                    ],
                }
            )
        else:
            for error in rejected.errors:
                _err.print(error.message(language))
        raise
    if as_json:
        _print_json(asdict(report))
    else:
        _out.print(
            f"Imported {report.imported} person(s) from {report.rows} row(s); "
            f"{report.skipped} already registered were skipped."
        )


# --- jisr identity client … : OpenID Connect relying parties ----------------------------------

from jisr.identity.oidc.cli import client_app  # noqa: E402

app.add_typer(client_app, name="client")
