"""The GovStack Registration API's applications, documents, tasks, e-forms and statistics
(``shared/specs/govstack/registration``), served by the ``portal`` node.

Authentication (RFC 6750 bearer tokens of this instance's OpenID provider, checked against
the ``idp`` node, which must be served in the same process):

* an **applicant** presents the access token of their login (authorization code flow,
  scope ``openid``): they apply for themselves, upload, see and complete their own tasks;
* an **officer** presents a ``client_credentials`` token of an administrative client
  holding the scope ``agency:<member id>`` (``agency:MA/GOV/MOI``; registered with ``jisr
  identity client add --grant client_credentials --scope agency:MA/GOV/MOI``): they see
  and work the applications and tasks of that agency only; the client id is the officer id.

No token, an unknown, expired or revoked one: 401; a token of the wrong kind: 403.
E-forms and statistics need none (the specification lets "anyone" read statistics).

Routes: ``GET /services/{serviceId}/eForms``, ``GET /eForms/{eFormId}``, ``POST
/services/{serviceId}/applications``, ``POST /documents`` (multipart ``file``), ``GET
/applications``, ``GET|PUT /applications/{fileId}``, ``GET /tasks``, ``GET
/tasks/{taskId}``, ``POST /tasks/{taskId}/complete``, ``GET /data/statistics`` (GovStack's
shape) and ``GET /api/statistics/services`` (every figure, per procedure and overall).

Deviations from the specification, on purpose: ids are our own (procedure slugs, UUIDs of
applications and tasks), not the specification's examples; an applicant applies only for
themselves (``applicantId``, when given, must be theirs); uploads are PDF, JPEG or PNG by
content, not "all media types"; ``documentUrls`` answer the procedure's asked documents in
order; statistics are one figure set for the period asked (``timeframe`` is echoed, not
split), and ``operator`` filters on the officer id.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jisr.core.errors import Forbidden, InvalidInput, Unauthorized
from jisr.core.http import node, request_language, session_of
from jisr.core.i18n import _, gettext
from jisr.core.instance import Node
from jisr.identity.oidc.server import Provider
from jisr.services import applications as apps
from jisr.services import evidence, service
from jisr.services.errors import (
    IllegalTransition,
    InvalidForm,
    NotYourAgency,
    ProcedureNotFound,
    TaskNotFound,
)
from jisr.services.evidence import EvidenceSource

router = APIRouter(tags=["GovStack registration"])
PortalDep = Annotated[Session, session_of("portal")]
IdpDep = Annotated[Session, session_of("idp")]
PortalNodeDep = Annotated[Node, Depends(node("portal"))]
LanguageDep = Annotated[str, Depends(request_language)]
AGENCY_PREFIX = "agency:"
IM_CLIENT = re.compile(r"^[^/\s]+/[^/\s]+/[^/\s]+/[^/\s]+$")
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or not a valid one", **_PROBLEM},
    403: {"description": "A token of the wrong kind, or another agency's", **_PROBLEM},
}

STATUS: dict[str, tuple[str, str]] = {
    apps.DRAFT: ("PENDING", _("Waiting for documents")),
    apps.SUBMITTED: ("PENDING", _("Submitted")),
    apps.IN_REVIEW: ("PENDING", _("In review")),
    apps.MORE_INFO: ("SENDBACK", _("More information needed")),
    apps.APPROVED: ("APPROVED", _("Approved")),
    apps.REJECTED: ("REJECTED", _("Rejected")),
}
TASK_NAMES = {
    apps.REVIEW: _("Review the application"),
    apps.PROVIDE_DOCUMENTS: _("Provide the documents asked"),
    apps.PROVIDE_INFORMATION: _("Answer the officer's question"),
}


# --- who calls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    national_id: str | None = None
    officer: apps.Officer | None = None

    def applicant(self) -> str:
        if self.national_id is None:
            raise Forbidden(_("This is done by the applicant, with the token of their login."))
        return self.national_id

    def agent(self) -> apps.Officer:
        if self.officer is None:
            raise Forbidden(_("This is done by an officer, with a token for their agency."))
        return self.officer


def caller(request: Request, idp: IdpDep) -> Caller:
    """The applicant or officer the request's bearer token names."""
    scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(_("A bearer access token is required."))
    node = request.app.state.nodes.get("idp")
    if node is None:  # pragma: no cover - session_of("idp") fails first
        raise Unauthorized(_("A bearer access token is required."))
    token = Provider(idp, node).find_access_token(value.strip())
    if token is None or token.is_expired() or token.is_revoked():
        raise Unauthorized(_("The access token is unknown, expired or revoked."))
    scopes = token.get_scope().split()
    if token.row.person_id is not None:
        if "openid" not in scopes:
            raise Forbidden(_("The access token lacks the openid scope."))
        return Caller(national_id=token.national_id)
    agencies = [s.removeprefix(AGENCY_PREFIX) for s in scopes if s.startswith(AGENCY_PREFIX)]
    if len(agencies) != 1:
        raise Forbidden(_("An officer's token must name exactly one agency (agency:<member>)."))
    return Caller(officer=apps.Officer(agency=agencies[0], officer_id=token.get_client().client_id))


CallerDep = Annotated[Caller, Depends(caller)]


@dataclass(frozen=True)
class Paging:
    """The list routes' ``firstResult``, ``maxResult`` and ``sortOrder`` (``sortBy`` is
    accepted and ignored: the order is by creation)."""

    offset: int
    limit: int
    newest_first: bool


def paging(
    firstResult: Annotated[int, Query(ge=0)] = 0,  # noqa: N803
    maxResult: Annotated[int, Query(ge=1, le=500)] = 100,  # noqa: N803
    sortBy: str | None = None,  # noqa: N803
    sortOrder: Literal["asc", "desc"] = "asc",  # noqa: N803
) -> Paging:
    return Paging(offset=firstResult, limit=maxResult, newest_first=sortOrder == "desc")


PagingDep = Annotated[Paging, Depends(paging)]


# --- shapes ---------------------------------------------------------------------------------


class FormData(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict)
    eFormId: str | None = None


class ApplicationFileSubmit(BaseModel):
    """GovStack ``applicationFileSubmit``; ``holderKey`` (ours, optional): the public JWK
    the credential issued on approval is bound to."""

    applicationName: str | None = Field(default=None, max_length=200)
    applicantId: str | None = Field(default=None, max_length=64)
    created: dt.datetime | None = None
    formData: FormData = Field(default_factory=FormData)
    documentUrls: list[str] = Field(default_factory=list, max_length=50)
    holderKey: dict[str, Any] | None = None


class AdditionalData(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict)


def _form_values(data: dict[str, Any]) -> dict[str, Any]:
    """Form fields as GovStack sends them (each an object, ``{"value": …}``) or plain."""
    return {
        k: v["value"] if isinstance(v, dict) and set(v) == {"value"} else v for k, v in data.items()
    }


def _status(state: str, language: str) -> dict[str, str]:
    code, title = STATUS[state]
    return {"code": code, "title": gettext(title, language)}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _document_url(document_id: str) -> str:
    return f"/documents/{document_id}"


def _document_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _present(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` without its null members (GovStack's schemas type them as strings)."""
    return {k: _present(v) if isinstance(v, dict) else v for k, v in value.items() if v is not None}


def _application(info: apps.ApplicationInfo, language: str) -> dict[str, Any]:
    """GovStack ``applicationFileResponse``, and what was fetched, from whom and why."""
    procedure = service.get_procedure(info.procedure_id)
    names = [d.name.get(language) for d in procedure.required_documents]
    return _present(
        {
            "fileId": info.application_id,
            "applicantId": info.applicant_national_id,
            "registered": _iso(info.submitted_at or info.created_at),
            "serviceId": info.procedure_id,
            "serviceName": procedure.title.get(language),
            "status": _status(info.state, language),
            "ended": info.state in apps.FINAL,
            "applicationData": {
                "applicantId": info.applicant_national_id,
                "created": _iso(info.created_at),
                "formData": {
                    "data": {k: {"value": v} for k, v in info.form_data.items()},
                    "eFormId": apps.eform_id(procedure),
                },
                "documentUrls": [_document_url(u.document_id) for u in info.uploads],
            },
            "state": info.state,
            "agency": info.agency,
            "decisionDue": _iso(info.decision_due_at),
            "decided": _iso(info.decided_at),
            "decisionReason": info.decision_reason,
            "credentialId": info.credential_id,
            "documentsFetched": [
                {
                    "document": names[e.required_index],
                    "service": e.service,
                    "provider": e.provider,
                    "messageId": e.message_id,
                    "purpose": e.purpose,
                    "fetchedAt": _iso(e.fetched_at),
                }
                for e in info.evidence
            ],
            "documentsAsked": [names[i] for i in info.documents_asked],
            "documentsMissing": [names[i] for i in info.missing_documents],
        }
    )


def _list_item(info: apps.ApplicationInfo, language: str) -> dict[str, Any]:
    """GovStack ``applicantApplicationFileListResponse``."""
    procedure = service.get_procedure(info.procedure_id)
    review = next((t for t in info.tasks if t.kind == apps.REVIEW), None)
    return _present(
        {
            "fileId": info.application_id,
            "mainTaskId": review.task_id if review else None,
            "taskTitle": gettext(TASK_NAMES[apps.REVIEW], language) if review else None,
            "roleId": info.agency,
            "roleName": procedure.agency.name.get(language),
            "assigneeId": review.assignee if review else None,
            "status": _status(info.state, language),
            "applicantId": info.applicant_national_id,
            "created": _iso(info.created_at),
            "registered": _iso(info.submitted_at or info.created_at),
            "description": info.form_data.get("purpose", ""),
            "serviceName": procedure.title.get(language),
            "serviceId": info.procedure_id,
            "eformId": apps.eform_id(procedure),
            "documentUrls": [_document_url(u.document_id) for u in info.uploads],
        }
    )


def _task(task: apps.TaskInfo, state: str, language: str, *, full: bool = False) -> dict[str, Any]:
    procedure = service.get_procedure(task.procedure_id)
    body: dict[str, Any] = {
        "taskId": task.task_id,
        "assigneeId": task.assignee,
        "roleId": task.agency or apps.APPLICANT,
        "created": _iso(task.created_at),
        "description": task.question or gettext(TASK_NAMES[task.kind], language),
        "serviceId": task.procedure_id,
        "serviceName": procedure.title.get(language),
        "fileId": task.application_id,
        "eFormId": apps.eform_id(procedure),
        "status": _status(state, language),
        "kind": task.kind,
        "state": task.state,
        "dueDate": _iso(task.due_at),
    }
    if full:
        body["taskName"] = gettext(TASK_NAMES[task.kind], language)
        body["formVariables"] = {"question": task.question} if task.question else {}
        body["data"] = task.result or {}
    else:
        body["name"] = gettext(TASK_NAMES[task.kind], language)
        body["mainTaskId"] = task.task_id
    return _present(body)


# --- e-forms --------------------------------------------------------------------------------


@router.get("/services/{serviceId}/eForms")
def service_eforms(serviceId: str, language: LanguageDep) -> list[dict[str, Any]]:  # noqa: N803
    """The e-forms of a procedure (one, derived from the procedure)."""
    form = apps.eform(service.get_procedure(serviceId), language)
    return [{k: v for k, v in form.items() if k != "schema"}]


@router.get("/eForms/{eFormId}", responses={404: {"description": "No such e-form", **_PROBLEM}})
def get_eform(eFormId: str, language: LanguageDep) -> dict[str, Any]:  # noqa: N803
    """One e-form with its JSON Schema."""
    return apps.eform(apps.procedure_of_eform(eFormId), language)


# --- applications ---------------------------------------------------------------------------


@router.post("/services/{serviceId}/applications", responses=_AUTH)
def submit_application(
    serviceId: str,  # noqa: N803
    body: ApplicationFileSubmit,
    node: PortalNodeDep,
    who: CallerDep,
    session: PortalDep,
    language: LanguageDep,
) -> dict[str, Any]:
    """Apply (the applicant): documents the exchange can supply are fetched once-only; the
    rest are ``documentUrls`` (uploads, in the order the procedure asks them). Without
    them the application waits for them in a ``provide-documents`` task."""
    national_id = who.applicant()
    service.get_procedure(serviceId)
    if body.applicantId and body.applicantId != national_id:
        raise Forbidden(_("You can apply only for yourself."))
    evidence = _evidence_source(node)
    info = apps.start_application(
        session,
        node=node,
        procedure_id=serviceId,
        national_id=national_id,
        form=_form_values(body.formData.data),
        evidence=evidence,
        documents=[_document_id(u) for u in body.documentUrls],
        holder_key=body.holderKey,
    )
    return _application(info, language)


def _evidence_source(node: Node) -> EvidenceSource | None:
    """The portal's exchange-backed evidence source (None: no gateway configured)."""
    return evidence.evidence_source(node)


@router.get("/applications", responses=_AUTH)
def list_applications(
    who: CallerDep,
    session: PortalDep,
    language: LanguageDep,
    page: PagingDep,
    serviceId: str | None = None,  # noqa: N803
    applicantId: str | None = None,  # noqa: N803
) -> list[dict[str, Any]]:
    """The caller's applications (applicant), or the agency's (officer)."""
    if who.officer is not None:
        national_id, agency = applicantId, who.officer.agency
    else:
        national_id, agency = who.applicant(), None
        if applicantId is not None and applicantId != national_id:
            return []
    found = apps.list_applications(
        session,
        national_id=national_id,
        agency=agency,
        procedure_id=serviceId,
        offset=page.offset,
        limit=page.limit,
        newest_first=page.newest_first,
    )
    return [_list_item(info, language) for info in found]


def _visible(session: Session, who: Caller, file_id: str) -> apps.ApplicationInfo:
    if who.officer is not None:
        return apps.get_application(session, file_id, agency=who.officer.agency)
    return apps.get_application(session, file_id, national_id=who.applicant())


@router.get("/applications/{fileId}", responses=_AUTH)
def get_application(
    fileId: str,  # noqa: N803
    who: CallerDep,
    session: PortalDep,
    language: LanguageDep,
) -> dict[str, Any]:
    """One application, with what was fetched, from whom and why."""
    return _application(_visible(session, who, fileId), language)


@router.put("/applications/{fileId}", responses=_AUTH)
def update_application(
    fileId: str,  # noqa: N803
    body: ApplicationFileSubmit,
    node: PortalNodeDep,
    who: CallerDep,
    session: PortalDep,
    idp: IdpDep,
    language: LanguageDep,
) -> dict[str, Any]:
    """The officer's form data: ``formData.data.action`` is ``take-in-review``,
    ``request-information`` (``question``, ``days``), ``approve`` or ``reject``
    (``reason``); without an action nothing changes."""
    officer = who.agent()
    info = apps.get_application(session, fileId, agency=None)
    if info.agency != officer.agency:
        raise NotYourAgency(
            _("The application {id} is handled by another agency, not {agency}."),
            id=fileId,
            agency=officer.agency,
        )
    data = body.formData.data
    if "action" in data:
        info = _officer_act(node, session, idp, officer, fileId, data)
    return _application(info, language)


def _officer_act(
    node: Node,
    session: Session,
    idp: Session,
    officer: apps.Officer,
    file_id: str,
    data: dict[str, Any],
) -> apps.ApplicationInfo:
    action = data.get("action") or data.get("decision")
    text = data.get("reason") or data.get("question")
    if text is not None and not isinstance(text, str):
        raise InvalidForm(_("The field {field} must be a text."), field="reason")
    if action in ("approve", "reject", "request-information"):
        current = apps.get_application(session, file_id, agency=officer.agency)
        if current.state == apps.SUBMITTED:
            apps.take_in_review(session, node=node, application_id=file_id, officer=officer)
    if action == "take-in-review":
        return apps.take_in_review(session, node=node, application_id=file_id, officer=officer)
    if action == "request-information":
        days = data.get("days", apps.INFORMATION_DAYS)
        if not isinstance(days, int):
            raise InvalidForm(_("The field {field} must be a whole number."), field="days")
        return apps.request_information(
            session,
            node=node,
            application_id=file_id,
            officer=officer,
            question=text or "",
            days=days,
        )
    if action == "approve":
        return apps.approve(
            session,
            node=node,
            register=idp,
            application_id=file_id,
            officer=officer,
            reason=text,
        ).application
    if action == "reject":
        return apps.reject(
            session, node=node, application_id=file_id, officer=officer, reason=text or ""
        ).application
    raise InvalidForm(
        _("The field {field} must be one of: {values}."),
        field="action",
        values="take-in-review, request-information, approve, reject",
    )


# --- documents ------------------------------------------------------------------------------


def _file_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The ``file`` parts of a multipart/form-data body (stdlib parser: no extra package)."""
    if not content_type.lower().startswith("multipart/form-data") or not body:
        return []
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: list[tuple[str, bytes]] = []
    if not message.is_multipart():
        return []
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") != "file":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            parts.append((part.get_filename() or "document", payload))
    return parts


@router.post(
    "/documents",
    responses={
        **_AUTH,
        400: {"description": "No file in the request", **_PROBLEM},
        413: {"description": "The document is too large", **_PROBLEM},
        422: {"description": "Not a PDF, JPEG or PNG", **_PROBLEM},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                }
            },
        }
    },
)
async def upload_document(
    request: Request,
    node: PortalNodeDep,
    who: CallerDep,
    session: PortalDep,
    language: LanguageDep,
    additionalMetadata: str | None = None,  # noqa: N803
) -> dict[str, Any]:
    """Upload a document (multipart ``file``; one file): its id to give in
    ``documentUrls``."""
    national_id = who.applicant()
    parts = _file_parts(request.headers.get("content-type", ""), await request.body())
    if len(parts) != 1:
        raise InvalidInput(_("Send exactly one file, as the multipart field file."))
    filename, content = parts[0]
    info = await run_in_threadpool(
        apps.upload_document,
        session,
        node=node,
        national_id=national_id,
        filename=filename,
        content=content,
    )
    return {
        "code": 200,
        "type": info.media_type,
        "message": gettext(_("The document is kept."), language),
        "url": _document_url(info.document_id),
        "documentId": info.document_id,
        "size": info.size,
        "sha256": info.sha256,
    }


# --- tasks ----------------------------------------------------------------------------------


@router.get("/tasks", responses=_AUTH)
def list_tasks(
    who: CallerDep,
    session: PortalDep,
    language: LanguageDep,
    page: PagingDep,
    mainTaskId: str | None = None,  # noqa: N803
    fileId: str | None = None,  # noqa: N803
    assigneeId: str | None = None,  # noqa: N803
) -> list[dict[str, Any]]:
    """The open tasks waiting on the caller (applicant) or on the agency (officer)."""
    found = apps.list_tasks(
        session,
        national_id=None if who.officer else who.applicant(),
        agency=who.officer.agency if who.officer else None,
        application_id=fileId,
        assignee=assigneeId,
        open_only=True,
        offset=page.offset,
        limit=page.limit,
    )
    if mainTaskId is not None:
        found = [t for t in found if t.task_id == mainTaskId]
    if page.newest_first:
        found.reverse()
    return [_task(t, t.application_state, language) for t in found]


def _own_task(session: Session, who: Caller, task_id: str) -> apps.TaskInfo:
    if who.officer is not None:
        return apps.officer_of_task(session, task_id, who.officer)
    task = apps.get_task(session, task_id, national_id=who.applicant())
    if task.party != apps.APPLICANT:
        raise TaskNotFound(_("No task {id}."), id=task_id)
    return task


@router.get("/tasks/{taskId}", responses=_AUTH)
def get_task(
    taskId: str,  # noqa: N803
    who: CallerDep,
    session: PortalDep,
    language: LanguageDep,
) -> dict[str, Any]:
    """One task (GovStack ``dataUserTaskResponse``)."""
    task = _own_task(session, who, taskId)
    return _task(task, task.application_state, language, full=True)


@router.post("/tasks/{taskId}/complete", responses=_AUTH)
def complete_task(
    taskId: str,  # noqa: N803
    body: AdditionalData,
    node: PortalNodeDep,
    who: CallerDep,
    session: PortalDep,
    idp: IdpDep,
    language: LanguageDep,
) -> dict[str, Any]:
    """Complete a task. Applicant: ``provide-documents`` with ``data.documentUrls``;
    ``provide-information`` with ``data.answer`` (and ``documentUrls``). Officer: ``review``
    with ``data.decision`` ``approve``, ``reject`` (``reason``) or
    ``request-information`` (``question``, ``days``)."""
    task = _own_task(session, who, taskId)
    if task.state != apps.OPEN:
        raise IllegalTransition(_("The task {id} is already {state}."), id=taskId, state=task.state)
    data = body.data
    urls = data.get("documentUrls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise InvalidForm(_("The field {field} must be a list of texts."), field="documentUrls")
    documents = [_document_id(u) for u in urls]
    if task.kind == apps.PROVIDE_DOCUMENTS:
        info = apps.submit_application(
            session,
            node=node,
            application_id=task.application_id,
            national_id=who.applicant(),
            documents=documents,
        )
    elif task.kind == apps.PROVIDE_INFORMATION:
        answer = data.get("answer")
        info = apps.answer_information(
            session,
            node=node,
            application_id=task.application_id,
            national_id=who.applicant(),
            answer=answer if isinstance(answer, str) else "",
            documents=documents,
        )
    else:
        if "decision" not in data:
            raise InvalidForm(_("The field {field} is required."), field="decision")
        info = _officer_act(node, session, idp, who.agent(), task.application_id, data)
    return {
        "taskId": taskId,
        "fileId": info.application_id,
        "serviceId": info.procedure_id,
        "status": _status(info.state, language),
        "variables": {"application": {"data": {"state": {"value": info.state}}}},
    }


# --- statistics -----------------------------------------------------------------------------


def _day(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(_("{name} must be a date (YYYY-MM-DD)."), name=name) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _procedures_named(name: str) -> list[str]:
    wanted = name.strip().casefold()
    found = [
        p.id
        for p in service.list_procedures()
        if wanted in (p.id, p.title.ar.casefold(), p.title.fr.casefold(), p.title.en.casefold())
    ]
    if not found:
        raise ProcedureNotFound(_("No procedure {id} in the catalogue."), id=name)
    return found


@router.get(
    "/data/statistics",
    tags=["GovStack registration: statistics"],
    responses={
        400: {"description": "Missing or malformed Information-Mediator-Client", **_PROBLEM},
        404: {"description": "No such registration (procedure)", **_PROBLEM},
    },
)
def govstack_statistics(
    session: PortalDep,
    information_mediator_client: Annotated[
        str | None, Header(alias="Information-Mediator-Client")
    ] = None,
    startDate: str | None = None,  # noqa: N803
    endDate: str | None = None,  # noqa: N803
    registrationName: str | None = None,  # noqa: N803
    operator: str | None = None,
    role: str | None = None,
    timeframe: Literal["day", "week", "month", "year"] | None = None,
) -> JSONResponse:
    """GovStack statistics: applications processed, approved, sent back and rejected, and
    the simplification figures (ours), for the period and procedure asked."""
    client = (information_mediator_client or "").strip()
    if not IM_CLIENT.match(client):
        raise InvalidInput(
            _("The Information-Mediator-Client header must be INSTANCE/CLASS/MEMBER/SUBSYSTEM.")
        )
    since = _day(startDate, "startDate")
    until = _day(endDate, "endDate")
    if until is not None:
        until += dt.timedelta(days=1)
    ids = _procedures_named(registrationName) if registrationName else None
    figures = apps.simplification_figures(
        session, procedure_ids=ids, since=since, until=until, actor=operator
    ).overall
    references = {
        "startDate": startDate,
        "endDate": endDate,
        "registrationName": registrationName,
        "operator": operator,
        "role": role,
        "timeframeDay": timeframe == "day",
        "timeframeWeek": timeframe == "week",
        "timeframeMonth": timeframe == "month",
        "timeframeYear": timeframe == "year",
    }
    item: dict[str, Any] = {
        "processed": figures.decided,
        "approved": figures.approved,
        "sentBack": figures.sent_back,
        "rejected": figures.rejected,
        "references": {k: v for k, v in references.items() if v is not None},
        "applications": figures.applications,
        "documentsAsked": figures.documents_asked,
        "documentsFetched": figures.documents_fetched,
        "visitsAvoided": figures.visits_avoided,
        "medianDecisionHours": figures.median_decision_hours,
    }
    return JSONResponse([item], media_type="application/json; charset=utf-8")


@router.get("/api/statistics/services", tags=["services: catalogue"])
def statistics(session: PortalDep, country: Literal["MA", "QA"] | None = None) -> dict[str, Any]:
    """The simplification figures per procedure and overall (``jisr services stats``)."""
    return apps.simplification_figures(session, country=country).as_dict()
