"""The register service: create, read, update with history, death, search."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from register_factories import FATIMA, MOHAMMED, person_create
from sqlalchemy.orm import Session

from jisr.core.audit import AuditRecord
from jisr.identity import service
from jisr.identity.errors import (
    InvalidNationalId,
    InvalidPerson,
    PersonAlreadyDeceased,
    PersonAlreadyExists,
    PersonNotFound,
)
from jisr.identity.schemas import PersonCreate, PersonUpdate

pytestmark = pytest.mark.db


def history(session: Session, national_id: str) -> list[tuple[str, dict[str, object]]]:
    records = session.scalars(
        sa.select(AuditRecord)
        .where(AuditRecord.chain == service.CHAIN, AuditRecord.subject == national_id)
        .order_by(AuditRecord.seq)
    )
    return [(r.event, json.loads(r.data)) for r in records]


class TestCreate:
    def test_create_and_read_in_both_forms(self, session: Session) -> None:
        person = service.create_person(session, person_create(), actor="test")
        assert person.national_id == "MAAB123456"
        assert person.country == "MA"
        assert person.status == "alive"
        assert person.name_key_latin == "ftm zhr amrn"
        for form in ("MA:AB123456", "maab123456", "ma: ab 123456"):
            assert service.get_person_by_national_id(session, form) is person
        event, data = history(session, "MAAB123456")[0]
        assert event == "person.created"
        assert data["fields"]["birth_date"] == "1990-04-12"  # type: ignore[index]

    def test_duplicate_refused(self, session: Session) -> None:
        service.create_person(session, person_create())
        with pytest.raises(PersonAlreadyExists) as refused:
            service.create_person(session, person_create(national_id="maab123456"))
        assert refused.value.params["national_id"] == "MA:AB123456"
        assert refused.value.status_code == 409

    @pytest.mark.parametrize("bad", ["AB123456", "MA:A12", "QA:1234", "XX:AB123456"])
    def test_bad_identifier_refused(self, session: Session, bad: str) -> None:
        with pytest.raises(InvalidNationalId):
            service.create_person(session, person_create(national_id=bad))
        assert service.search_persons(session, "Fatima") == []

    def test_qid_year_must_match_birth_date(self, session: Session) -> None:
        with pytest.raises(InvalidNationalId) as refused:
            service.create_person(session, person_create(MOHAMMED, birth_date="1985-01-01"))
        assert "encodes the birth year 1984" in str(refused.value)
        assert service.create_person(session, person_create(MOHAMMED)).country == "QA"

    @pytest.mark.parametrize(
        "field,value",
        [
            ("given_name_ar", "Fatima"),
            ("family_name_latin", "العمراني"),
            ("given_name_latin", "  "),
            ("birth_date", "2999-01-01"),
            ("birth_date", "1850-01-01"),
            ("sex", "X"),
            ("nationality", "MAR"),
            ("email", "not-an-address"),
            ("phone", "call me"),
        ],
    )
    def test_bad_fields_refused(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError) as refused:
            person_create(**{field: value})
        assert refused.value.errors()[0]["loc"][0] == field

    def test_unknown_field_refused(self) -> None:
        with pytest.raises(ValidationError):
            PersonCreate.model_validate({**FATIMA, "religion": "x"})


class TestGet:
    def test_unknown_person(self, session: Session) -> None:
        with pytest.raises(PersonNotFound) as refused:
            service.get_person_by_national_id(session, "MAZZ999999")
        assert "No person with identifier MA:ZZ999999." == str(refused.value)
        assert service.find_person(session, "MA:ZZ999999") is None

    def test_malformed_identifier(self, session: Session) -> None:
        with pytest.raises(InvalidNationalId):
            service.get_person_by_national_id(session, "nonsense")


class TestUpdate:
    def test_changes_recorded_old_and_new(self, session: Session) -> None:
        service.create_person(session, person_create())
        changes = PersonUpdate(address="3 rue Oqba, Agdal, Rabat", family_name_latin="Amrani")
        person = service.update_person(session, "MA:AB123456", changes, actor="clerk-7")
        assert person.address == "3 rue Oqba, Agdal, Rabat"
        assert person.name_key_latin == "ftm zhr amrn"
        event, data = history(session, "MAAB123456")[-1]
        assert event == "person.updated"
        assert data == {
            "changes": {
                "address": ["12 avenue Mohammed V, Rabat", "3 rue Oqba, Agdal, Rabat"],
                "family_name_latin": ["El Amrani", "Amrani"],
            }
        }

    def test_name_change_updates_keys(self, session: Session) -> None:
        service.create_person(session, person_create())
        service.update_person(session, "MAAB123456", PersonUpdate(given_name_ar="خديجة"))
        assert [p.national_id for p in service.search_persons(session, "خديجه")] == ["MAAB123456"]
        assert service.search_persons(session, "فاطمة") == []

    def test_no_change_writes_no_history(self, session: Session) -> None:
        service.create_person(session, person_create())
        service.update_person(session, "MAAB123456", PersonUpdate(birth_place="Rabat"))
        assert [e for e, _ in history(session, "MAAB123456")] == ["person.created"]

    def test_unknown_person(self, session: Session) -> None:
        with pytest.raises(PersonNotFound):
            service.update_person(session, "MA:ZZ999999", PersonUpdate(address="x"))

    def test_required_field_cannot_be_cleared(self) -> None:
        with pytest.raises(ValidationError):
            PersonUpdate.model_validate({"given_name_latin": None})

    def test_optional_field_can_be_cleared(self, session: Session) -> None:
        service.create_person(session, person_create(email="fatima@example.ma"))
        person = service.update_person(session, "MAAB123456", PersonUpdate(email=None))
        assert person.email is None

    def test_qid_birth_year_kept_consistent(self, session: Session) -> None:
        service.create_person(session, person_create(MOHAMMED))
        with pytest.raises(InvalidNationalId):
            service.update_person(
                session, "QA28435612345", PersonUpdate(birth_date=dt.date(1990, 1, 1))
            )


class TestMarkDeceased:
    def test_once(self, session: Session) -> None:
        service.create_person(session, person_create())
        person = service.mark_deceased(session, "MAAB123456", death_date=dt.date(2024, 5, 1))
        assert (person.status, person.death_date) == ("deceased", dt.date(2024, 5, 1))
        assert history(session, "MAAB123456")[-1] == (
            "person.deceased",
            {"death_date": "2024-05-01"},
        )
        with pytest.raises(PersonAlreadyDeceased):
            service.mark_deceased(session, "MAAB123456", death_date=dt.date(2024, 5, 2))

    @pytest.mark.parametrize("date", [dt.date(1980, 1, 1), dt.date(2999, 1, 1)])
    def test_impossible_date(self, session: Session, date: dt.date) -> None:
        service.create_person(session, person_create())
        with pytest.raises(InvalidPerson):
            service.mark_deceased(session, "MAAB123456", death_date=date)
        assert service.get_person_by_national_id(session, "MAAB123456").status == "alive"

    def test_unknown_person(self, session: Session) -> None:
        with pytest.raises(PersonNotFound):
            service.mark_deceased(session, "MAZZ999999", death_date=dt.date(2020, 1, 1))


class TestSearch:
    @pytest.fixture(autouse=True)
    def people(self, session: Session) -> None:
        service.create_person(session, person_create())
        service.create_person(session, person_create(MOHAMMED))
        for number, (given_ar, given) in enumerate(
            [("محمد", "Mohamed"), ("يوسف", "Youssef"), ("خديجة", "Khadija")], start=1
        ):
            service.create_person(
                session,
                person_create(
                    national_id=f"MA:BE{number:06d}",
                    given_name_ar=given_ar,
                    family_name_ar="بناني",
                    given_name_latin=given,
                    family_name_latin="Bennani",
                ),
            )

    def ids(self, session: Session, query: str, **kwargs: object) -> list[str]:
        return [p.national_id for p in service.search_persons(session, query, **kwargs)]  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "query",
        [
            "فاطمه الزهرا العمراني",
            "فَاطِمَة العمراني",
            "العمرانى",
            "Fatema Zahra El-Amrani",
            "fatima amrani",
            "FATIMAH",
            "ma:ab123456",
            "MAAB123456",
        ],
    )
    def test_finds_fatima(self, session: Session, query: str) -> None:
        assert self.ids(session, query) == ["MAAB123456"]

    def test_bare_number_with_country(self, session: Session) -> None:
        assert self.ids(session, "AB123456", country="ma") == ["MAAB123456"]

    def test_variants_across_persons(self, session: Session) -> None:
        assert set(self.ids(session, "Muhammad")) == {"QA28435612345", "MABE000001"}
        assert self.ids(session, "Muhammad", country="QA") == ["QA28435612345"]
        assert self.ids(session, "Yusuf Benani") == ["MABE000002"]
        assert self.ids(session, "Khadidja") == ["MABE000003"]
        assert self.ids(session, "محمد الكوارى") == ["QA28435612345"]

    def test_family_name_lists_all(self, session: Session) -> None:
        assert len(self.ids(session, "bennani")) == 3
        assert len(self.ids(session, "bennani", limit=2)) == 2

    def test_exact_key_ranks_first(self, session: Session) -> None:
        service.create_person(
            session,
            person_create(
                national_id="MA:C123456",
                given_name_ar="محمدين",
                given_name_latin="Mohammedine",
                family_name_latin="Bennani",
                family_name_ar="بناني",
            ),
        )
        assert self.ids(session, "Mohamed Bennani")[0] == "MABE000001"

    def test_nothing_and_empty(self, session: Session) -> None:
        assert self.ids(session, "Zzyzx") == []
        assert self.ids(session, "MA:ZZ999999") == []
        assert self.ids(session, "el") == []
        with pytest.raises(InvalidPerson):
            service.search_persons(session, "   ")

    def test_wildcards_are_not_wildcards(self, session: Session) -> None:
        assert self.ids(session, "%") == []
        assert self.ids(session, "_") == []
