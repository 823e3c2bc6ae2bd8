"""CSV import: all or nothing, each bad row named by its line, and fast in bulk."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from register_factories import FATIMA, MOHAMMED, person_create
from sqlalchemy.orm import Session

from jisr.core.audit import AuditRecord
from jisr.identity import service
from jisr.identity._import import COLUMNS
from jisr.identity.errors import ImportRejected
from jisr.identity.models import Person

pytestmark = pytest.mark.db


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def moroccan(number: int, **overrides: Any) -> dict[str, Any]:
    return {**FATIMA, "national_id": f"MA:K{number:06d}", **overrides}


def count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Person)) or 0


def rejected(session: Session, text: str, **kwargs: Any) -> list[tuple[int, str | None, str]]:
    before = count(session)
    with pytest.raises(ImportRejected) as refused:
        service.import_csv(session, io.StringIO(text), **kwargs)
    assert count(session) == before, "a rejected file changed the register"
    assert refused.value.status_code == 400
    return [(e.line, e.column, e.message()) for e in refused.value.errors]


class TestImport:
    def test_imports_every_row_with_history(self, session: Session) -> None:
        seen: list[tuple[str, int, int]] = []
        report = service.import_csv(
            session,
            io.StringIO(csv_text([FATIMA, MOHAMMED, moroccan(1, email="")])),
            progress=lambda *args: seen.append(args),
        )
        assert report == service.ImportReport(rows=3, imported=3, skipped=0)
        assert service.get_person_by_national_id(session, "QA:28435612345").birth_place == "Doha"
        assert service.search_persons(session, "فاطمه العمراني")[0].national_id == "MAAB123456"
        assert ("validate", 3, 3) in seen and ("insert", 3, 3) in seen
        record = session.scalars(
            sa.select(AuditRecord).where(AuditRecord.subject == "MAK000001")
        ).one()
        assert record.chain == service.CHAIN
        assert json.loads(record.data)["source"] == "import"

    def test_columns_in_any_order_bom_and_blank_lines(self, session: Session) -> None:
        columns = list(reversed(COLUMNS))
        text = "\ufeff" + csv_text([FATIMA], columns) + "\n,,,,,,,,,,,,\n"
        assert service.import_csv(session, io.StringIO(text)).imported == 1

    def test_header_only(self, session: Session) -> None:
        assert service.import_csv(session, io.StringIO(csv_text([]))).rows == 0

    def test_skip_existing(self, session: Session) -> None:
        service.create_person(session, person_create())
        report = service.import_csv(
            session, io.StringIO(csv_text([FATIMA, MOHAMMED])), skip_existing=True
        )
        assert (report.imported, report.skipped) == (1, 1)


class TestRefusals:
    def test_each_bad_row_named_and_nothing_imported(self, session: Session) -> None:
        rows = [
            moroccan(1),
            moroccan(2, national_id="MA:12"),
            moroccan(3, birth_date="12/04/1990"),
            moroccan(4, given_name_ar="Fatima"),
            moroccan(5),
            moroccan(6, national_id="MA:K000001"),
            {**MOHAMMED, "birth_date": "1990-01-01"},
            moroccan(8, sex=""),
        ]
        errors = rejected(session, csv_text(rows))
        assert [(line, column) for line, column, _ in errors] == [
            (3, "national_id"),
            (4, "birth_date"),
            (5, "given_name_ar"),
            (7, "national_id"),
            (8, "national_id"),
            (9, "sex"),
        ]
        assert "MA:12 is not a Moroccan CNIE number" in errors[0][2]
        assert "already appears on line 2" in errors[3][2]
        assert "encodes the birth year 1984" in errors[4][2]
        assert errors[0][2].startswith("line 3 (national_id): ")

    def test_summary_sentence(self, session: Session) -> None:
        with pytest.raises(ImportRejected) as refused:
            service.import_csv(session, io.StringIO(csv_text([moroccan(1, sex="?")])))
        assert str(refused.value) == (
            "The file was not imported: 1 problem(s), the first on line 2. Nothing was changed."
        )
        assert refused.value.errors[0].message("fr").startswith("ligne 2 (sex)")

    def test_already_registered(self, session: Session) -> None:
        service.create_person(session, person_create())
        errors = rejected(session, csv_text([MOHAMMED, FATIMA]))
        assert errors == [
            (
                3,
                "national_id",
                "line 3 (national_id): A person with identifier MA:AB123456 is already "
                "in the register.",
            )
        ]

    @pytest.mark.parametrize(
        "text,message",
        [
            ("", "The file is empty"),
            ("national_id,given_name_ar\nMA:AB123456,x\n", "Missing columns: family_name_ar"),
            (csv_text([FATIMA], [*COLUMNS, "religion"]), "Unknown columns: religion"),
            (csv_text([FATIMA], [*COLUMNS, "sex"]), "Repeated columns: sex"),
        ],
    )
    def test_bad_header(self, session: Session, text: str, message: str) -> None:
        errors = rejected(session, text)
        assert errors[0][0] == 1
        assert message in errors[0][2]

    def test_wrong_number_of_fields(self, session: Session) -> None:
        text = csv_text([FATIMA]) + "MA:K000001,too,few\n"
        assert rejected(session, text) == [
            (3, None, "line 3: The row has 3 fields; the header has 12.")
        ]

    def test_malformed_csv(self, session: Session) -> None:
        text = csv_text([FATIMA]) + 'MA:K000001,"unterminated\n'
        errors = rejected(session, text)
        assert "The CSV is malformed" in errors[0][2]

    def test_not_utf8(self, session: Session, tmp_path: Any) -> None:
        path = tmp_path / "latin1.csv"
        data = csv_text([moroccan(1, birth_place="Fès")]).encode("utf-8")
        path.write_bytes(data.replace("è".encode(), b"\xe8"))
        with path.open(encoding="utf-8") as handle, pytest.raises(ImportRejected) as refused:
            service.import_csv(session, handle)
        assert "not UTF-8" in refused.value.errors[0].message()


def test_ten_thousand_rows_in_seconds(session: Session) -> None:
    rows = [moroccan(n, given_name_latin=f"Name{n}") for n in range(10_000)]
    text = csv_text(rows)
    started = time.perf_counter()
    report = service.import_csv(session, io.StringIO(text))
    elapsed = time.perf_counter() - started
    assert report.imported == 10_000
    assert elapsed < 30, f"importing 10,000 rows took {elapsed:.1f}s"
    started = time.perf_counter()
    found = service.search_persons(session, "Al-Amrani", limit=5)
    assert len(found) == 5
    assert time.perf_counter() - started < 1
