"""Errors of the services block (online procedures).

Hierarchy (each carries an HTTP status, a stable ``code`` and a translatable title)::

    ServicesError (JisrError, 400)
    ├── ProcedureNotFound (404)    no procedure with this id in the catalogue
    ├── UnknownCountry (400)       a country filter other than MA or QA
    ├── CatalogueInvalid (500)     a catalogue file is unreadable or breaks the schema
    ├── InvalidForm (422)          a form field is missing or not valid
    ├── DocumentRefused (422)      an upload of a type other than PDF/JPEG/PNG, or empty
    ├── DocumentTooLarge (413)     an upload above ``services_upload_max_bytes``
    ├── DocumentsMissing (422)     submitted without every document that must be provided
    ├── ApplicationNotFound (404)  no such application (or not the caller's)
    ├── DocumentNotFound (404)     no such uploaded document (or not the caller's)
    ├── TaskNotFound (404)         no such task (or not the caller's)
    ├── NotYourAgency (403)        an officer acting on a task of another agency
    └── IllegalTransition (409)    the application is not in a state that allows this act
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


class InvalidForm(ServicesError):
    status_code = 422
    code = "invalid-form"
    title = _("The form is not valid")


class DocumentRefused(ServicesError):
    status_code = 422
    code = "document-refused"
    title = _("This document cannot be accepted")


class DocumentTooLarge(ServicesError):
    status_code = 413
    code = "document-too-large"
    title = _("The document is too large")


class DocumentsMissing(ServicesError):
    status_code = 422
    code = "documents-missing"
    title = _("Documents are missing")


class ApplicationNotFound(ServicesError):
    status_code = 404
    code = "application-not-found"
    title = _("No such application")


class DocumentNotFound(ServicesError):
    status_code = 404
    code = "document-not-found"
    title = _("No such document")


class TaskNotFound(ServicesError):
    status_code = 404
    code = "task-not-found"
    title = _("No such task")


class NotYourAgency(ServicesError):
    status_code = 403
    code = "not-your-agency"
    title = _("This task belongs to another agency")


class IllegalTransition(ServicesError):
    status_code = 409
    code = "illegal-transition"
    title = _("The application cannot change this way")


__all__ = [
    "ApplicationNotFound",
    "CatalogueInvalid",
    "DocumentNotFound",
    "DocumentRefused",
    "DocumentTooLarge",
    "DocumentsMissing",
    "IllegalTransition",
    "InvalidForm",
    "NotYourAgency",
    "ProcedureNotFound",
    "ServicesError",
    "TaskNotFound",
    "UnknownCountry",
]
