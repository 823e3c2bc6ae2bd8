"""Errors of authentication and of the OpenID Connect provider.

They derive from the identity block's base, ``jisr.identity.errors.IdentityError``::

    IdentityError
    └── OidcError (400)
        ├── AuthenticationFailed (401)   wrong national id, password or one-time code
        │   └── OneTimeCodeRequired      the account has a second factor and no code was given
        ├── AccountLocked (403)          too many failures: locked until ``until``
        ├── ClientNotFound (404)
        ├── ClientExists (409)
        ├── InvalidClientMetadata (400)  registration refused; ``field`` and a GovStack ``error``
        └── LoginTransactionInvalid (400) a login or consent form whose CSRF token does not verify

Protocol errors of the OAuth endpoints are not these: they are Authlib's ``OAuth2Error``
rendered as OAuth JSON (``{"error", "error_description"}``), which is what relying parties
expect.
"""

from __future__ import annotations

from jisr.core.i18n import _
from jisr.identity.errors import IdentityError


class OidcError(IdentityError):
    status_code = 400
    code = "oidc-error"
    title = _("The identity service refused the request")


class AuthenticationFailed(OidcError):
    status_code = 401
    code = "authentication-failed"
    title = _("Authentication failed")


class OneTimeCodeRequired(AuthenticationFailed):
    code = "one-time-code-required"
    title = _("A one-time code is required")


class AccountLocked(OidcError):
    status_code = 403
    code = "account-locked"
    title = _("The account is locked")


class ClientNotFound(OidcError):
    status_code = 404
    code = "client-not-found"
    title = _("No such relying party")


class ClientExists(OidcError):
    status_code = 409
    code = "client-exists"
    title = _("This relying party is already registered")


class InvalidClientMetadata(OidcError):
    status_code = 400
    code = "invalid-client-metadata"
    title = _("The relying party registration is not valid")


class LoginTransactionInvalid(OidcError):
    status_code = 400
    code = "login-transaction-invalid"
    title = _("This form has expired; start again from the service you came from")


__all__ = [
    "AccountLocked",
    "AuthenticationFailed",
    "ClientExists",
    "ClientNotFound",
    "InvalidClientMetadata",
    "LoginTransactionInvalid",
    "OidcError",
    "OneTimeCodeRequired",
]
