"""Errors of the credentials block (verifiable documents).

Hierarchy (each carries an HTTP status, a stable ``code`` and a translatable title)::

    CredentialsError (JisrError, 400)
    ├── UnknownDocumentType (404)      no such document type
    ├── DocumentTypeNotIssuedHere (409) the type belongs to another country's agencies
    ├── CredentialNotFound (404)
    ├── CredentialAlreadyRevoked (409)
    ├── InvalidHolderKey (400)         the holder key file is not a public P-256 key
    ├── FormatNotSupported (400)       e.g. ``vc-jose`` before its slice
    ├── MalformedCredential (400)      not an SD-JWT at all (the verifier reports, never raises)
    ├── StatusListError (502)          a status list could not be fetched or verified
    │   └── StatusListFull (503)       no free index is left in the agency's status list
    ├── PresentationNotFound (404)     no OpenID4VP transaction with this id
    └── OAuthError (400)               OpenID4VCI/VP endpoints: rendered as OAuth JSON
        ├── InvalidOAuthRequest        ``invalid_request`` (missing tx_code, bad response…)
        ├── UnsupportedGrantType       ``unsupported_grant_type``
        ├── InvalidGrant               ``invalid_grant`` (unknown, used or expired
        │                              pre-authorized code, wrong tx_code)
        ├── InvalidAccessToken (401)   ``invalid_token`` at the credential endpoint
        ├── InvalidCredentialRequest   ``invalid_credential_request``
        ├── UnknownCredentialConfiguration ``unknown_credential_configuration``
        ├── InvalidProof               ``invalid_proof`` (missing or bad key proof)
        └── InvalidNonce               ``invalid_nonce`` (key proof without a fresh c_nonce)

The verifier (``jisr.credentials.verify``) does not raise for a credential that fails a
check: it returns every check with its reason. These errors are for requests that cannot be
carried out at all.
"""

from __future__ import annotations

from typing import ClassVar

from jisr.core.errors import JisrError
from jisr.core.i18n import _


class CredentialsError(JisrError):
    status_code = 400
    code = "credentials-error"
    title = _("The credential request cannot be completed")


class UnknownDocumentType(CredentialsError):
    status_code = 404
    code = "unknown-document-type"
    title = _("No such document type")


class DocumentTypeNotIssuedHere(CredentialsError):
    status_code = 409
    code = "document-type-not-issued-here"
    title = _("This instance does not issue this document type")


class CredentialNotFound(CredentialsError):
    status_code = 404
    code = "credential-not-found"
    title = _("No such credential")


class CredentialAlreadyRevoked(CredentialsError):
    status_code = 409
    code = "credential-already-revoked"
    title = _("The credential is already revoked")


class InvalidHolderKey(CredentialsError):
    status_code = 400
    code = "invalid-holder-key"
    title = _("The holder key is not valid")


class FormatNotSupported(CredentialsError):
    status_code = 400
    code = "format-not-supported"
    title = _("This credential format is not supported yet")


class MalformedCredential(CredentialsError):
    status_code = 400
    code = "malformed-credential"
    title = _("The credential is malformed")


class StatusListError(CredentialsError):
    status_code = 502
    code = "status-list-error"
    title = _("The status list cannot be used")


class StatusListFull(StatusListError):
    status_code = 503
    code = "status-list-full"
    title = _("The status list has no free index left")


class PresentationNotFound(CredentialsError):
    status_code = 404
    code = "presentation-not-found"
    title = _("No such presentation request")


class OAuthError(CredentialsError):
    """An error of an OpenID4VCI/VP endpoint, answered as OAuth JSON (``error``,
    ``error_description``) because that is what wallets read."""

    status_code = 400
    code = "oauth-error"
    title = _("The wallet request is refused")
    oauth_error: ClassVar[str] = "invalid_request"


class InvalidOAuthRequest(OAuthError):
    code = "oauth-invalid-request"


class UnsupportedGrantType(OAuthError):
    code = "oauth-unsupported-grant-type"
    oauth_error = "unsupported_grant_type"


class InvalidGrant(OAuthError):
    code = "oauth-invalid-grant"
    oauth_error = "invalid_grant"


class InvalidAccessToken(OAuthError):
    status_code = 401
    code = "oauth-invalid-token"
    oauth_error = "invalid_token"


class InsufficientScope(OAuthError):
    status_code = 403
    code = "oauth-insufficient-scope"
    oauth_error = "insufficient_scope"


class InvalidCredentialRequest(OAuthError):
    code = "oid4vci-invalid-credential-request"
    oauth_error = "invalid_credential_request"


class UnknownCredentialConfiguration(OAuthError):
    code = "oid4vci-unknown-credential-configuration"
    oauth_error = "unknown_credential_configuration"


class InvalidProof(OAuthError):
    code = "oid4vci-invalid-proof"
    oauth_error = "invalid_proof"


class InvalidNonce(OAuthError):
    code = "oid4vci-invalid-nonce"
    oauth_error = "invalid_nonce"


__all__ = [
    "CredentialAlreadyRevoked",
    "CredentialNotFound",
    "CredentialsError",
    "DocumentTypeNotIssuedHere",
    "FormatNotSupported",
    "InsufficientScope",
    "InvalidAccessToken",
    "InvalidCredentialRequest",
    "InvalidGrant",
    "InvalidHolderKey",
    "InvalidNonce",
    "InvalidOAuthRequest",
    "InvalidProof",
    "MalformedCredential",
    "OAuthError",
    "PresentationNotFound",
    "StatusListError",
    "StatusListFull",
    "UnknownCredentialConfiguration",
    "UnknownDocumentType",
    "UnsupportedGrantType",
]
