"""The population register's JSON API, served by the ``idp`` node, for agencies.

``GET /api/identity/persons/{national_id}`` (either written form), ``GET
/api/identity/persons?q=…`` (identifier or name, Arabic or Latin script), ``POST
/api/identity/persons``, ``PATCH /api/identity/persons/{national_id}`` and ``POST
/api/identity/persons/{national_id}/death``. Errors are RFC 9457 problem details.

Authorisation: these are administrative APIs. They are mounted only on the idp node, which
is meant to listen on the administration's internal network; access rights per agency come
with the exchange (``jisr.exchange``), which will front them. Until then, do not expose the
idp node's ``/api/identity`` to the public internet.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from jisr.core.http import node, session_of
from jisr.core.instance import Node
from jisr.identity import service
from jisr.identity.schemas import DeathRecord, PersonCreate, PersonList, PersonRead, PersonUpdate

router = APIRouter(prefix="/api/identity/persons", tags=["identity: population register"])

SessionDep = Annotated[Session, session_of("idp")]
NodeDep = Annotated[Node, Depends(node("idp"))]
ACTOR = "api"

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such person", **_PROBLEM}}
BAD_ID: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed national identifier or fields", **_PROBLEM}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Already registered, or already deceased", **_PROBLEM}
}


@router.get("", response_model=PersonList, responses=BAD_ID)
def search(
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Identifier or name")],
    country: Annotated[str | None, Query(pattern="^[A-Za-z]{2}$")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 20,
) -> PersonList:
    """Persons matching an identifier or a name (spelling variants included), best first."""
    found = service.search_persons(session, q, country=country, limit=limit)
    persons = [PersonRead.model_validate(person) for person in found]
    return PersonList(query=q, count=len(persons), persons=persons)


@router.get("/{national_id}", response_model=PersonRead, responses={**NOT_FOUND, **BAD_ID})
def read(session: SessionDep, national_id: str) -> PersonRead:
    """One person by national identifier (``MA:AB123456`` or ``MAAB123456``)."""
    return PersonRead.model_validate(service.get_person_by_national_id(session, national_id))


@router.post(
    "",
    response_model=PersonRead,
    status_code=status.HTTP_201_CREATED,
    responses={**BAD_ID, **CONFLICT},
)
def create(session: SessionDep, idp: NodeDep, payload: PersonCreate) -> PersonRead:
    """Add a person to the register (recorded on the register's audit chain)."""
    person = service.create_person(
        session, payload, actor=ACTOR, signer=idp.checkpoint_signer(session)
    )
    return PersonRead.model_validate(person)


@router.patch("/{national_id}", response_model=PersonRead, responses={**NOT_FOUND, **BAD_ID})
def update(
    session: SessionDep, idp: NodeDep, national_id: str, payload: PersonUpdate
) -> PersonRead:
    """Change some fields; each change is recorded, old and new value."""
    person = service.update_person(
        session, national_id, payload, actor=ACTOR, signer=idp.checkpoint_signer(session)
    )
    return PersonRead.model_validate(person)


@router.post(
    "/{national_id}/death",
    response_model=PersonRead,
    responses={**NOT_FOUND, **BAD_ID, **CONFLICT},
)
def record_death(
    session: SessionDep, idp: NodeDep, national_id: str, payload: DeathRecord
) -> PersonRead:
    """Record the person's death (once)."""
    person = service.mark_deceased(
        session,
        national_id,
        death_date=payload.death_date,
        actor=ACTOR,
        signer=idp.checkpoint_signer(session),
    )
    return PersonRead.model_validate(person)
