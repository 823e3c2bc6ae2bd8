"""Errors of the services block (online procedures).

Hierarchy (each carries an HTTP status, a stable ``code`` and a translatable title)::

    ServicesError (JisrError, 400)
    ├── ProcedureNotFound (404)    no procedure with this id in the catalogue
    ├── UnknownCountry (400)       a country filter other than MA or QA
    └── CatalogueInvalid (500)     a catalogue file is unreadable or breaks the schema
"""

from __future__ import annotations

from jisr.core.errors import JisrError
from jisr.core.i18n import _


class ServicesError(JisrError):
    status_code = 400
    code = "services-error"
    title = _("The procedure request cannot be completed")


class ProcedureNotFound(ServicesError):
    status_code = 404
    code = "procedure-not-found"
    title = _("No such procedure")


class UnknownCountry(ServicesError):
    status_code = 400
    code = "unknown-country"
    title = _("No such country in the catalogue")


class CatalogueInvalid(ServicesError):
    status_code = 500
    code = "catalogue-invalid"
    title = _("The catalogue of procedures is not valid")


__all__ = ["CatalogueInvalid", "ProcedureNotFound", "ServicesError", "UnknownCountry"]
