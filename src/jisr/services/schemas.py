"""The catalogue's shapes (pydantic), mirroring ``catalogue/schema.json``.

``schema.json`` is the contract for the data files (a test validates every file with it);
these models are what the loader builds from them at run time, so a malformed file fails on
load even where ``jsonschema`` is not installed. Both forbid unknown fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Country = Literal["MA", "QA"]
Currency = Literal["MAD", "QAR"]
Channel = Literal["online", "counter", "mobile", "kiosk"]
Category = Literal[
    "civil-status",
    "identity",
    "travel",
    "residence",
    "justice",
    "business",
    "tax",
    "vehicles",
    "building",
    "social-security",
    "health",
    "education",
    "immigration",
    "utilities",
    "property",
    "employment",
    "general",
]

SLUG = r"^[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*$"
MEMBER_ID = r"^[A-Z]{2}/(GOV|COM|NGO)/[A-Za-z0-9'()+,\-.=?]{1,64}$"
SERVICE_ID = r"^[A-Z]{2}/(GOV|COM|NGO)(/[A-Za-z0-9'()+,\-.=?]{1,64}){3}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Texts(_Model):
    """One text in the three languages of the platform."""

    ar: str = Field(min_length=1)
    fr: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return {"ar": self.ar, "fr": self.fr, "en": self.en}.get(language, self.en)


class Agency(_Model):
    name: Texts
    member: str | None = Field(default=None, pattern=MEMBER_ID)


class RequiredDocument(_Model):
    name: Texts
    evidence_service: str | None = Field(default=None, pattern=SERVICE_ID)
    evidence_credential: str | None = None
    note: Texts | None = None


class Fees(_Model):
    amount: float | None = Field(default=None, ge=0)
    currency: Currency | None = None
    unknown: bool = False
    note: Texts | None = None

    @model_validator(mode="after")
    def _known_or_marked(self) -> Fees:
        if self.unknown:
            if self.amount is not None or self.note is None:
                raise ValueError("unknown fees carry a note and no amount")
        elif self.amount is None or self.currency is None:
            raise ValueError("fees need an amount and a currency, or unknown: true")
        return self


class ProcessingTime(_Model):
    text: Texts | None = None
    max_days: int | None = Field(default=None, ge=0)
    unknown: bool = False
    note: Texts | None = None

    @model_validator(mode="after")
    def _known_or_marked(self) -> ProcessingTime:
        if self.unknown:
            if self.note is None or self.text is not None:
                raise ValueError("an unknown time carries a note and no text")
        elif self.text is None:
            raise ValueError("a processing time needs a text, or unknown: true")
        return self


class Uncertain(_Model):
    field: str = Field(min_length=1)
    note: str = Field(min_length=1)


class Aliases(_Model):
    """Other names people give a procedure, per variety, as data (the assistant indexes them).

    ``darija_ar`` Moroccan Darija in Arabic script; ``darija_latn`` Darija in Latin letters
    with digits (Arabizi: ``3`` ع, ``7`` ح, ``9`` ق, ``2`` ء); ``gulf`` Gulf Arabic;
    ``gulf_latn`` Gulf Arabic in Latin letters; ``msa`` Modern Standard Arabic synonyms;
    ``fr`` and ``en`` the words people type, French loanwords included."""

    darija_ar: tuple[str, ...] = ()
    darija_latn: tuple[str, ...] = ()
    gulf: tuple[str, ...] = ()
    gulf_latn: tuple[str, ...] = ()
    msa: tuple[str, ...] = ()
    fr: tuple[str, ...] = ()
    en: tuple[str, ...] = ()


class Procedure(_Model):
    """One administrative procedure of the catalogue (one file under ``catalogue/``)."""

    id: str = Field(pattern=SLUG)
    country: Country
    category: Category
    title: Texts
    description: Texts
    agency: Agency
    legal_basis: tuple[str, ...] = ()
    eligibility: Texts
    required_documents: tuple[RequiredDocument, ...]
    steps: tuple[Texts, ...] = Field(min_length=1)
    fees: Fees
    processing_time: ProcessingTime
    channels: tuple[Channel, ...] = Field(min_length=1)
    issued_credential: str | None = None
    sources: tuple[str, ...] = Field(min_length=1)
    uncertain: tuple[Uncertain, ...] = ()
    aliases: Aliases = Aliases()


class ProcedureSummary(_Model):
    """What a list shows of a procedure."""

    id: str
    country: Country
    category: Category
    title: Texts
    agency: Agency
    issued_credential: str | None = None


class GovStackProperty(BaseModel):
    code: str
    value: str


class GovStackService(BaseModel):
    """A service in the GovStack Registration API's shape (``components.schemas.service``).

    ``id`` is the catalogue's slug rather than the UUID the specification's example shows:
    the catalogue's ids are stable and meaningful, and the specification's own tests use a
    non-UUID id (``P2c9280957e579ad7017e58a3399f0068``)."""

    id: str
    name: str
    version: str
    type: Literal["None", "Private", "Public"]
    isExecutable: bool
    isClosed: bool
    description: str
    serviceBody: list[GovStackProperty]


__all__ = [
    "Agency",
    "GovStackProperty",
    "GovStackService",
    "Aliases",
    "Category",
    "Channel",
    "Country",
    "Fees",
    "Procedure",
    "ProcedureSummary",
    "ProcessingTime",
    "RequiredDocument",
    "Texts",
    "Uncertain",
]
