"""The registry's public HTTP API for gateways: the signed global configuration.

``GET /exchange/globalconf`` — the current global configuration, a compact JWS
(``application/jose``); ``GET /exchange/globalconf/jwks`` — the registry's signing keys (to
check an anchor against); ``GET /exchange/ca.pem`` — the instance CA certificate;
``GET /exchange/services/{service}/openapi`` — a service's OpenAPI document (gateways check it
against the SHA-256 the configuration lists, and serve it with ``getOpenAPI``);
``GET /exchange/federation/shared-params`` — what federated instances need to reach this
instance's gateways (``jisr.exchange.federation``). Mounted on
the ``registry`` node. Nothing here is secret: the configuration is public to the instance's
gateways and its integrity comes from the signature, checked against the gateway's anchor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session

from jisr.core.crypto import ca, keystore
from jisr.core.http import node, session_of
from jisr.core.instance import REGISTRY_NODE, Node
from jisr.exchange import federation, globalconf, service
from jisr.exchange.identifiers import ServiceId

router = APIRouter(prefix="/exchange", tags=["exchange: registry"])

SessionDep = Annotated[Session, session_of(REGISTRY_NODE)]
NodeDep = Annotated[Node, Depends(node(REGISTRY_NODE))]


@router.get(
    "/globalconf",
    response_class=Response,
    responses={200: {"content": {globalconf.MEDIA_TYPE: {}}}},
)
def get_globalconf(session: SessionDep, registry: NodeDep) -> Response:
    """The signed global configuration (a new version is signed when it changed or ages)."""
    federation.refresh_stale(registry)  # federated peers' shared parameters, when aging
    settings = registry.settings
    signed = globalconf.current(
        session,
        registry.keys,
        instance=settings.instance_code,
        validity_seconds=settings.exchange_globalconf_validity_seconds,
        crl_validity_hours=settings.crl_validity_hours,
    )
    return Response(
        signed.token,
        media_type=globalconf.MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "X-Jisr-Globalconf-Version": str(signed.version)},
    )


@router.get(
    "/federation/shared-params",
    response_class=Response,
    responses={200: {"content": {globalconf.MEDIA_TYPE: {}}}},
)
def get_shared_params(session: SessionDep, registry: NodeDep) -> Response:
    """This instance's shared parameters for federated instances (CA, CRL, members,
    subsystems, gateways), signed with the registry's federation key that agreements pin."""
    token = federation.shared_params(session, node=registry)
    return Response(token, media_type=globalconf.MEDIA_TYPE, headers={"Cache-Control": "no-store"})


@router.get("/globalconf/jwks")
def get_jwks(session: SessionDep) -> dict[str, Any]:
    """The registry's signing keys (active and retired) as a JWKS."""
    return keystore.public_jwks(session, purpose="signing")


@router.get("/ca.pem", response_class=Response)
def get_ca(session: SessionDep) -> Response:
    """The instance CA certificate (PEM)."""
    return Response(ca.to_pem(ca.ca_certificate(session)), media_type="application/x-pem-file")


@router.get(
    "/services/{service_id:path}/openapi",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}, "text/yaml": {}}},
        400: {"description": "Malformed service identifier"},
        404: {"description": "No such service, or it has no OpenAPI description"},
    },
)
def get_service_openapi(service_id: str, session: SessionDep) -> Response:
    """The OpenAPI document registered for a service, as registered (JSON or YAML)."""
    document = service.get_openapi(session, service=ServiceId.parse(service_id))
    media = "application/json" if document.lstrip().startswith("{") else "text/yaml"
    return Response(document, media_type=media)
