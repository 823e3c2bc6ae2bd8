"""National identifiers: parsing, validation and the two written forms.

A person is identified by a country prefix and the national number of that country:

* ``MA`` + the number of the Moroccan national electronic identity card (CNIE), one or two
  letters (the issuing region) then five or six digits: ``MA:AB123456``, ``MA:J123456``.
  There is no public check digit, so only the shape is checked.
* ``QA`` + the 11-digit Qatari ID (QID): ``QA:28435612345``. Checked: eleven digits; the first
  is the century of birth (``2`` = 1900s, ``3`` = 2000s); with the next two it gives a birth
  year that is not in the future; the next three are the holder's nationality as an ISO
  3166-1 numeric code (``634`` for Qatar), checked to be non-zero only (they are not compared
  with the person's nationality field); the last five are a serial. ``qid_birth_year`` gives
  the year, and the register refuses a person whose birth date disagrees with it.

Written forms: ``MA:AB123456`` (``display``, in the CLI and on pages) and ``MAAB123456``
(``compact``, in ``X-Road-UserId`` and in the database). ``parse_national_id`` accepts both,
in any case, with spaces, hyphens or dots inside, and Arabic-Indic digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jisr.core.arabic import western_digits
from jisr.core.clock import utcnow
from jisr.core.i18n import _
from jisr.identity.errors import InvalidNationalId

COUNTRIES: tuple[str, ...] = ("MA", "QA")

_CNIE = re.compile(r"[A-Z]{1,2}[0-9]{5,6}")
_QID = re.compile(r"[23][0-9]{10}")
_IGNORED = re.compile(r"[\s\-.\u200e\u200f]+")
_FORMATS = {"MA": "AB123456", "QA": "28435612345"}


@dataclass(frozen=True, slots=True)
class NationalId:
    """A valid national identifier: ``country`` (``MA``, ``QA``) and its ``number``."""

    country: str
    number: str

    @property
    def compact(self) -> str:
        """``MAAB123456``: the ``X-Road-UserId`` and database form."""
        return f"{self.country}{self.number}"

    @property
    def display(self) -> str:
        """``MA:AB123456``: the form people read."""
        return f"{self.country}:{self.number}"

    def __str__(self) -> str:
        return self.display


def parse_national_id(text: str) -> NationalId:
    """Parse either written form; ``InvalidNationalId`` names what is wrong."""
    cleaned = _IGNORED.sub("", western_digits(str(text))).upper()
    country, colon, number = cleaned.partition(":")
    if not colon:
        country, number = cleaned[:2], cleaned[2:]
    if country not in COUNTRIES:
        raise InvalidNationalId(
            _(
                "{value} is not a national identifier: it must start with a country "
                "code ({countries}), e.g. MA:AB123456."
            ),
            value=text,
            countries=", ".join(COUNTRIES),
        )
    if country == "MA" and not _CNIE.fullmatch(number):
        raise InvalidNationalId(
            _(
                "{value} is not a Moroccan CNIE number: one or two letters then five or six "
                "digits, e.g. MA:AB123456."
            ),
            value=text,
        )
    if country == "QA":
        _check_qid(text, number)
    return NationalId(country, number)


def _check_qid(text: str, number: str) -> None:
    if not _QID.fullmatch(number):
        raise InvalidNationalId(
            _(
                "{value} is not a Qatari ID: eleven digits starting with 2 or 3, "
                "e.g. QA:28435612345."
            ),
            value=text,
        )
    if qid_birth_year(number) > utcnow().year:
        raise InvalidNationalId(
            _("{value} is not a Qatari ID: its birth year {year} is in the future."),
            value=text,
            year=qid_birth_year(number),
        )
    if number[3:6] == "000":
        raise InvalidNationalId(
            _("{value} is not a Qatari ID: its nationality code is 000."), value=text
        )


def qid_birth_year(number: str) -> int:
    """The birth year a QID encodes (``2`` + ``84`` → 1984, ``3`` + ``05`` → 2005)."""
    return 1700 + 100 * int(number[0]) + int(number[1:3])


def normalize_national_id(text: str) -> str:
    """The compact form of a valid identifier (``ma: ab 123456`` → ``MAAB123456``)."""
    return parse_national_id(text).compact


def example(country: str) -> str:
    """A well-formed example number for ``country`` (for help texts)."""
    return f"{country}:{_FORMATS[country]}"


__all__ = [
    "COUNTRIES",
    "NationalId",
    "example",
    "normalize_national_id",
    "parse_national_id",
    "qid_birth_year",
]
