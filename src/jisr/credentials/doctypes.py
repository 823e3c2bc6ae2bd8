"""Document types as data: one JSON file per type in ``types/``.

A type file names the type, its ``vct`` (a URI reference resolved against the issuing
instance's public URL, so ``credentials/types/birth-certificate/v1`` becomes
``https://portal.example.ma/credentials/types/birth-certificate/v1``), the country and
agency that issue it, how many days an issued document stays valid, its display names and
descriptions in ar/fr/en, and its claims: each with a ``name`` (the claim in the credential),
a ``source`` (where the value comes from, see ``SOURCES``) and ``labels`` in ar/fr/en.
``tests/credentials/test_doctypes.py`` validates every file against ``TYPE_SCHEMA``.

``type_metadata`` renders a type as the SD-JWT VC draft's Type Metadata document (§ "SD-JWT
VC Type Metadata": ``vct``, ``name``, ``display`` per locale, ``claims`` with ``path``,
``display``, ``sd: "always"``), served at the ``vct`` URL itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jisr.core.i18n import LANGUAGES, _
from jisr.credentials.errors import UnknownDocumentType

TYPES_DIR = Path(__file__).resolve().parent / "types"

TYPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "vct", "country", "agency", "validity_days", "display", "claims"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "vct": {"type": "string", "pattern": "^[a-z0-9][a-z0-9/._-]*$"},
        "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "agency": {
            "type": "object",
            "required": ["id", "names"],
            "properties": {
                "id": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,23}$"},
                "names": {"$ref": "#/$defs/texts"},
            },
        },
        "validity_days": {"type": "integer", "minimum": 1},
        "display": {
            "type": "object",
            "required": list(LANGUAGES),
            "additionalProperties": {
                "type": "object",
                "required": ["name", "description"],
                "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
            },
        },
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "source", "labels"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "source": {"type": "string"},
                    "labels": {"$ref": "#/$defs/texts"},
                },
            },
        },
    },
    "$defs": {
        "texts": {
            "type": "object",
            "required": list(LANGUAGES),
            "additionalProperties": {"type": "string", "minLength": 1},
        }
    },
}


def _national_id(person: Any) -> str:
    compact = str(person.national_id)
    return f"{compact[:2]}:{compact[2:]}"


def _address(person: Any) -> dict[str, str]:
    return {"formatted": str(person.address), "country": str(person.country)}


def _registration_number(person: Any) -> str:
    # Until the trade register is a block of its own, a sole trader's number is derived from
    # the owner's identifier, so the same person always gets the same number.
    digest = hashlib.sha256(f"rc:{person.national_id}".encode()).hexdigest()
    return f"RC-{int(digest[:8], 16) % 1_000_000:06d}"


# Where claim values come from: a person from the population register -> a JSON value.
SOURCES: dict[str, Callable[[Any], Any]] = {
    "given_name_latin": lambda p: p.given_name_latin,
    "family_name_latin": lambda p: p.family_name_latin,
    "given_name_ar": lambda p: p.given_name_ar,
    "family_name_ar": lambda p: p.family_name_ar,
    "birth_date": lambda p: p.birth_date.isoformat(),
    "birth_place": lambda p: p.birth_place,
    "sex": lambda p: p.sex,
    "nationalities": lambda p: [p.nationality],
    "address": _address,
    "national_id": _national_id,
    "registration_number": _registration_number,
    "trade_name": lambda p: f"{p.given_name_latin} {p.family_name_latin}",
    "legal_form": lambda _p: "sole-trader",
    "permit_type": lambda _p: "residence",
}


@dataclass(frozen=True)
class ClaimSpec:
    name: str
    source: str
    labels: dict[str, str]


@dataclass(frozen=True)
class DocumentType:
    """One document type, read from its JSON file."""

    name: str
    vct_path: str
    country: str
    agency: str
    agency_names: dict[str, str]
    validity: dt.timedelta
    display: dict[str, dict[str, str]]
    claims: tuple[ClaimSpec, ...]

    def vct(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/{self.vct_path}"

    def claims_for(self, person: Any) -> dict[str, Any]:
        """The claim values for ``person`` (a population-register person)."""
        return {claim.name: SOURCES[claim.source](person) for claim in self.claims}


def _load(path: Path) -> DocumentType:
    data = json.loads(path.read_text(encoding="utf-8"))
    claims = tuple(ClaimSpec(c["name"], c["source"], dict(c["labels"])) for c in data["claims"])
    unknown = [c.source for c in claims if c.source not in SOURCES]
    if unknown:
        raise ValueError(f"{path.name}: unknown claim sources {unknown}")
    return DocumentType(
        name=data["name"],
        vct_path=data["vct"],
        country=data["country"],
        agency=data["agency"]["id"],
        agency_names=dict(data["agency"]["names"]),
        validity=dt.timedelta(days=int(data["validity_days"])),
        display={lang: dict(texts) for lang, texts in data["display"].items()},
        claims=claims,
    )


@functools.cache
def document_types() -> dict[str, DocumentType]:
    """Every document type, by name (read once)."""
    found = (_load(path) for path in sorted(TYPES_DIR.glob("*.json")))
    return {doc.name: doc for doc in found}


def get_type(name: str) -> DocumentType:
    try:
        return document_types()[name]
    except KeyError:
        raise UnknownDocumentType(
            _("No document type {type}; the types are: {types}."),
            type=name,
            types=", ".join(sorted(document_types())),
        ) from None


def type_by_vct_path(vct_path: str) -> DocumentType:
    for doc in document_types().values():
        if doc.vct_path == vct_path.strip("/"):
            return doc
    raise UnknownDocumentType(_("No document type has the vct {vct}."), vct=vct_path)


def agencies(country: str) -> dict[str, dict[str, str]]:
    """The issuing agencies of ``country``'s document types: id -> names in ar/fr/en."""
    return {d.agency: d.agency_names for d in document_types().values() if d.country == country}


def type_metadata(doc: DocumentType, public_url: str) -> dict[str, Any]:
    """The SD-JWT VC Type Metadata document of ``doc`` (draft-ietf-oauth-sd-jwt-vc)."""
    return {
        "vct": doc.vct(public_url),
        "name": doc.display["en"]["name"],
        "description": doc.display["en"]["description"],
        "display": [
            {"locale": lang, "name": texts["name"], "description": texts["description"]}
            for lang, texts in doc.display.items()
        ],
        "claims": [
            {
                "path": [claim.name],
                "display": [
                    {"locale": lang, "label": label} for lang, label in claim.labels.items()
                ],
                "sd": "always",
                "mandatory": True,
            }
            for claim in doc.claims
        ],
    }


__all__ = [
    "SOURCES",
    "TYPE_SCHEMA",
    "ClaimSpec",
    "DocumentType",
    "agencies",
    "document_types",
    "get_type",
    "type_by_vct_path",
    "type_metadata",
]
