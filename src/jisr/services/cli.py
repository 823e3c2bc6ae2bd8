"""``jisr services …``: the catalogue of administrative procedures.

The command names and ``--json`` outputs are a contract other checks rely on:

* ``list [--country MA|QA] [--json]``: ``--json`` prints a JSON array of the catalogue's
  procedures, each the whole entry (at least ``id``, ``country`` and ``title`` with ``ar``,
  ``fr``, ``en``), ordered by country then id;
* ``show ID [--json]``: one procedure; ``--json`` prints the whole entry as an object;
* ``stats [--country MA|QA] [--procedure ID] [--json] [--dir D]``: the simplification
  figures from the applications of the instance's ``portal`` node; ``--json`` prints an
  object ``{"overall": {...}, "procedures": [{...}, ...]}`` whose figures are
  ``procedure_id``, ``country``, ``documents_required``, ``documents_fetchable``,
  ``applications``, ``submitted``, ``decided``, ``approved``, ``rejected``, ``sent_back``,
  ``documents_asked``, ``documents_fetched``, ``visits_avoided``, ``median_decision_hours``.

The catalogue is files shipped with the code: ``list`` and ``show`` need no instance
directory; ``stats`` reads the instance (``--dir``, else ``JISR_INSTANCE_DIR`` or the
settings' ``instance_dir``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from jisr.core.instance import Instance
from jisr.core.settings import get_settings
from jisr.services import applications, service
from jisr.services.schemas import Procedure

app = typer.Typer(
    help="Online procedures: the catalogue, applications' figures.", no_args_is_help=True
)

_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
_LANGUAGE = typer.Option("en", "--language", "-l", help="Language of the text output: ar, fr, en.")


class CountryChoice(StrEnum):
    MA = "MA"
    QA = "QA"


def _dump(procedure: Procedure) -> dict[str, Any]:
    return procedure.model_dump(mode="json", exclude_none=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=None))


@app.command("list")
def list_(
    country: CountryChoice | None = typer.Option(None, "--country", help="MA or QA."),
    as_json: bool = _JSON,
    language: str = _LANGUAGE,
) -> None:
    """List the procedures of the catalogue."""
    procedures = service.list_procedures(country.value if country else None)
    if as_json:
        _print_json([_dump(p) for p in procedures])
        return
    for procedure in procedures:
        typer.echo(f"{procedure.id}\t{procedure.country}\t{procedure.title.get(language)}")


@app.command("show")
def show(
    procedure_id: str = typer.Argument(..., metavar="ID", help="e.g. ma-residence-certificate."),
    as_json: bool = _JSON,
    language: str = _LANGUAGE,
) -> None:
    """Show one procedure: agency, documents, steps, fees, time, channels."""
    procedure = service.get_procedure(procedure_id)
    if as_json:
        _print_json(_dump(procedure))
        return
    say = typer.echo
    say(f"{procedure.title.get(language)} ({procedure.id}, {procedure.country})")
    say(procedure.description.get(language))
    member = f" [{procedure.agency.member}]" if procedure.agency.member else ""
    say(f"Agency: {procedure.agency.name.get(language)}{member}")
    say(f"Eligibility: {procedure.eligibility.get(language)}")
    say("Documents:")
    for document in procedure.required_documents:
        via = f" (fetched: {document.evidence_service})" if document.evidence_service else ""
        say(f"  - {document.name.get(language)}{via}")
    say("Steps:")
    for number, step in enumerate(procedure.steps, 1):
        say(f"  {number}. {step.get(language)}")
    fees = procedure.fees
    if fees.unknown:
        say(f"Fees: unknown ({fees.note.get(language) if fees.note else ''})")
    else:
        note = f" ({fees.note.get(language)})" if fees.note else ""
        say(f"Fees: {fees.amount:g} {fees.currency}{note}")
    time = procedure.processing_time
    shown = time.text or time.note
    prefix = "unknown: " if time.unknown else ""
    say(f"Processing time: {prefix}{shown.get(language) if shown else ''}")
    say(f"Channels: {', '.join(procedure.channels)}")
    if procedure.issued_credential:
        say(f"Issues: {procedure.issued_credential}")
    if procedure.legal_basis:
        say(f"Legal basis: {'; '.join(procedure.legal_basis)}")
    say(f"Sources: {', '.join(procedure.sources)}")
    for item in procedure.uncertain:
        say(f"Uncertain: {item.field}: {item.note}")


@app.command("stats")
def stats(
    country: CountryChoice | None = typer.Option(None, "--country", help="MA or QA."),
    procedure: list[str] | None = typer.Option(
        None, "--procedure", help="Only this procedure (repeatable)."
    ),
    as_json: bool = _JSON,
    directory: Path | None = typer.Option(
        None,
        "--dir",
        "-d",
        envvar="JISR_INSTANCE_DIR",
        help="The instance directory (made by `jisr init`); default: the settings'.",
    ),
) -> None:
    """Simplification figures: documents asked versus fetched once-only, visits avoided,
    median time from submission to decision, per procedure and overall."""
    for wanted in procedure or ():
        service.get_procedure(wanted)
    instance = Instance.open(directory or get_settings().instance_dir)
    try:
        with instance.node("portal").session() as session:
            figures = applications.simplification_figures(
                session, country=country.value if country else None, procedure_ids=procedure
            )
    finally:
        instance.close()
    if as_json:
        _print_json(figures.as_dict())
        return
    say = typer.echo
    say(
        "procedure\trequired\tfetchable\tapplications\tasked\tfetched\tvisits_avoided"
        "\tmedian_decision_hours"
    )
    for f in [*figures.procedures, figures.overall]:
        median = "-" if f.median_decision_hours is None else f"{f.median_decision_hours:g}"
        say(
            f"{f.procedure_id}\t{f.documents_required}\t{f.documents_fetchable}\t"
            f"{f.applications}\t{f.documents_asked}\t{f.documents_fetched}\t"
            f"{f.visits_avoided}\t{median}"
        )


__all__ = ["app"]
