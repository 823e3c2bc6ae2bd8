"""Once-only evidence: what another agency already holds is fetched through the exchange.

A required document of the catalogue may name ``evidence_service``, an exchange service id
(``MA/GOV/DGSN/IDENTITY/identity-record``). The portal is an information system like any
agency's: it calls *its own* gateway's client proxy over plain HTTP,

    GET {services_gateway_url}/r1/{service}{record path}
        X-Road-Client: {services_exchange_client}     the portal's subsystem
        X-Road-Id:     a fresh UUID                    the message id, in both message logs
        X-Road-UserId: the person                      whose record it is
        X-Road-Issue:  the purpose and lawful basis    why it is read

and the gateway signs the call, carries it over mutual TLS to the provider's gateway, which
checks the portal's access right and asks the agency's system. The answer (a JSON object)
becomes a ``Fetched``; a refusal (``X-Road-Error``), a missing record, an unreachable gateway
or provider becomes ``EvidenceUnavailable`` with the reason, and the person is asked for the
document instead.

**Path convention.** Every evidence service answers the record of one person at
``GET /records/{national_id}`` (the display form, ``MA:AB123456``), except the services listed
in ``RECORD_PATHS`` (the civil registry's ``birth-record``, published earlier at
``/births/{national_id}``). ``record_path`` is the one place that says so.

**Availability.** ``available(service)`` asks the exchange's service metadata, the GovStack
Directory ``allowedMethods`` metaservice, through the same gateway: a service is available
when the provider subsystem lists it for the portal with a ``GET`` right covering the record
path. One answer per provider subsystem is kept ``services_metadata_cache_seconds``. A
service nobody provides, or that the portal may not call, is not available: its document is
asked of the person.
"""

from __future__ import annotations

import datetime
import fnmatch
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from jisr.core.clock import utcnow
from jisr.core.errors import ConfigurationError
from jisr.core.i18n import _
from jisr.core.instance import Node
from jisr.core.logging import get_logger
from jisr.exchange.errors import InvalidIdentifier
from jisr.exchange.identifiers import ServiceId, SubsystemId
from jisr.identity.errors import InvalidNationalId
from jisr.identity.identifiers import parse_national_id
from jisr.services.errors import ServicesError

log = get_logger("jisr.services.evidence")

RECORD_PATH = "/records/{national_id}"
RECORD_PATHS: dict[str, str] = {
    # Published before the convention; its access rights say /births/*.
    "MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record": "/births/{national_id}",
}
ALLOWED_METHODS = "allowedMethods"
# Printable ASCII but "%": header values stay readable; anything else is percent-encoded UTF-8.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class Fetched:
    service: str  # exchange service id (the catalogue's evidence_service)
    provider: str  # provider member id, e.g. "MA/GOV/CIVIL-REGISTRY"
    message_id: str  # X-Road-Id of the exchange call
    purpose: str  # lawful basis / purpose sent with the call (X-Road-Issue)
    fetched_at: datetime.datetime
    data: dict[str, Any]  # provider's JSON answer


class EvidenceUnavailable(ServicesError):
    """The exchange could not supply the evidence: refused, unknown, unreachable, no record."""

    status_code = 502
    code = "evidence-unavailable"
    title = _("The evidence could not be fetched through the exchange")


class EvidenceSource(Protocol):
    def available(self, service: str) -> bool: ...

    def fetch(self, service: str, *, national_id: str, purpose: str, user_id: str) -> Fetched: ...


def record_path(service: str, national_id: str) -> str:
    """The path, after the service, of the record of ``national_id`` (any written form)."""
    display = parse_national_id(national_id).display
    return RECORD_PATHS.get(service, RECORD_PATH).format(national_id=quote(display, safe=":"))


def header_text(text: str) -> str:
    """``text`` as an HTTP header value: printable ASCII as is, the rest percent-encoded."""
    return quote(text, safe=_HEADER_SAFE)


def _covers(endpoints: list[dict[str, Any]], path: str) -> bool:
    """Whether a ``{method, path}`` rule (access-right semantics) allows ``GET path``."""
    for endpoint in endpoints:
        method, pattern = str(endpoint.get("method", "")), str(endpoint.get("path", ""))
        if method in ("*", "GET") and (pattern == "*" or fnmatch.fnmatchcase(path, pattern)):
            return True
    return False


class GatewayEvidenceSource:
    """Evidence through the portal's own exchange gateway (see the module docstring)."""

    def __init__(
        self,
        gateway_url: str,
        client: str,
        *,
        timeout: float = 35.0,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            self.client = str(SubsystemId.parse(client))
        except InvalidIdentifier as error:
            raise ConfigurationError(
                _("services_exchange_client {client!r} is not a subsystem id: {reason}"),
                client=client,
                reason=error.detail,
            ) from error
        self.gateway_url = gateway_url.rstrip("/")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # One pooled client (keep-alive to the gateway; httpx.Client is thread-safe).
        self._http = httpx.Client(timeout=timeout, trust_env=False)
        # provider subsystem -> (expires at, {service code: endpoints allowed to us})
        self._allowed: dict[str, tuple[float, dict[str, list[dict[str, Any]]]]] = {}

    def close(self) -> None:
        """Close the pooled connections to the gateway."""
        self._http.close()

    def __enter__(self) -> GatewayEvidenceSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- availability -------------------------------------------------------------------

    def allowed_services(self, provider: SubsystemId) -> dict[str, list[dict[str, Any]]] | None:
        """``allowedMethods`` of ``provider`` for the portal (code -> endpoints), cached;
        None when the gateway cannot be reached (nothing cached then)."""
        key = str(provider)
        now = self._clock()
        with self._lock:
            cached = self._allowed.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        url = f"{self.gateway_url}/r1/{quote(key, safe='/')}/{ALLOWED_METHODS}"
        try:
            answer = self._http.get(url, headers={"X-Road-Client": self.client})
        except httpx.HTTPError as error:
            log.warning("evidence.metadata.unreachable", url=url, error=repr(error))
            return None
        found: dict[str, list[dict[str, Any]]] = {}
        if answer.status_code == 200 and not answer.headers.get("x-road-error"):
            try:
                listed = answer.json().get("member", [])
                for item in listed:
                    endpoints = item.get("endpointList", {}).get("member", [])
                    found[str(item["serviceCode"])] = [e for e in endpoints if isinstance(e, dict)]
            except (ValueError, AttributeError, KeyError, TypeError):
                log.warning("evidence.metadata.malformed", url=url)
                return None
        else:  # an unknown provider: nothing is available from it
            log.info(
                "evidence.metadata.refused",
                provider=key,
                status=answer.status_code,
                error=answer.headers.get("x-road-error"),
            )
        with self._lock:
            self._allowed[key] = (now + self.cache_seconds, found)
        return found

    def available(self, service: str) -> bool:
        try:
            target = ServiceId.parse(service)
        except InvalidIdentifier:
            return False
        allowed = self.allowed_services(target.subsystem)
        if allowed is None or target.code not in allowed:
            return False
        sample = "MA:AB123456" if target.instance.startswith("MA") else "QA:28435612345"
        return _covers(allowed[target.code], record_path(str(target), sample))

    # -- fetching -----------------------------------------------------------------------

    def fetch(self, service: str, *, national_id: str, purpose: str, user_id: str) -> Fetched:
        try:
            target = ServiceId.parse(service)
        except InvalidIdentifier as error:
            raise EvidenceUnavailable(
                _("{service} is not an exchange service id: {reason}"),
                service=service,
                reason=error.detail,
            ) from error
        if not purpose.strip() or not user_id.strip():
            raise EvidenceUnavailable(
                _("Evidence is fetched only for a named person and a stated purpose ({service})."),
                service=service,
            )
        try:
            path = record_path(str(target), national_id)
        except InvalidNationalId as error:
            raise EvidenceUnavailable(
                _("{service} cannot be asked for {national_id}: {reason}"),
                service=service,
                national_id=national_id,
                reason=error.detail,
            ) from error
        message_id = str(uuid.uuid4())
        headers = {
            "X-Road-Client": self.client,
            "X-Road-Id": message_id,
            "X-Road-UserId": header_text(user_id),
            "X-Road-Issue": header_text(purpose),
            "Accept": "application/json",
        }
        url = f"{self.gateway_url}/r1/{quote(str(target), safe='/')}{path}"
        try:
            answer = self._http.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise EvidenceUnavailable(
                _("The exchange gateway cannot be reached for {service}: {reason}"),
                service=service,
                reason=type(error).__name__,
            ) from error
        fault = answer.headers.get("x-road-error")
        if fault:
            try:
                message = str(answer.json().get("message", ""))
            except (ValueError, AttributeError):
                message = ""
            log.info("evidence.refused", service=service, id=message_id, error=fault)
            raise EvidenceUnavailable(
                _("The exchange refused to supply {service}: {reason}"),
                service=service,
                reason=f"{fault} ({message})" if message else fault,
                x_road_error=fault,
                message_id=message_id,
            )
        provider = str(target.member)
        if answer.status_code == 404:
            raise EvidenceUnavailable(
                _("{provider} holds no record of {national_id} ({service})."),
                provider=provider,
                national_id=national_id,
                service=service,
                message_id=message_id,
            )
        if answer.status_code != 200:
            raise EvidenceUnavailable(
                _("The system of {provider} answered {service} with HTTP status {status}."),
                provider=provider,
                service=service,
                status=answer.status_code,
                message_id=message_id,
            )
        try:
            data = answer.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise EvidenceUnavailable(
                _("The system of {provider} did not answer {service} with a JSON record."),
                provider=provider,
                service=service,
                message_id=message_id,
            )
        log.info("evidence.fetched", service=service, id=message_id, provider=provider)
        return Fetched(
            service=str(target),
            provider=provider,
            message_id=answer.headers.get("x-road-id", message_id),
            purpose=purpose,
            fetched_at=utcnow(),
            data=data,
        )


_sources: dict[str, GatewayEvidenceSource] = {}
_sources_lock = threading.Lock()


def evidence_source(node: Node) -> EvidenceSource | None:
    """The portal's evidence source, from ``node``'s settings; None when no gateway is set.

    One source per client subsystem, kept so that its metadata cache and connections outlive
    a request; replaced (the old one closed) when the settings change.
    """
    settings = node.settings
    url = settings.services_gateway_url.strip().rstrip("/")
    if not url:
        return None
    client = settings.services_exchange_client.strip()
    if not client:
        raise ConfigurationError(
            _(
                "services_gateway_url is set but services_exchange_client is not: set the "
                "portal's subsystem id (e.g. MA/GOV/ESERVICES/PORTAL)."
            )
        )
    timeout = settings.exchange_service_timeout_seconds + 5.0
    cache_seconds = settings.services_metadata_cache_seconds
    with _sources_lock:
        source = _sources.get(client)
        if source is not None and (
            source.gateway_url,
            source.timeout,
            source.cache_seconds,
        ) == (url, timeout, cache_seconds):
            return source
        fresh = GatewayEvidenceSource(url, client, timeout=timeout, cache_seconds=cache_seconds)
        _sources[client] = fresh
    if source is not None:
        source.close()
    return fresh


def close_sources() -> None:
    """Close and forget the sources ``evidence_source`` keeps (when a portal stops)."""
    with _sources_lock:
        kept = list(_sources.values())
        _sources.clear()
    for source in kept:
        source.close()


__all__ = [
    "ALLOWED_METHODS",
    "RECORD_PATH",
    "RECORD_PATHS",
    "EvidenceSource",
    "EvidenceUnavailable",
    "Fetched",
    "GatewayEvidenceSource",
    "close_sources",
    "evidence_source",
    "header_text",
    "record_path",
]
