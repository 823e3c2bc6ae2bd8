"""Document type files are valid against their schema, and render as Type Metadata."""

from __future__ import annotations

import json

import jsonschema
import pytest

from jisr.credentials import doctypes
from jisr.credentials.errors import UnknownDocumentType

EXPECTED = {
    "birth-certificate",
    "residence-certificate",
    "identity-attestation",
    "business-registration",
    "residence-permit",
}


@pytest.mark.parametrize("path", sorted(doctypes.TYPES_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_type_file_matches_schema(path: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    jsonschema.validate(data, doctypes.TYPE_SCHEMA)
    assert data["name"] == path.stem  # type: ignore[attr-defined]
    assert all(claim["source"] in doctypes.SOURCES for claim in data["claims"])


def test_the_five_types() -> None:
    assert set(doctypes.document_types()) == EXPECTED
    assert doctypes.get_type("residence-permit").country == "QA"
    with pytest.raises(UnknownDocumentType):
        doctypes.get_type("passport")


def test_type_metadata_document() -> None:
    doc = doctypes.get_type("birth-certificate")
    metadata = doctypes.type_metadata(doc, "https://portal.example.ma/")
    assert metadata["vct"] == "https://portal.example.ma/credentials/types/birth-certificate/v1"
    assert {d["locale"] for d in metadata["display"]} == {"ar", "fr", "en"}
    assert all(c["sd"] == "always" and len(c["path"]) == 1 for c in metadata["claims"])
    labels = {c["path"][0]: c["display"] for c in metadata["claims"]}
    assert {"locale": "ar", "label": "تاريخ الازدياد"} in labels["birthdate"]
