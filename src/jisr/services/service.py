"""The catalogue of administrative procedures, read from data files.

One JSON file per procedure under ``catalogue/<country>/<slug>.json`` (its id is
``<country>-<slug>``), shaped by ``catalogue/schema.json``. The catalogue is files shipped
with the code, so these functions need no database session: it is read and checked once per
process (``catalogue()``, cached), then served from memory.

A required document may name ``evidence_service``, the exchange service (an X-Road service
id) through which the agency that holds it can supply it; ``documents_fetchable`` lists those,
``documents_asked`` the ones the person must still provide.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from jisr.core.i18n import _
from jisr.credentials import doctypes
from jisr.services.errors import CatalogueInvalid, ProcedureNotFound, UnknownCountry
from jisr.services.schemas import (
    GovStackProperty,
    GovStackService,
    Procedure,
    RequiredDocument,
)

if TYPE_CHECKING:
    from jisr.services.evidence import EvidenceSource

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogue"
SCHEMA_PATH = CATALOGUE_DIR / "schema.json"
COUNTRIES: tuple[str, ...] = ("MA", "QA")


@dataclass(frozen=True)
class Catalogue:
    """Every procedure, by id, ordered by country then id."""

    procedures: dict[str, Procedure]

    def of(self, country: str | None = None) -> list[Procedure]:
        return [p for p in self.procedures.values() if country is None or p.country == country]


def catalogue_files() -> list[Path]:
    """The procedure files, sorted (``schema.json`` excluded)."""
    return sorted(
        path for country in COUNTRIES for path in (CATALOGUE_DIR / country.lower()).glob("*.json")
    )


def _invalid(path: Path, reason: str) -> CatalogueInvalid:
    return CatalogueInvalid(
        _("The catalogue file {file} is not valid: {reason}"),
        file=f"{path.parent.name}/{path.name}",
        reason=reason,
    )


def load_procedure(path: Path) -> Procedure:
    """One procedure file, checked against the models and its place in the catalogue."""
    try:
        procedure = Procedure.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:  # json.JSONDecodeError and ValidationError too
        reason = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            if isinstance(error, ValidationError)
            else str(error)
        )
        raise _invalid(path, reason) from error
    expected = f"{path.parent.name}-{path.stem}"
    if procedure.id != expected or procedure.country.lower() != path.parent.name:
        raise _invalid(path, f"its id must be {expected!r} and its country the folder's")
    known = doctypes.document_types()
    wanted = [procedure.issued_credential] + [
        d.evidence_credential for d in procedure.required_documents
    ]
    unknown = sorted(name for name in wanted if name is not None and name not in known)
    if unknown:
        raise _invalid(path, f"unknown credential types {unknown}")
    return procedure


@functools.cache
def catalogue() -> Catalogue:
    """The whole catalogue, read and checked once per process."""
    found = [load_procedure(path) for path in catalogue_files()]
    procedures: dict[str, Procedure] = {}
    for procedure in sorted(found, key=lambda p: (p.country, p.id)):
        procedures[procedure.id] = procedure
    if len(procedures) != len(found):  # pragma: no cover - ids follow file names
        raise CatalogueInvalid(_("Two catalogue files share an id."))
    return Catalogue(procedures)


def _country(country: str | None) -> str | None:
    if country is None:
        return None
    wanted = country.strip().upper()
    if wanted not in COUNTRIES:
        raise UnknownCountry(
            _("No country {country} in the catalogue; the countries are: {countries}."),
            country=country,
            countries=", ".join(COUNTRIES),
        )
    return wanted


def list_procedures(country: str | None = None) -> list[Procedure]:
    """The procedures of ``country`` (MA or QA; every country when None)."""
    return catalogue().of(_country(country))


def get_procedure(procedure_id: str) -> Procedure:
    try:
        return catalogue().procedures[procedure_id]
    except KeyError:
        raise ProcedureNotFound(_("No procedure {id} in the catalogue."), id=procedure_id) from None


def _fetchable(document: RequiredDocument, source: EvidenceSource | None) -> bool:
    service = document.evidence_service
    return bool(service) and (source is None or source.available(str(service)))


def documents_fetchable(
    procedure: Procedure, source: EvidenceSource | None = None
) -> list[RequiredDocument]:
    """The required documents another agency can supply through the exchange: those the
    catalogue marks with ``evidence_service`` and, given ``source``, that it says are
    available (``jisr.services.evidence``)."""
    return [d for d in procedure.required_documents if _fetchable(d, source)]


def documents_asked(
    procedure: Procedure, source: EvidenceSource | None = None
) -> list[RequiredDocument]:
    """The required documents the person must provide: the rest (without ``source``, every
    ``evidence_service`` is taken as published)."""
    return [d for d in procedure.required_documents if not _fetchable(d, source)]


GOVSTACK_VERSION = "1"


def as_govstack_service(procedure: Procedure, language: str) -> GovStackService:
    """``procedure`` in the GovStack Registration API's ``service`` shape, its texts in
    ``language``; the details GovStack has no field for go in ``serviceBody`` (code/value)."""
    body: list[tuple[str, str]] = [
        ("country", procedure.country),
        ("category", procedure.category),
        ("agency", procedure.agency.name.get(language)),
    ]
    if procedure.agency.member:
        body.append(("agencyMember", procedure.agency.member))
    body.append(("eligibility", procedure.eligibility.get(language)))
    for document in procedure.required_documents:
        value = document.name.get(language)
        code = "documentFetched" if document.evidence_service else "documentRequired"
        body.append(
            (code, f"{value} ({document.evidence_service})" if document.evidence_service else value)
        )
    body.extend(("step", step.get(language)) for step in procedure.steps)
    fees = procedure.fees
    body.append(("fees", "unknown" if fees.unknown else f"{fees.amount:g} {fees.currency}"))
    time = procedure.processing_time
    body.append(
        ("processingTime", "unknown" if time.unknown or not time.text else time.text.get(language))
    )
    body.extend(("channel", channel) for channel in procedure.channels)
    if procedure.issued_credential:
        body.append(("issuedCredential", procedure.issued_credential))
    return GovStackService(
        id=procedure.id,
        name=procedure.title.get(language),
        version=GOVSTACK_VERSION,
        type="Public",
        isExecutable=False,
        isClosed=True,
        description=procedure.description.get(language),
        serviceBody=[GovStackProperty(code=code, value=value) for code, value in body],
    )


def search_govstack(name: str | None, language: str) -> list[GovStackService]:
    """GovStack ``GET /services``: every procedure whose title (in any language) contains
    ``name``, case-insensitively; all of them when ``name`` is empty."""
    wanted = (name or "").strip().casefold()
    return [
        as_govstack_service(procedure, language)
        for procedure in catalogue().procedures.values()
        if not wanted
        or any(
            wanted in text.casefold()
            for text in (procedure.title.ar, procedure.title.fr, procedure.title.en)
        )
    ]


__all__ = [
    "GOVSTACK_VERSION",
    "as_govstack_service",
    "search_govstack",
    "CATALOGUE_DIR",
    "COUNTRIES",
    "SCHEMA_PATH",
    "Catalogue",
    "catalogue",
    "catalogue_files",
    "documents_asked",
    "documents_fetchable",
    "get_procedure",
    "list_procedures",
    "load_procedure",
]
