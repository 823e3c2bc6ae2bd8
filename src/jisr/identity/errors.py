"""Errors of the identity block.

Hierarchy (each carries an HTTP status, a stable ``code`` and a translatable title)::

    IdentityError (JisrError, 400)
    ├── InvalidNationalId (400)        the identifier is malformed or inconsistent
    ├── InvalidPerson (400)            a field of a person is not acceptable
    ├── ImportRejected (400)           a CSV file has bad rows; nothing was imported
    ├── PersonNotFound (404)
    ├── PersonAlreadyExists (409)
    └── PersonAlreadyDeceased (409)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jisr.core.errors import JisrError
from jisr.core.i18n import _, gettext

_LINE = _("line")


class IdentityError(JisrError):
    status_code = 400
    code = "identity-error"
    title = _("The identity request cannot be completed")


class InvalidNationalId(IdentityError):
    status_code = 400
    code = "invalid-national-id"
    title = _("The national identifier is not valid")


class InvalidPerson(IdentityError):
    status_code = 400
    code = "invalid-person"
    title = _("The person's data is not valid")


class PersonNotFound(IdentityError):
    status_code = 404
    code = "person-not-found"
    title = _("No such person in the register")


class PersonAlreadyExists(IdentityError):
    status_code = 409
    code = "person-already-exists"
    title = _("The person is already in the register")


class PersonAlreadyDeceased(IdentityError):
    status_code = 409
    code = "person-already-deceased"
    title = _("The person is already recorded as deceased")


@dataclass(frozen=True)
class RowError:
    """One refused row of an import: its line in the file, the column and the reason."""

    line: int
    reason: str
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, language: str = "en") -> str:
        """``line 3 (birth_date): …`` with the reason translated when it is ours."""
        text = gettext(self.reason, language)
        try:
            text = text.format(**self.params)
        except (KeyError, IndexError, ValueError):
            pass
        where = f"{self.line} ({self.column})" if self.column else str(self.line)
        return f"{gettext(_LINE, language)} {where}: {text}"


class ImportRejected(IdentityError):
    """Raised with every bad row (``errors``); the file was not imported at all."""

    status_code = 400
    code = "import-rejected"
    title = _("The file was not imported")

    def __init__(self, detail: str | None = None, /, *, errors: list[RowError], **params: Any):
        super().__init__(detail, **params)
        self.errors = errors


__all__ = [
    "IdentityError",
    "ImportRejected",
    "InvalidNationalId",
    "InvalidPerson",
    "PersonAlreadyDeceased",
    "PersonAlreadyExists",
    "PersonNotFound",
    "RowError",
]
