"""GovStack Digital Registries API (Data API and Database API, templates 1.3.0), served by
the ``registers`` node (an agency's registers, reached through its exchange gateway).

Data API (``{registryName}``/``{versionNumber}`` name a registry database):

* ``GET  /data/{registryName}/{versionNumber}`` — list/search: ``search``, ``filter``,
  ``ordering``, ``page``, ``pageSize``, ``query.<field>=value``; ``{count, next, previous,
  results}`` (results are the records' contents; ``next``/``previous`` only when such a
  page exists);
* ``POST /data/{r}/{v}/create`` — ``{"write": {"content": {...}}}`` → the record;
* ``POST /data/{r}/{v}/read`` — ``{"query": {"content": {...}}}`` → the first match, 404;
* ``POST /data/{r}/{v}/exists`` — ``{"query": …}`` → ``{"answer": {"status", "message"}}``;
* ``PUT  /data/{r}/{v}/update`` — ``{"query"?, "write"}``: the one record matched, merged;
* ``PUT  /data/{r}/{v}/updateEntries`` (and ``update-entries``) — every record matched;
* ``POST /data/{r}/{v}/updateOrCreate`` (and ``update-or-create``);
* ``DELETE /data/{r}/{v}/{id}/delete`` — by uuid or primary key, 204;
* ``GET  /data/{r}/{v}/{uuid}/readValue/{field}.{ext}`` (and ``read-value``) — ``json``:
  ``{"value": …}``, ``txt``: the value as text;
* ``GET  /data/myPersonalDataUsage?userId=…&databaseId=…`` (also ``mypersonalDataUsage`` and
  ``MyPersonalDataUsage/1.0``, the spellings of the JSON template and of the features).

Database API: ``GET /databases``, ``GET|DELETE /database/{id}``, ``POST /database/modify``.

Every call needs the calling client (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``) in
``Information-Mediator-Client`` (GovStack's name) or ``X-Road-Client`` (what a Jisr exchange
gateway forwards: the client its signed, authenticated message names; it never carries a
caller's own ``Information-Mediator-Client`` or ``X-Road-*`` header); both, when given, must
agree. It is the actor on the audit chain and the reader in the personal data usage log. The
node authenticates nobody itself: it is served only when named (``jisr serve --roles
registers``, on an internal address) and reached through its agency's exchange gateway, whose
access rights say who may call which path. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from jisr.core.http import node, request_language, session_of
from jisr.core.i18n import _, gettext
from jisr.core.instance import Node
from jisr.services import registries
from jisr.services.registries import REGISTERS_NODE, Auditor, BadQuery
from jisr.services.registries_models import RegistryDatabase

router = APIRouter(tags=["GovStack digital registries"])

SessionDep = Annotated[Session, session_of(REGISTERS_NODE)]
NodeDep = Annotated[Node, Depends(node(REGISTERS_NODE))]
LanguageDep = Annotated[str, Depends(request_language)]
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request or query", **_PROBLEM},
    404: {"description": "No such registry or record", **_PROBLEM},
    409: {"description": "Duplicate key or ambiguous query", **_PROBLEM},
    422: {"description": "The content breaks the registry's schema", **_PROBLEM},
}


def _client(
    mediator: Annotated[
        str | None,
        Header(
            alias="Information-Mediator-Client",
            description="The calling exchange client: INSTANCE/CLASS/MEMBER/SUBSYSTEM.",
            max_length=260,
        ),
    ] = None,
    x_road: Annotated[
        str | None,
        Header(
            alias="X-Road-Client",
            description="The same, as a Jisr exchange gateway forwards it (the client its "
            "signed message names).",
            max_length=260,
        ),
    ] = None,
) -> str:
    if mediator is None and x_road is None:
        raise BadQuery(
            _("The call names no client (Information-Mediator-Client or X-Road-Client).")
        )
    if mediator is not None and x_road is not None and mediator != x_road:
        raise BadQuery(_("Information-Mediator-Client and X-Road-Client name different clients."))
    return registries.check_client(x_road if x_road is not None else mediator or "")


ClientDep = Annotated[str, Depends(_client)]


class Content(BaseModel):
    content: dict[str, Any]


class WriteBody(BaseModel):
    write: Content


class QueryBody(BaseModel):
    query: Content


class QueryWriteBody(BaseModel):
    query: Content | None = None
    write: Content

    def arguments(self) -> dict[str, Any]:
        """The ``query`` (or ``None``) and ``write`` contents, as the service takes them."""
        return {"query": self.query.content if self.query else None, "write": self.write.content}


class ModifyBody(BaseModel):
    """GovStack ``/database/modify``, plus the optional fields that name the database."""

    groupName: str = Field("", max_length=200)  # noqa: N815
    catalogName: str = Field("", max_length=200)  # noqa: N815
    code: str = Field(max_length=32)
    schema_: dict[str, Any] = Field(alias="schema")
    name: str | None = Field(None, max_length=100)
    version: str | None = Field(None, max_length=32)
    description: str | None = Field(None, max_length=2000)
    institution: str | None = Field(None, max_length=200)
    numberFormat: str | None = Field(None, max_length=100)  # noqa: N815
    schemaFlags: list[dict[str, Any]] | None = None  # noqa: N815


@dataclass(frozen=True)
class Caller:
    """A request's session of the registers node, the served node and the calling client."""

    session: Session
    served: Node
    client: str

    def auditor(self) -> Auditor:
        """The auditor that signs this client's writes on the chain."""
        return registries.node_auditor(self.served, self.session, self.client)


@dataclass(frozen=True)
class RegistryCaller(Caller):
    """A ``Caller`` of the Data API, with the registry the path names."""

    name: str
    version: str

    def database(self) -> RegistryDatabase:
        """The registry database ``{registryName}``/``{versionNumber}`` (404 otherwise)."""
        return registries.get_database(self.session, self.name, self.version)


def _caller(session: SessionDep, served: NodeDep, client: ClientDep) -> Caller:
    return Caller(session, served, client)


def _registry_caller(
    session: SessionDep,
    served: NodeDep,
    client: ClientDep,
    registryName: str,  # noqa: N803
    versionNumber: str,  # noqa: N803
) -> RegistryCaller:
    return RegistryCaller(session, served, client, registryName, versionNumber)


CallerDep = Annotated[Caller, Depends(_caller)]
RegistryDep = Annotated[RegistryCaller, Depends(_registry_caller)]


# --- personal data usage (before the list route: /data/MyPersonalDataUsage/1.0) ------------


@router.get("/data/myPersonalDataUsage", responses=ERRORS)
@router.get("/data/mypersonalDataUsage", include_in_schema=False)
@router.get("/data/MyPersonalDataUsage/1.0", include_in_schema=False)
def my_personal_data_usage(
    session: SessionDep,
    client: ClientDep,
    userId: Annotated[str, Query(max_length=100)],  # noqa: N803
    databaseId: Annotated[str, Query(max_length=100)],  # noqa: N803
) -> list[dict[str, Any]]:
    """Who read the person's records in the databases with this code (newest first)."""
    return registries.personal_data_usage(session, user_id=userId, database_code=databaseId)


# --- Data API ------------------------------------------------------------------------------


@router.get("/data/{registryName}/{versionNumber}", responses=ERRORS)
def list_records(
    request: Request,
    call: RegistryDep,
    search: Annotated[str | None, Query(max_length=registries.MAX_SEARCH)] = None,
    filter: Annotated[str | None, Query(max_length=200)] = None,
    ordering: Annotated[str | None, Query(max_length=200)] = None,
    page: int = 1,
    pageSize: int = registries.DEFAULT_PAGE_SIZE,  # noqa: N803
) -> dict[str, Any]:
    """Search the records (``query.<field>=value`` for exact matches)."""
    database = call.database()
    fields = {
        key.removeprefix("query."): value
        for key, value in request.query_params.multi_items()
        if key.startswith("query.")
    }
    if any(not name for name in fields):
        raise BadQuery(_("A query parameter query.<field> must name a field."))
    found = registries.list_records(
        call.session,
        database=database,
        reader=call.client,
        search=search,
        filter=filter,
        ordering=ordering,
        page=page,
        page_size=pageSize,
        fields=fields,
    )
    answer: dict[str, Any] = {"count": found.count}
    # ``next``/``previous`` only when there is such a page (the template types them string)
    if found.has_next:
        answer["next"] = str(request.url.include_query_params(page=page + 1))
    if page > 1:
        answer["previous"] = str(request.url.include_query_params(page=page - 1))
    answer["results"] = [record.content for record in found.results]
    return answer


@router.post("/data/{registryName}/{versionNumber}/create", responses=ERRORS)
def create(body: WriteBody, call: RegistryDep) -> dict[str, Any]:
    """Create a record (checked against the registry's schema)."""
    record = registries.create_record(
        call.session, database=call.database(), content=body.write.content, auditor=call.auditor()
    )
    return registries.record_view(record)


@router.post("/data/{registryName}/{versionNumber}/read", responses=ERRORS)
def read(body: QueryBody, call: RegistryDep) -> dict[str, Any]:
    """The first record matching the query."""
    record = registries.read_record(
        call.session, database=call.database(), query=body.query.content, reader=call.client
    )
    return registries.record_view(record)


@router.post("/data/{registryName}/{versionNumber}/exists", responses=ERRORS)
def exists(body: QueryBody, call: RegistryDep, language: LanguageDep) -> dict[str, Any]:
    """Whether a record matches the query."""
    found = registries.exists(call.session, database=call.database(), query=body.query.content)
    message = _("Object found from database") if found else _("Object not found in database")
    return {"answer": {"status": found, "message": gettext(message, language)}}


@router.put("/data/{registryName}/{versionNumber}/update", responses=ERRORS)
def update(body: QueryWriteBody, call: RegistryDep) -> dict[str, Any]:
    """Update the one record the query (or the written primary key) matches."""
    record = registries.update_record(
        call.session, database=call.database(), auditor=call.auditor(), **body.arguments()
    )
    return registries.record_view(record)


@router.put("/data/{registryName}/{versionNumber}/updateEntries", responses=ERRORS)
@router.put("/data/{registryName}/{versionNumber}/update-entries", include_in_schema=False)
def update_entries(body: QueryWriteBody, call: RegistryDep) -> dict[str, Any]:
    """Update every record the query matches; ``{"count": n}``."""
    records = registries.update_entries(
        call.session, database=call.database(), auditor=call.auditor(), **body.arguments()
    )
    return {"count": len(records), "uuids": [r.uuid for r in records]}


@router.post("/data/{registryName}/{versionNumber}/updateOrCreate", responses=ERRORS)
@router.post("/data/{registryName}/{versionNumber}/update-or-create", include_in_schema=False)
def update_or_create(body: QueryWriteBody, call: RegistryDep) -> dict[str, Any]:
    """Update the record the query matches, or create one from ``write``."""
    record, created = registries.update_or_create(
        call.session, database=call.database(), auditor=call.auditor(), **body.arguments()
    )
    return {**registries.record_view(record), "created": created}


@router.delete(
    "/data/{registryName}/{versionNumber}/{id}/delete", status_code=204, responses=ERRORS
)
def delete(call: RegistryDep, id: str) -> Response:
    """Delete the record whose uuid or primary key is ``id``."""
    registries.delete_record(call.session, database=call.database(), ref=id, auditor=call.auditor())
    return Response(status_code=204)


@router.get("/data/{registryName}/{versionNumber}/{uuid}/readValue/{field}.{ext}", responses=ERRORS)
@router.get(
    "/data/{registryName}/{versionNumber}/{uuid}/read-value/{field}.{ext}",
    include_in_schema=False,
)
def read_value(call: RegistryDep, uuid: str, field: str, ext: str) -> Response:
    """One field of one record: ``json`` → ``{"value": …}``, ``txt`` → the value as text."""
    if ext not in ("json", "txt"):
        raise BadQuery(_("The format {ext} is not offered; use json or txt."), ext=ext[:20])
    value = registries.read_value(
        call.session, database=call.database(), ref=uuid, field=field, reader=call.client
    )
    if ext == "txt":
        return PlainTextResponse(value if isinstance(value, str) else _json_text(value))
    return JSONResponse({"value": value})


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


# --- Database API --------------------------------------------------------------------------


@router.get("/databases", responses=ERRORS)
def databases(session: SessionDep, client: ClientDep) -> list[dict[str, Any]]:
    """Every database, grouped by catalogue (GovStack ``databasesSchema`` objects)."""
    return registries.catalogues(session)


@router.get("/database/{id}", responses=ERRORS)
def database(session: SessionDep, client: ClientDep, id: int) -> dict[str, Any]:
    """One database with its schema (GovStack ``DatabaseInfo``)."""
    return registries.database_info(session, registries.get_database_by_id(session, id))


@router.delete("/database/{id}", responses=ERRORS)
def delete_database(call: CallerDep, id: int) -> str:
    """Delete an empty database; ``"Success"``."""
    registries.delete_database(call.session, database_id=id, auditor=call.auditor())
    return "Success"


@router.post("/database/modify", responses=ERRORS)
def modify_database(body: ModifyBody, call: CallerDep) -> dict[str, Any]:
    """Create a database, or replace its schema (refused if a record would break it)."""
    fields: dict[str, Any] = {"group_name": body.groupName, "catalog_name": body.catalogName}
    description = body.description or body.schema_.get("description")
    if isinstance(description, str):
        fields["description"] = description
    if body.institution:
        fields["institution"] = body.institution
    if body.numberFormat is not None:
        fields["number_format"] = body.numberFormat
    if body.schemaFlags is not None:
        fields["schema_flags"] = body.schemaFlags
    database, _created = registries.modify_database(
        call.session,
        code=body.code,
        schema=body.schema_,
        name=body.name,
        version=body.version,
        auditor=call.auditor(),
        **fields,
    )
    schema: dict[str, Any] = registries.database_info(call.session, database)["schema"]
    return schema


__all__ = ["router"]
