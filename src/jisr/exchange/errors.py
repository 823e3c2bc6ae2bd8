"""Errors of the exchange block.

Two families:

* administration errors (the registry's services, the CLI), translated like every other
  ``JisrError``::

    ExchangeError (JisrError, 400)
    ├── InvalidIdentifier (400)          an X-Road identifier is malformed
    ├── MemberNotFound / SubsystemNotFound / ServiceNotFound / GatewayNotFound (404)
    ├── ServiceDescriptionNotFound (404)  a service has no OpenAPI document
    ├── AccessRightNotFound / GroupNotFound (404)
    ├── MemberAlreadyExists / SubsystemAlreadyExists / ServiceAlreadyExists (409)
    ├── GatewayAlreadyExists / AccessRightAlreadyGranted (409)
    ├── GatewayBusy (409)               another process serves the gateway node
    ├── GroupAlreadyExists / GroupMemberAlreadyExists (409)
    ├── PeerConfRefused (400)           a federated instance's shared parameters do not verify
    ├── GlobalConfRefused (400)         a downloaded global configuration does not verify
    └── ArchiveRefused (400)            a message-log archive cannot be made or read

* ``XRoadFault``: a refusal on the wire, as the X-Road message protocol for REST does it: an
  HTTP status, an ``X-Road-Error`` header naming the ``type`` and a JSON body
  ``{"type", "message", "detail"}``. Its ``type`` and ``message`` stay English (a machine
  protocol); ``detail`` carries the message id. Types start with ``Client.`` (the calling
  information system's mistake), ``Server.ClientProxy.`` (the client's gateway) or
  ``Server.ServerProxy.`` (the provider's gateway). The types are listed in ``FAULTS`` and in
  ``docs/exchange.md``.
"""

from __future__ import annotations

from typing import Any

from jisr.core.errors import JisrError
from jisr.core.i18n import _


class ExchangeError(JisrError):
    status_code = 400
    code = "exchange-error"
    title = _("The exchange request cannot be completed")


class InvalidIdentifier(ExchangeError):
    code = "invalid-identifier"
    title = _("The X-Road identifier is not valid")


class MemberNotFound(ExchangeError):
    status_code = 404
    code = "member-not-found"
    title = _("No such member")


class SubsystemNotFound(ExchangeError):
    status_code = 404
    code = "subsystem-not-found"
    title = _("No such subsystem")


class ServiceNotFound(ExchangeError):
    status_code = 404
    code = "service-not-found"
    title = _("No such service")


class ServiceDescriptionNotFound(ExchangeError):
    status_code = 404
    code = "service-description-not-found"
    title = _("The service has no OpenAPI description")


class GatewayNotFound(ExchangeError):
    status_code = 404
    code = "gateway-not-found"
    title = _("No such gateway")


class AccessRightNotFound(ExchangeError):
    status_code = 404
    code = "access-right-not-found"
    title = _("No such access right")


class GroupNotFound(ExchangeError):
    status_code = 404
    code = "group-not-found"
    title = _("No such local group or group member")


class GroupAlreadyExists(ExchangeError):
    status_code = 409
    code = "group-exists"
    title = _("The local group already exists")


class GroupMemberAlreadyExists(ExchangeError):
    status_code = 409
    code = "group-member-exists"
    title = _("The subsystem is already in the group")


class PeerConfRefused(ExchangeError):
    code = "peer-conf-refused"
    title = _("The shared parameters of the federated instance were refused")


class MemberAlreadyExists(ExchangeError):
    status_code = 409
    code = "member-exists"
    title = _("The member already exists")


class SubsystemAlreadyExists(ExchangeError):
    status_code = 409
    code = "subsystem-exists"
    title = _("The subsystem already exists")


class ServiceAlreadyExists(ExchangeError):
    status_code = 409
    code = "service-exists"
    title = _("The service already exists")


class GatewayBusy(ExchangeError):
    """Another process serves the gateway node: it holds the message log's journal."""

    status_code = 409
    code = "gateway-busy"
    title = _("Another process serves this gateway node")


class GatewayAlreadyExists(ExchangeError):
    status_code = 409
    code = "gateway-exists"
    title = _("The member already has a gateway")


class AccessRightAlreadyGranted(ExchangeError):
    status_code = 409
    code = "access-right-exists"
    title = _("The access right is already granted")


class GlobalConfRefused(ExchangeError):
    code = "globalconf-refused"
    title = _("The global configuration was refused")


class ArchiveRefused(ExchangeError):
    code = "archive-refused"
    title = _("The message-log archive cannot be made or read")


# --- faults on the wire ----------------------------------------------------------------------

# type -> HTTP status. Names follow X-Road (ErrorCodes of the reference implementation); the
# few Jisr adds (replay, size, federation) are marked in docs/exchange.md.
FAULTS: dict[str, int] = {
    "Client.BadRequest": 400,
    "Client.InvalidProtocolVersion": 400,
    "Client.InvalidClientIdentifier": 400,
    "Client.InvalidServiceIdentifier": 400,
    "Client.UnknownMember": 400,
    "Client.MessageTooLarge": 413,
    "Server.ClientProxy.UnknownService": 400,
    "Server.ClientProxy.ServiceDescriptionNotFound": 404,
    "Server.ClientProxy.OutdatedGlobalConf": 500,
    "Server.ClientProxy.SslAuthenticationFailed": 500,
    "Server.ClientProxy.NetworkError": 502,
    "Server.ClientProxy.InvalidSignatureValue": 500,
    "Server.ClientProxy.InconsistentResponse": 500,
    "Server.ClientProxy.InternalError": 500,
    "Server.ClientProxy.ServiceNotFederated": 403,
    "Server.ServerProxy.SslAuthenticationFailed": 403,
    "Server.ServerProxy.MissingSignature": 400,
    "Server.ServerProxy.InvalidSignatureValue": 400,
    "Server.ServerProxy.CertValidation": 403,
    "Server.ServerProxy.InvalidMessage": 400,
    "Server.ServerProxy.UnknownMember": 403,
    "Server.ServerProxy.UnknownService": 404,
    "Server.ServerProxy.AccessDenied": 403,
    "Server.ServerProxy.ServiceNotFederated": 403,
    "Server.ServerProxy.DuplicateMessageId": 409,
    "Server.ServerProxy.MessageTooLarge": 413,
    "Server.ServerProxy.OutdatedGlobalConf": 500,
    "Server.ServerProxy.ServiceFailed": 500,
    "Server.ServerProxy.InternalError": 500,
}


class XRoadFault(Exception):
    """A refusal sent as an X-Road error (English on the wire; see the module docstring)."""

    def __init__(self, type_: str, message: str, **facts: Any) -> None:
        if type_ not in FAULTS:
            raise ValueError(f"unknown X-Road error type {type_!r}")
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message
        self.facts = facts

    @property
    def status(self) -> int:
        return FAULTS[self.type]

    def body(self, detail: str) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "detail": detail}


__all__ = [
    "FAULTS",
    "AccessRightAlreadyGranted",
    "AccessRightNotFound",
    "ArchiveRefused",
    "ExchangeError",
    "GatewayAlreadyExists",
    "GatewayNotFound",
    "GlobalConfRefused",
    "GroupAlreadyExists",
    "GroupMemberAlreadyExists",
    "GroupNotFound",
    "InvalidIdentifier",
    "MemberAlreadyExists",
    "MemberNotFound",
    "PeerConfRefused",
    "ServiceAlreadyExists",
    "ServiceDescriptionNotFound",
    "ServiceNotFound",
    "SubsystemAlreadyExists",
    "SubsystemNotFound",
    "XRoadFault",
]
