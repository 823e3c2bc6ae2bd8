"""``jisr ask``: a question to the assistant (a contract other checks rely on).

* ``jisr ask [--country MA|QA] [--json] "QUESTION"``: the answer as text, or with ``--json``
  as one JSON object ``{"answer", "language", "procedure", "candidates", "confidence",
  "citations"}``;
* ``jisr ask --json --batch``: JSON lines ``{"question": "...", "country": "MA"}`` on standard
  input (``country`` optional, ``--country`` as default), one JSON answer per line on standard
  output, in the same order; a line that is not such an object (not JSON, not UTF-8, a
  question that is not a string, a country other than MA or QA, a question over 20,000
  characters) gets ``{"error": "...", "line": N}`` in its place. Blank lines are skipped.

An empty, emoji-only or control-character question gets an answer asking for a question in
words; a question over 20,000 characters is refused with a plain sentence (exit status 1).
With ``assistant_llm_url`` set, answers go through the local language model
(``jisr.assistant.llm``) and fall back to the composed answer on any doubt.

The index is loaded from the cache, or built with a progress bar on standard error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import typer

from jisr.assistant import service
from jisr.assistant.errors import AssistantError
from jisr.assistant.index import Progress
from jisr.assistant.llm import LocalLLM
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


def _lines() -> Iterator[tuple[int, str | None]]:
    """Standard input's lines, numbered from 1; None for a line that is not UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes underneath
        yield from enumerate(sys.stdin, 1)
        return
    for number, raw in enumerate(stream, 1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None


def _batch(default_country: str | None, llm: LocalLLM | None) -> None:
    for number, line in _lines():
        if line is not None and not line.strip():
            continue
        try:
            if line is None:
                raise AssistantError(_("This line is not UTF-8 text."))
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("question", ""), str):
                raise AssistantError(_("Each line must be a JSON object with a question."))
            country = row.get("country") or default_country
            if country is not None and not isinstance(country, str):
                raise AssistantError(_("The country must be MA or QA."))
            answer = service.ask(row.get("question", ""), country=country, llm=llm)
            typer.echo(answer.model_dump_json())
        except (ValueError, RecursionError, JisrError) as error:
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
    settings = load_settings()
    configure_logging(settings)
    llm = LocalLLM.from_settings(settings)
    service.warm(_progress_bar())
    default_country = country.value if country else None
    if batch:
        _batch(default_country, llm)
        return
    answer = service.ask(question or "", country=default_country, llm=llm)
    if as_json:
        typer.echo(answer.model_dump_json())
        return
    typer.echo(answer.answer)
    for citation in answer.citations:
        typer.echo(f"[{citation.id}] {citation.title} — {citation.url}")


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


__all__ = ["ask", "register"]
