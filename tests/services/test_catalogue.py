"""The catalogue's data files: schema, languages, fees and times, ids, evidence, credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from jisr.credentials import doctypes
from jisr.exchange.identifiers import MemberId, ServiceId
from jisr.services import service
from jisr.services.errors import CatalogueInvalid, ProcedureNotFound, UnknownCountry

SCHEMA = json.loads(service.SCHEMA_PATH.read_text(encoding="utf-8"))
FILES = service.catalogue_files()
LANGUAGES = ("ar", "fr", "en")


def _data(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _texts(value: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every {ar, fr, en} object inside ``value``, with where it is."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(value, dict):
        if set(value) & set(LANGUAGES):
            found.append((where, value))
        else:
            for key, item in value.items():
                found.extend(_texts(item, f"{where}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_texts(item, f"{where}[{index}]"))
    return found


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_file_matches_schema(path: Path) -> None:
    data = _data(path)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["id"] == f"{path.parent.name}-{path.stem}"
    assert data["country"] == path.parent.name.upper()


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_text_in_three_languages(path: Path) -> None:
    data = _data(path)
    texts = _texts({k: v for k, v in data.items() if k != "aliases"})
    assert texts, "no texts at all"
    for where, text in texts:
        assert set(text) == set(LANGUAGES), where
        assert all(isinstance(text[lang], str) and text[lang].strip() for lang in LANGUAGES), where
    arabic = [text["ar"] for _where, text in texts]
    assert all(any("\u0600" <= ch <= "\u06ff" for ch in ar) for ar in arabic), "ar not in Arabic"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fees_and_time_present_or_marked_unknown(path: Path) -> None:
    data = _data(path)
    fees, time = data["fees"], data["processing_time"]
    currency = {"MA": "MAD", "QA": "QAR"}[data["country"]]
    assert fees.get("unknown") is True or fees["currency"] == currency
    assert time.get("unknown") is True or time["text"]
    if fees.get("unknown") or time.get("unknown"):
        fields = {item["field"].split(".")[0] for item in data["uncertain"]}
        assert fields & {"fees", "processing_time"} or fees.get("note") or time.get("note")


def test_ids_unique_and_loaded() -> None:
    ids = [_data(path)["id"] for path in FILES]
    assert len(ids) == len(set(ids))
    assert list(service.catalogue().procedures) == sorted(ids, key=lambda i: (i[:2].upper(), i))


def test_counts() -> None:
    assert len(service.list_procedures("MA")) >= 50
    assert len(service.list_procedures("QA")) >= 30


def test_evidence_services_are_xroad_ids_of_the_same_country() -> None:
    for procedure in service.list_procedures():
        if procedure.agency.member:
            assert MemberId.parse(procedure.agency.member).instance == procedure.country
        for document in service.documents_fetchable(procedure):
            assert document.evidence_service is not None
            parsed = ServiceId.parse(document.evidence_service)
            assert parsed.instance == procedure.country, procedure.id


def test_credentials_are_known_types_of_the_same_country() -> None:
    types = doctypes.document_types()
    for procedure in service.list_procedures():
        wanted = [procedure.issued_credential] + [
            d.evidence_credential for d in procedure.required_documents
        ]
        for name in filter(None, wanted):
            assert doctypes.get_type(name).country == procedure.country, (procedure.id, name)
    issued = {p.issued_credential for p in service.list_procedures()} - {None}
    assert issued <= set(types)


def test_uncertain_names_fields_of_the_entry() -> None:
    for path in FILES:
        data = _data(path)
        for item in data["uncertain"]:
            assert item["field"].split(".")[0] in SCHEMA["properties"], (path.name, item)


class TestService:
    def test_list_by_country(self) -> None:
        moroccan = service.list_procedures("ma")
        assert moroccan and all(p.country == "MA" for p in moroccan)
        assert len(service.list_procedures()) == len(FILES)

    def test_unknown_country(self) -> None:
        with pytest.raises(UnknownCountry):
            service.list_procedures("FR")

    def test_get(self) -> None:
        procedure = service.get_procedure("ma-residence-certificate")
        assert procedure.issued_credential == "residence-certificate"
        assert procedure.title.fr == "Certificat de résidence"

    def test_not_found(self) -> None:
        with pytest.raises(ProcedureNotFound) as caught:
            service.get_procedure("ma-nothing")
        assert caught.value.status_code == 404
        assert "ma-nothing" in caught.value.message("ar")

    def test_fetchable_and_asked_split_the_documents(self) -> None:
        procedure = service.get_procedure("ma-residence-certificate")
        fetched = service.documents_fetchable(procedure)
        asked = service.documents_asked(procedure)
        assert fetched and all(d.evidence_service for d in fetched)
        assert len(fetched) + len(asked) == len(procedure.required_documents)

    def test_a_broken_file_is_refused(self, tmp_path: Path) -> None:
        folder = tmp_path / "ma"
        folder.mkdir()
        good = _data(FILES[0])
        (folder / "broken.json").write_text(json.dumps({**good, "id": "ma-broken", "x": 1}))
        with pytest.raises(CatalogueInvalid):
            service.load_procedure(folder / "broken.json")
        (folder / "renamed.json").write_text(json.dumps(good))
        with pytest.raises(CatalogueInvalid):
            service.load_procedure(folder / "renamed.json")
        (folder / "nojson.json").write_text("{")
        with pytest.raises(CatalogueInvalid):
            service.load_procedure(folder / "nojson.json")
