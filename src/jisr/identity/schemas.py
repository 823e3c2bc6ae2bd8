"""Pydantic shapes of the population register: ``PersonCreate``, ``PersonUpdate``,
``PersonRead``, ``DeathRecord``.

They check form (types, lengths, the script of each name, dates not in the future); the
service checks what needs the register or the identifier's meaning (a well-formed national
identifier, a QID whose birth year matches the birth date, a death after the birth).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
    model_validator,
)

from jisr.core.arabic import contains_arabic
from jisr.core.clock import utcnow

EARLIEST_BIRTH = dt.date(1880, 1, 1)


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


class Status(StrEnum):
    ALIVE = "alive"
    DECEASED = "deceased"


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Country = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern="^[A-Z]{2}$")
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^\+?[0-9][0-9 ()-]{5,30}$"),
]

_AR_FIELDS = ("given_name_ar", "family_name_ar")
_LATIN_FIELDS = ("given_name_latin", "family_name_latin")
_NOT_NULL = (*_AR_FIELDS, *_LATIN_FIELDS, "birth_date", "birth_place", "sex", "nationality")


def _arabic(value: str) -> str:
    if not contains_arabic(value):
        raise ValueError("must be written in Arabic script")
    return value


def _latin(value: str) -> str:
    if contains_arabic(value):
        raise ValueError("must be written in Latin script")
    return value


def _past(value: dt.date | None) -> dt.date | None:
    if value is not None and not EARLIEST_BIRTH <= value <= utcnow().date():
        raise ValueError(f"must be between {EARLIEST_BIRTH} and today")
    return value


class _PersonFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("sex", "nationality", mode="before", check_fields=False)
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(*_AR_FIELDS, check_fields=False)
    @classmethod
    def _in_arabic(cls, value: str | None) -> str | None:
        return None if value is None else _arabic(value)

    @field_validator(*_LATIN_FIELDS, check_fields=False)
    @classmethod
    def _in_latin(cls, value: str | None) -> str | None:
        return None if value is None else _latin(value)

    @field_validator("birth_date", check_fields=False)
    @classmethod
    def _birth_in_past(cls, value: dt.date | None) -> dt.date | None:
        return _past(value)


class PersonCreate(_PersonFields):
    """A new person. ``national_id`` in either written form (``MA:AB123456``, ``MAAB123456``)."""

    national_id: str = Field(max_length=40, examples=["MA:AB123456"])
    given_name_ar: Name = Field(examples=["فاطمة الزهراء"])
    family_name_ar: Name = Field(examples=["العمراني"])
    given_name_latin: Name = Field(examples=["Fatima Zahra"])
    family_name_latin: Name = Field(examples=["El Amrani"])
    birth_date: dt.date
    birth_place: Name = Field(examples=["Rabat"])
    sex: Sex
    nationality: Country = Field(examples=["MA"])
    address: Text = ""
    email: Email | None = None
    phone: Phone | None = None


class PersonUpdate(_PersonFields):
    """Fields to change; those left out keep their value. The identifier never changes,
    and death is recorded with ``DeathRecord``."""

    given_name_ar: Name | None = None
    family_name_ar: Name | None = None
    given_name_latin: Name | None = None
    family_name_latin: Name | None = None
    birth_date: dt.date | None = None
    birth_place: Name | None = None
    sex: Sex | None = None
    nationality: Country | None = None
    address: Text | None = None
    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> PersonUpdate:
        cleared = [f for f in _NOT_NULL if f in self.model_fields_set and getattr(self, f) is None]
        if cleared:
            raise ValueError(f"cannot be removed: {', '.join(cleared)}")
        return self


class DeathRecord(BaseModel):
    """The date of a person's death (refused before the birth or in the future)."""

    model_config = ConfigDict(extra="forbid")

    death_date: dt.date

    @field_validator("death_date")
    @classmethod
    def _not_future(cls, value: dt.date) -> dt.date:
        if value > utcnow().date():
            raise ValueError("must not be in the future")
        return value


class PersonRead(BaseModel):
    """A person as the register holds them."""

    model_config = ConfigDict(from_attributes=True)

    national_id: str = Field(examples=["MAAB123456"], description="X-Road-UserId form")
    country: str
    given_name_ar: str
    family_name_ar: str
    given_name_latin: str
    family_name_latin: str
    birth_date: dt.date
    birth_place: str
    sex: Sex
    nationality: str
    address: str
    status: Status
    death_date: dt.date | None
    email: str | None
    phone: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @computed_field(examples=["MA:AB123456"])  # type: ignore[prop-decorator]
    @property
    def national_id_display(self) -> str:
        """The identifier as people write it: ``MA:AB123456``."""
        return f"{self.national_id[:2]}:{self.national_id[2:]}"


class PersonList(BaseModel):
    """Search results, best match first."""

    query: str
    count: int
    persons: list[PersonRead]


__all__ = [
    "DeathRecord",
    "PersonCreate",
    "PersonList",
    "PersonRead",
    "PersonUpdate",
    "Sex",
    "Status",
]
