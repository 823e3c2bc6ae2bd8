"""Reading a register CSV file: every row checked before anything is written.

Format: UTF-8 (a byte-order mark is accepted), comma-separated, a header row naming the
columns in any order. Required: ``national_id, given_name_ar, family_name_ar,
given_name_latin, family_name_latin, birth_date (YYYY-MM-DD), birth_place, sex (M/F),
nationality (ISO 3166 alpha-2)``; optional: ``address, email, phone``. Unknown columns are
refused (a typo must not silently drop data).

``read_rows`` returns the prepared table rows or every refusal (line number, column,
reason), never a mix: ``service.import_csv`` inserts only when there is no refusal.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from pydantic import ValidationError

from jisr.core.i18n import _
from jisr.identity.errors import IdentityError, RowError
from jisr.identity.schemas import PersonCreate

REQUIRED = (
    "national_id",
    "given_name_ar",
    "family_name_ar",
    "given_name_latin",
    "family_name_latin",
    "birth_date",
    "birth_place",
    "sex",
    "nationality",
)
OPTIONAL = ("address", "email", "phone")
COLUMNS = REQUIRED + OPTIONAL

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases ``validate`` then ``insert``."""


@dataclass(frozen=True)
class ParsedRow:
    line: int
    values: dict[str, Any]


def read_rows(
    file: IO[str],
    prepare: Callable[[PersonCreate], dict[str, Any]],
    *,
    progress: Progress | None = None,
) -> tuple[list[ParsedRow], list[RowError]]:
    """Every row of ``file`` prepared with ``prepare``, or the list of what is wrong."""
    reader = csv.reader(file, strict=True)
    try:
        header = next(reader, None)
        records = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        return [], [
            RowError(reader.line_num, _("The CSV is malformed: {reason}"), params={"reason": error})
        ]
    except UnicodeDecodeError:
        return [], [RowError(1, _("The file is not UTF-8 text."))]
    header_errors = _check_header(header)
    if header_errors or header is None:
        return [], header_errors
    columns = [name.strip().lower().lstrip("\ufeff") for name in header]
    rows: list[ParsedRow] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    total = len(records)
    for done, (line, record) in enumerate(records, start=1):
        if progress is not None and (done % 500 == 0 or done == total):
            progress("validate", done, total)
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            errors.append(
                RowError(
                    line,
                    _("The row has {found} fields; the header has {expected}."),
                    params={"found": len(record), "expected": len(columns)},
                )
            )
            continue
        raw = {k: v.strip() for k, v in zip(columns, record, strict=True)}
        data = {k: v for k, v in raw.items() if v or k in REQUIRED}
        try:
            values = prepare(PersonCreate.model_validate(data))
        except ValidationError as invalid:
            for item in invalid.errors():
                column = str(item["loc"][0]) if item["loc"] else None
                errors.append(RowError(line, item["msg"], column=column))
            continue
        except IdentityError as refused:
            errors.append(RowError(line, refused.template, "national_id", refused.params))
            continue
        earlier = first_line.setdefault(values["national_id"], line)
        if earlier != line:
            errors.append(
                RowError(
                    line,
                    _("{national_id} already appears on line {first}."),
                    "national_id",
                    {"national_id": raw["national_id"], "first": earlier},
                )
            )
            continue
        rows.append(ParsedRow(line, values))
    return rows, errors


def _check_header(header: list[str] | None) -> list[RowError]:
    if not header:
        return [RowError(1, _("The file is empty: it needs a header row."))]
    names = [name.strip().lower().lstrip("\ufeff") for name in header]
    errors = []
    missing = [c for c in REQUIRED if c not in names]
    unknown = [n for n in names if n not in COLUMNS]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if missing:
        errors.append(
            RowError(1, _("Missing columns: {columns}."), params={"columns": ", ".join(missing)})
        )
    if unknown:
        errors.append(
            RowError(1, _("Unknown columns: {columns}."), params={"columns": ", ".join(unknown)})
        )
    if duplicated:
        errors.append(
            RowError(
                1, _("Repeated columns: {columns}."), params={"columns": ", ".join(duplicated)}
            )
        )
    return errors
