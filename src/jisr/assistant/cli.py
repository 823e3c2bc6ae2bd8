"""``jisr ask``: a question to the assistant (a contract other checks rely on).

* ``jisr ask [--country MA|QA] [--json] "QUESTION"``: the answer as text, or with ``--json``
  as one JSON object ``{"answer", "language", "procedure", "candidates", "confidence",
  "citations"}``;
* ``jisr ask --json --batch``: JSON lines ``{"question": "...", "country": "MA"}`` on standard
  input (``country`` optional, ``--country`` as default), one JSON answer per line on standard
  output, in the same order; a line that is not such an object gets
  ``{"error": "...", "line": N}`` in its place. Blank lines are skipped.

The index is loaded from the cache, or built with a progress bar on standard error.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer

from jisr.assistant import service
from jisr.assistant.errors import AssistantError
from jisr.assistant.index import Progress
from jisr.core.errors import JisrError
from jisr.core.i18n import _
from jisr.core.logging import configure_logging
from jisr.core.settings import load_settings


class CountryChoice(StrEnum):
    MA = "MA"
    QA = "QA"


def _progress_bar() -> Progress:
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = typer.progressbar(
                length=total, label="Building the assistant index", file=sys.stderr
            )
            bar.__enter__()
            state["bar"] = bar
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return update


def _batch(default_country: str | None) -> None:
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("question", ""), str):
                raise AssistantError(_("Each line must be a JSON object with a question."))
            country = row.get("country") or default_country
            answer = service.ask(row.get("question", ""), country=country)
            typer.echo(answer.model_dump_json())
        except (ValueError, JisrError) as error:
            message = error.message("en") if isinstance(error, JisrError) else str(error)
            typer.echo(json.dumps({"error": message, "line": number}, ensure_ascii=False))


def ask(
    question: str | None = typer.Argument(None, metavar="QUESTION", help="The question."),
    country: CountryChoice | None = typer.Option(None, "--country", help="MA or QA."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    batch: bool = typer.Option(
        False, "--batch", help="Read JSON lines of questions on stdin (with --json)."
    ),
) -> None:
    """Ask the assistant about an administrative procedure (answers from the catalogue)."""
    if batch and not as_json:
        raise typer.BadParameter("--batch writes JSON lines: add --json.")
    if batch and question is not None:
        raise typer.BadParameter("--batch reads the questions on stdin: give no QUESTION.")
    # standard output carries answers only (JSON lines with --batch): logs go to stderr
    configure_logging(load_settings())
    service.warm(_progress_bar())
    default_country = country.value if country else None
    if batch:
        _batch(default_country)
        return
    answer = service.ask(question or "", country=default_country)
    if as_json:
        typer.echo(answer.model_dump_json())
        return
    typer.echo(answer.answer)
    for citation in answer.citations:
        typer.echo(f"[{citation.id}] {citation.title} — {citation.url}")


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


__all__ = ["ask", "register"]
