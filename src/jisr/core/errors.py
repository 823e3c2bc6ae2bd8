"""One error hierarchy for the whole platform.

``JisrError`` is the base. Each block derives its own base (``ExchangeError``…) and from it
errors whose names state the fact (``ApplicationNotFound``, ``ConsentAlreadyRevoked``). Each
class carries an HTTP status, a stable machine-readable ``code`` and a translatable ``title``.

The same error is rendered three ways:

* the API: RFC 9457 problem details (``application/problem+json``) with ``type``, ``title``,
  ``status``, ``detail``, ``instance`` and the ``code`` extension (``to_problem``);
* the CLI: one plain sentence (``str(error)``), exit status 1 (2 for usage errors);
* the pages: ``errors/<status>.html`` with the translated title and detail.

Hierarchy of core errors::

    JisrError (500)
    ├── InvalidInput (400)
    ├── NotFound (404)
    ├── Conflict (409)
    │   └── InstanceExists
    ├── PayloadTooLarge (413)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── ConfigurationError (500)
    └── CryptoError (400)
        ├── SignatureInvalid
        ├── UnknownKey
        ├── AlgorithmRefused
        └── CertificateRefused
"""

from __future__ import annotations

from typing import Any, ClassVar

from jisr.core.i18n import _, gettext

PROBLEM_BASE_URI = "urn:jisr:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class JisrError(Exception):
    """Base of every error the platform raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = _("Internal error")

    def __init__(self, detail: str | None = None, /, **params: Any) -> None:
        # ``detail`` is an English template marked with ``_()``, e.g.
        # ``NotFound(_("No instance in {path}"), path=...)``: it is translated, then filled.
        self.template = detail or self.title
        self.params = params
        self.detail = _fill(self.template, params)
        super().__init__(self.detail)

    def message(self, language: str = "en") -> str:
        """The detail sentence in ``language`` (ar, fr or en)."""
        return _fill(gettext(self.template, language), self.params)

    def to_problem(self, *, instance: str | None = None, language: str = "en") -> dict[str, Any]:
        """This error as RFC 9457 problem details, title and detail in ``language``.

        The template's parameters are added as extension members, so clients can read
        the facts (``path``, ``kid``…) without parsing the sentence.
        """
        problem: dict[str, Any] = {
            "type": PROBLEM_BASE_URI + self.code,
            "title": gettext(self.title, language),
            "status": self.status_code,
            "detail": self.message(language),
            "code": self.code,
        }
        if instance:
            problem["instance"] = instance
        for key, value in self.params.items():
            problem.setdefault(key, value if isinstance(value, (int, float, bool)) else str(value))
        return problem


def _fill(template: str, params: dict[str, Any]) -> str:
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


class InvalidInput(JisrError):
    status_code = 400
    code = "invalid-input"
    title = _("The request is not valid")


class Unauthorized(JisrError):
    status_code = 401
    code = "unauthorized"
    title = _("Authentication is required")


class Forbidden(JisrError):
    status_code = 403
    code = "forbidden"
    title = _("This action is not allowed")


class NotFound(JisrError):
    status_code = 404
    code = "not-found"
    title = _("Not found")


class Conflict(JisrError):
    status_code = 409
    code = "conflict"
    title = _("The request conflicts with the current state")


class InstanceExists(Conflict):
    code = "instance-exists"
    title = _("An instance already exists in this directory")


class PayloadTooLarge(JisrError):
    status_code = 413
    code = "payload-too-large"
    title = _("The request body is too large")


class ConfigurationError(JisrError):
    status_code = 500
    code = "configuration-error"
    title = _("The instance is not configured correctly")


class CryptoError(JisrError):
    status_code = 400
    code = "crypto-error"
    title = _("A cryptographic check failed")


class SignatureInvalid(CryptoError):
    code = "signature-invalid"
    title = _("The signature is not valid")


class UnknownKey(CryptoError):
    code = "unknown-key"
    title = _("The signing key is not known")


class AlgorithmRefused(CryptoError):
    code = "algorithm-refused"
    title = _("The signature algorithm is not allowed")


class CertificateRefused(CryptoError):
    code = "certificate-refused"
    title = _("The certificate is not trusted")


__all__ = [
    "PROBLEM_BASE_URI",
    "PROBLEM_CONTENT_TYPE",
    "AlgorithmRefused",
    "CertificateRefused",
    "ConfigurationError",
    "Conflict",
    "CryptoError",
    "Forbidden",
    "InstanceExists",
    "InvalidInput",
    "JisrError",
    "NotFound",
    "PayloadTooLarge",
    "SignatureInvalid",
    "Unauthorized",
    "UnknownKey",
]
