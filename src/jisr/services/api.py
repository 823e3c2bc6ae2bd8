"""The catalogue's read API, served by the ``portal`` node; no session is needed (files).

GovStack Registration API (``shared/specs/govstack/registration``), "Available Services":

* ``GET /services?name=…`` — the procedures as GovStack ``service`` objects, texts in the
  ``Accept-Language`` language (Arabic by default); ``name`` filters on the title;
* ``GET /services/{serviceId}`` — one of them; 404 problem details when unknown.

The catalogue's own shape, for the portal and the assistant:

* ``GET /api/services?country=MA|QA`` — every procedure, whole, in ar/fr/en;
* ``GET /api/services/{id}`` — one procedure, whole.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from jisr.core.http import request_language
from jisr.services import service
from jisr.services.schemas import GovStackService, Procedure

router = APIRouter(tags=["services: catalogue"])

LanguageDep = Annotated[str, Depends(request_language)]
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such procedure", **_PROBLEM}}


@router.get("/services", response_model=list[GovStackService], tags=["GovStack registration"])
def govstack_services(
    language: LanguageDep,
    name: Annotated[str | None, Query(max_length=200, description="Part of a title")] = None,
) -> list[GovStackService]:
    """The procedures of the catalogue as GovStack services (getServiceList)."""
    return service.search_govstack(name, language)


@router.get(
    "/services/{serviceId}",
    response_model=GovStackService,
    responses=NOT_FOUND,
    tags=["GovStack registration"],
)
def govstack_service(serviceId: str, language: LanguageDep) -> GovStackService:  # noqa: N803
    """One procedure as a GovStack service (getService)."""
    return service.as_govstack_service(service.get_procedure(serviceId), language)


@router.get("/api/services", response_model=list[Procedure], response_model_exclude_none=True)
def procedures(country: Literal["MA", "QA"] | None = None) -> list[Procedure]:
    """Every procedure of the catalogue (of one country), whole, in ar/fr/en."""
    return service.list_procedures(country)


@router.get(
    "/api/services/{procedure_id}",
    response_model=Procedure,
    response_model_exclude_none=True,
    responses=NOT_FOUND,
)
def procedure(procedure_id: str) -> Procedure:
    """One procedure of the catalogue, whole, in ar/fr/en."""
    return service.get_procedure(procedure_id)
