"""Applications for the procedures of the catalogue, and their workflow (node ``portal``).

A logged-in person starts an application for a procedure (``start_application``): the form
is checked against the procedure's e-form (``eform``), every required document that an
agency can supply through the exchange (the catalogue's ``evidence_service``) is fetched
once-only through an ``EvidenceSource`` under the purpose ``<procedure>/<application>``, and
only the rest is asked of the person, who uploads it (``upload_document``: PDF, JPEG or PNG,
recognised by content, at most ``services_upload_max_bytes``). With every asked document
attached the application is submitted, and a ``review`` task waits for an officer of the
procedure's agency, due by the procedure's maximum processing time.

States and the only transitions allowed (anything else is ``IllegalTransition``)::

    draft ──submit──▶ submitted ──take in review──▶ in_review ──approve──▶ approved
                                                     │   ▲     └─reject──▶ rejected
                                    request info     ▼   │ the applicant answers
                                                   more_info

Officers act only on applications of their own agency (``NotYourAgency``). Approval issues
the procedure's credential (``issued_credential``) to the person through
``jisr.credentials.service.issue_credential``. Every state change is kept in
``services_state_changes`` and appended to the portal's ``services`` audit chain, as is
every evidence fetch (service, provider, message id, purpose: no personal data).

Functions take the portal node's ``session`` first, only ``flush()``, and raise the block's
errors; a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.interfaces import ORMOption

from jisr.core.clock import utcnow
from jisr.core.i18n import _, gettext
from jisr.core.instance import Node
from jisr.credentials import service as credentials
from jisr.services import service as catalogue
from jisr.services.errors import (
    ApplicationNotFound,
    DocumentNotFound,
    DocumentRefused,
    DocumentsMissing,
    DocumentTooLarge,
    IllegalTransition,
    InvalidForm,
    NotYourAgency,
    ServicesError,
    TaskNotFound,
)
from jisr.services.evidence import EvidenceSource, Fetched
from jisr.services.models import (
    Application,
    EvidenceRecord,
    StateChange,
    Task,
    UploadedDocument,
)
from jisr.services.schemas import Procedure

CHAIN = "services"

DRAFT = "draft"
SUBMITTED = "submitted"
IN_REVIEW = "in_review"
MORE_INFO = "more_info"
APPROVED = "approved"
REJECTED = "rejected"
STATES = (DRAFT, SUBMITTED, IN_REVIEW, MORE_INFO, APPROVED, REJECTED)
FINAL = (APPROVED, REJECTED)
TRANSITIONS: frozenset[tuple[str | None, str]] = frozenset(
    {
        (None, DRAFT),
        (DRAFT, SUBMITTED),
        (SUBMITTED, IN_REVIEW),
        (IN_REVIEW, MORE_INFO),
        (MORE_INFO, IN_REVIEW),
        (IN_REVIEW, APPROVED),
        (IN_REVIEW, REJECTED),
    }
)

REVIEW = "review"
PROVIDE_DOCUMENTS = "provide-documents"
PROVIDE_INFORMATION = "provide-information"
OFFICER = "officer"
APPLICANT = "applicant"
OPEN = "open"
DONE = "done"
CANCELLED = "cancelled"
INFORMATION_DAYS = 15

# The upload allow-list, recognised by the file's first bytes (never by its name or the
# type the client claims).
MAGIC: tuple[tuple[str, bytes], ...] = (
    ("application/pdf", b"%PDF-"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
)
PURPOSE_MAX = 500
PHONE = re.compile(r"^\+?[0-9][0-9 ]{5,19}$")


# --- views (what callers outside the block see; never the rows) -------------------------------


@dataclass(frozen=True)
class Officer:
    """An officer acting for an agency (its exchange member id, e.g. ``MA/GOV/MOI``)."""

    agency: str
    officer_id: str


@dataclass(frozen=True)
class DocumentInfo:
    document_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime
    required_index: int | None = None


@dataclass(frozen=True)
class EvidenceInfo:
    """A document fetched once-only: what, from whom, why, when."""

    required_index: int
    document: dict[str, str]
    service: str
    provider: str
    message_id: str
    purpose: str
    fetched_at: dt.datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class TaskInfo:
    task_id: str
    application_id: str
    procedure_id: str
    kind: str
    party: str
    agency: str | None
    state: str
    due_at: dt.datetime | None
    assignee: str | None
    question: str | None
    result: dict[str, Any] | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    application_state: str


@dataclass(frozen=True)
class StateChangeInfo:
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    at: dt.datetime


@dataclass(frozen=True)
class ApplicationInfo:
    application_id: str
    procedure_id: str
    country: str
    agency: str | None
    applicant_national_id: str
    state: str
    form_data: dict[str, Any]
    documents_asked: list[int]
    documents_fetched: list[int]
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    decision_due_at: dt.datetime | None
    decision_reason: str | None
    credential_id: str | None
    evidence: list[EvidenceInfo] = field(default_factory=list)
    uploads: list[DocumentInfo] = field(default_factory=list)
    tasks: list[TaskInfo] = field(default_factory=list)
    history: list[StateChangeInfo] = field(default_factory=list)

    @property
    def missing_documents(self) -> list[int]:
        """Asked documents no upload answers yet."""
        given = {u.required_index for u in self.uploads}
        return [index for index in self.documents_asked if index not in given]


@dataclass(frozen=True)
class Decision:
    """An approval or rejection; ``issued`` holds the credential issued on approval."""

    application: ApplicationInfo
    issued: credentials.Issued | None = None


# --- e-forms ----------------------------------------------------------------------------------


def eform_id(procedure: Procedure) -> str:
    return f"{procedure.id}.form"


def eform(procedure: Procedure, language: str = "en") -> dict[str, Any]:
    """The e-form of ``procedure`` (GovStack ``EForm``): its JSON Schema is derived from the
    procedure: a purpose, the channel to receive the result among the procedure's channels,
    an optional phone number and the declaration on honour. Documents are not form fields:
    fetched ones come through the exchange, asked ones are uploads."""
    text = procedure.title.get(language)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["purpose", "declaration"],
        "properties": {
            "purpose": {
                "type": "string",
                "minLength": 3,
                "maxLength": PURPOSE_MAX,
                "title": gettext(_("Why do you need it?"), language),
            },
            "channel": {
                "type": "string",
                "enum": list(procedure.channels),
                "title": gettext(_("How to receive the result"), language),
            },
            "phone": {
                "type": "string",
                "pattern": PHONE.pattern,
                "title": gettext(_("Phone number"), language),
            },
            "declaration": {
                "type": "boolean",
                "const": True,
                "title": gettext(_("I declare that the information given is true"), language),
            },
        },
    }
    return {
        "eFormId": eform_id(procedure),
        "name": text,
        "description": procedure.description.get(language),
        "version": "1",
        "latest": True,
        "schema": schema,
    }


def procedure_of_eform(form_id: str) -> Procedure:
    """The procedure whose e-form is ``form_id`` (``ProcedureNotFound`` otherwise)."""
    return catalogue.get_procedure(
        form_id.removesuffix(".form") if form_id.endswith(".form") else ""
    )


def _form_error(name: str, message: str, **params: Any) -> InvalidForm:
    return InvalidForm(message, field=name, **params)


def validate_form(procedure: Procedure, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` checked against the procedure's e-form; the cleaned values."""
    if not isinstance(data, Mapping):
        raise _form_error("", _("The form must be an object of fields."))
    allowed = ("purpose", "channel", "phone", "declaration")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _form_error(unknown[0], _("The form has no field {field}."))
    purpose = data.get("purpose")
    if purpose is None or (isinstance(purpose, str) and not purpose.strip()):
        raise _form_error("purpose", _("The field {field} is required."))
    if not isinstance(purpose, str) or not 3 <= len(purpose.strip()) <= PURPOSE_MAX:
        raise _form_error(
            "purpose",
            _("The field {field} must be a text of 3 to {max} characters."),
            max=PURPOSE_MAX,
        )
    cleaned: dict[str, Any] = {"purpose": purpose.strip()}
    if data.get("declaration") is not True:
        raise _form_error("declaration", _("The field {field} is required."))
    cleaned["declaration"] = True
    channel = data.get("channel", "online" if "online" in procedure.channels else None)
    if channel is not None:
        if channel not in procedure.channels:
            raise _form_error(
                "channel",
                _("The field {field} must be one of: {values}."),
                values=", ".join(procedure.channels),
            )
        cleaned["channel"] = channel
    phone = data.get("phone")
    if phone is not None:
        if not isinstance(phone, str) or not PHONE.match(phone):
            raise _form_error("phone", _("The field {field} is not a phone number."))
        cleaned["phone"] = phone
    return cleaned


# --- uploads ----------------------------------------------------------------------------------


def sniff(content: bytes) -> str | None:
    """The allowed media type of ``content`` by its magic bytes; None when not allowed."""
    for media_type, magic in MAGIC:
        if content.startswith(magic):
            return media_type
    return None


def _document_info(row: UploadedDocument) -> DocumentInfo:
    return DocumentInfo(
        document_id=row.document_id,
        filename=row.filename,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_at=row.uploaded_at,
        required_index=row.required_index,
    )


def upload_document(
    session: Session, *, node: Node, national_id: str, filename: str, content: bytes
) -> DocumentInfo:
    """Keep a document the person ``national_id`` uploads, to attach to an application.

    Refused (nothing kept): an empty file, one above ``services_upload_max_bytes``, one
    that is not a PDF, JPEG or PNG by its content."""
    limit = node.settings.services_upload_max_bytes
    if len(content) > limit:
        raise DocumentTooLarge(
            _("The document is {size} bytes; the limit is {limit} bytes."),
            size=len(content),
            limit=limit,
        )
    media_type = sniff(content)
    if media_type is None:
        raise DocumentRefused(_("Only PDF, JPEG and PNG documents are accepted."))
    name = (filename or "document").replace("\\", "/").rsplit("/", 1)[-1][:200] or "document"
    row = UploadedDocument(
        document_id=str(uuid.uuid4()),
        owner_national_id=national_id,
        filename=name,
        media_type=media_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _document_info(row)


def document_content(
    session: Session, document_id: str, *, national_id: str
) -> tuple[DocumentInfo, bytes]:
    row = _own_document(session, document_id, national_id)
    return _document_info(row), row.content


def _own_document(session: Session, document_id: str, national_id: str) -> UploadedDocument:
    row = session.scalars(
        sa.select(UploadedDocument).where(UploadedDocument.document_id == document_id)
    ).first()
    if row is None or row.owner_national_id != national_id:
        raise DocumentNotFound(_("No document {id} of yours."), id=document_id)
    return row


# --- reading ----------------------------------------------------------------------------------


def _application_row(session: Session, application_id: str, *, lock: bool = False) -> Application:
    """The row; ``lock``: for a state change (PostgreSQL locks it until the transaction ends,
    so two officers cannot both move it; SQLite's writers queue already)."""
    query = sa.select(Application).where(Application.application_id == application_id)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise ApplicationNotFound(_("No application {id}."), id=application_id)
    return row


def _task_info(row: Task, application: Application) -> TaskInfo:
    return TaskInfo(
        task_id=row.task_id,
        application_id=application.application_id,
        procedure_id=application.procedure_id,
        kind=row.kind,
        party=row.party,
        agency=row.agency,
        state=row.state,
        due_at=row.due_at,
        assignee=row.assignee,
        question=row.question,
        result=row.result,
        created_at=row.created_at,
        completed_at=row.completed_at,
        application_state=application.state,
    )


_CHUNK = 500
_Related = TypeVar("_Related", EvidenceRecord, UploadedDocument, Task, StateChange)


def _grouped(
    session: Session,
    model: type[_Related],
    keys: Sequence[int],
    *order: Any,
    options: Sequence[ORMOption] = (),
) -> dict[int, list[_Related]]:
    """The rows of ``model`` of the applications ``keys``, per application, in ``order``:
    one query per chunk of 500 applications (what ``selectinload`` does), never one per
    application."""
    found: dict[int, list[_Related]] = {key: [] for key in keys}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = (
            sa.select(model)
            .where(model.application_id.in_(chunk))
            .order_by(model.application_id, *order)
        )
        for item in session.scalars(query.options(*options)):
            if item.application_id is not None:
                found[item.application_id].append(item)
    return found


def _infos(session: Session, rows: Sequence[Application]) -> list[ApplicationInfo]:
    """The views of ``rows``, their evidence, uploads, tasks and history loaded in four
    queries for all of them (not four per application)."""
    keys = [row.id for row in rows]
    evidence = _grouped(
        session, EvidenceRecord, keys, EvidenceRecord.required_index, EvidenceRecord.id
    )
    # the uploads' content stays in the database: a view never shows it
    uploads = _grouped(
        session,
        UploadedDocument,
        keys,
        UploadedDocument.id,
        options=[defer(UploadedDocument.content)],
    )
    tasks = _grouped(session, Task, keys, Task.id)
    history = _grouped(session, StateChange, keys, StateChange.id)
    return [
        _view(row, evidence[row.id], uploads[row.id], tasks[row.id], history[row.id])
        for row in rows
    ]


def _info(session: Session, row: Application) -> ApplicationInfo:
    return _infos(session, [row])[0]


def _view(
    row: Application,
    evidence: Sequence[EvidenceRecord],
    uploads: Sequence[UploadedDocument],
    tasks: Sequence[Task],
    history: Sequence[StateChange],
) -> ApplicationInfo:
    procedure = catalogue.get_procedure(row.procedure_id)
    return ApplicationInfo(
        application_id=row.application_id,
        procedure_id=row.procedure_id,
        country=row.country,
        agency=row.agency,
        applicant_national_id=row.applicant_national_id,
        state=row.state,
        form_data=dict(row.form_data),
        documents_asked=list(row.asked_documents),
        documents_fetched=list(row.fetched_documents),
        created_at=row.created_at,
        updated_at=row.updated_at,
        submitted_at=row.submitted_at,
        decided_at=row.decided_at,
        decision_due_at=row.decision_due_at,
        decision_reason=row.decision_reason,
        credential_id=row.credential_id,
        evidence=[
            EvidenceInfo(
                required_index=e.required_index,
                document=procedure.required_documents[e.required_index].name.model_dump(),
                service=e.service,
                provider=e.provider,
                message_id=e.message_id,
                purpose=e.purpose,
                fetched_at=e.fetched_at,
                data=dict(e.data),
            )
            for e in evidence
        ],
        uploads=[_document_info(u) for u in uploads],
        tasks=[_task_info(t, row) for t in tasks],
        history=[
            StateChangeInfo(h.from_state, h.to_state, h.actor, h.reason, h.at) for h in history
        ],
    )


def _hidden(row: Application, national_id: str | None, agency: str | None) -> bool:
    """Whether ``row`` is hidden from the applicant ``national_id`` or the agency ``agency``
    (each, when given, must be the application's)."""
    return (national_id is not None and row.applicant_national_id != national_id) or (
        agency is not None and row.agency != agency
    )


def get_application(
    session: Session,
    application_id: str,
    *,
    national_id: str | None = None,
    agency: str | None = None,
) -> ApplicationInfo:
    """One application, for its applicant (``national_id``) or an officer of its agency
    (``agency``); someone else's is ``ApplicationNotFound``."""
    row = _application_row(session, application_id)
    if _hidden(row, national_id, agency):
        raise ApplicationNotFound(_("No application {id}."), id=application_id)
    return _info(session, row)


def list_applications(
    session: Session,
    *,
    national_id: str | None = None,
    agency: str | None = None,
    procedure_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
    newest_first: bool = False,
) -> list[ApplicationInfo]:
    """Applications of a person, or of an agency's procedures, oldest first."""
    query = sa.select(Application)
    if national_id is not None:
        query = query.where(Application.applicant_national_id == national_id)
    if agency is not None:
        query = query.where(Application.agency == agency)
    if procedure_id is not None:
        query = query.where(Application.procedure_id == procedure_id)
    order = Application.id.desc() if newest_first else Application.id
    rows = session.scalars(query.order_by(order).offset(max(offset, 0)).limit(max(limit, 0)))
    return _infos(session, list(rows))


def _task_row(session: Session, task_id: str) -> tuple[Task, Application]:
    found = session.execute(
        sa.select(Task, Application)
        .join(Application, Task.application_id == Application.id)
        .where(Task.task_id == task_id)
    ).first()
    if found is None:
        raise TaskNotFound(_("No task {id}."), id=task_id)
    return found[0], found[1]


def get_task(
    session: Session, task_id: str, *, national_id: str | None = None, agency: str | None = None
) -> TaskInfo:
    """One task: an applicant sees the tasks of their applications, an officer those of
    the agency's applications; others are ``TaskNotFound``."""
    task, application = _task_row(session, task_id)
    if _hidden(application, national_id, agency):
        raise TaskNotFound(_("No task {id}."), id=task_id)
    return _task_info(task, application)


def list_tasks(
    session: Session,
    *,
    national_id: str | None = None,
    agency: str | None = None,
    application_id: str | None = None,
    assignee: str | None = None,
    open_only: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> list[TaskInfo]:
    """Tasks waiting on a person (``national_id``: the applicant's) or an agency's officers."""
    query = sa.select(Task, Application).join(Application, Task.application_id == Application.id)
    if national_id is not None:
        query = query.where(
            Application.applicant_national_id == national_id, Task.party == APPLICANT
        )
    if agency is not None:
        query = query.where(Task.agency == agency, Task.party == OFFICER)
    if application_id is not None:
        query = query.where(Application.application_id == application_id)
    if assignee is not None:
        query = query.where(Task.assignee == assignee)
    if open_only:
        query = query.where(Task.state == OPEN)
    rows = session.execute(query.order_by(Task.id).offset(max(offset, 0)).limit(max(limit, 0)))
    return [_task_info(task, application) for task, application in rows]


# --- the workflow -----------------------------------------------------------------------------


def _move(
    session: Session,
    node: Node,
    row: Application,
    to_state: str,
    *,
    actor: str,
    reason: str | None = None,
    now: dt.datetime,
) -> None:
    from_state = None if row.id is None else row.state
    if (from_state, to_state) not in TRANSITIONS:
        raise IllegalTransition(
            _("The application {id} is {state}; it cannot become {to}."),
            id=row.application_id,
            state=from_state or "-",
            to=to_state,
        )
    row.state = to_state
    row.updated_at = now
    session.add(row)
    session.flush()
    session.add(
        StateChange(
            application_id=row.id,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            reason=reason,
            at=now,
        )
    )
    session.flush()
    node.record(
        session,
        f"services.application.{to_state}",
        {
            "application": row.application_id,
            "procedure": row.procedure_id,
            "from": from_state or "",
            "to": to_state,
        },
        actor=actor,
        subject=row.applicant_national_id,
        chain=CHAIN,
    )


def _purpose(procedure: Procedure, application_id: str) -> str:
    """What the exchange call says it is for (``X-Road-Issue``): the procedure and the
    application, ASCII so it fits an HTTP header; the legal basis is the procedure's."""
    return f"{procedure.id}/{application_id}"


def _fetch_evidence(
    session: Session,
    node: Node,
    row: Application,
    procedure: Procedure,
    source: EvidenceSource | None,
) -> tuple[list[int], list[int]]:
    fetched: list[int] = []
    asked: list[int] = []
    purpose = _purpose(procedure, row.application_id)
    for index, document in enumerate(procedure.required_documents):
        wanted = document.evidence_service
        if wanted is None or source is None or not source.available(wanted):
            asked.append(index)
            continue
        try:
            answer = source.fetch(
                wanted,
                national_id=row.applicant_national_id,
                purpose=purpose,
                user_id=row.applicant_national_id,
            )
        except ServicesError as error:  # EvidenceUnavailable (or any refusal): ask the person
            node.record(
                session,
                "services.evidence.unavailable",
                {"application": row.application_id, "service": wanted, "error": error.code},
                actor=row.applicant_national_id,
                subject=row.applicant_national_id,
                chain=CHAIN,
            )
            asked.append(index)
            continue
        session.add(
            EvidenceRecord(
                application_id=row.id,
                required_index=index,
                service=answer.service,
                provider=answer.provider,
                message_id=answer.message_id,
                purpose=answer.purpose,
                fetched_at=answer.fetched_at,
                data=dict(answer.data),
            )
        )
        node.record(
            session,
            "services.evidence.fetched",
            {
                "application": row.application_id,
                "service": answer.service,
                "provider": answer.provider,
                "message_id": answer.message_id,
                "purpose": answer.purpose,
            },
            actor=row.applicant_national_id,
            subject=row.applicant_national_id,
            chain=CHAIN,
        )
        fetched.append(index)
    return fetched, asked


def _attach(session: Session, row: Application, document_ids: Sequence[str]) -> None:
    """Attach the person's uploads, in order, to the asked documents not yet answered."""
    if not document_ids:
        return
    missing = _missing(session, row)
    if len(set(document_ids)) != len(document_ids):
        raise InvalidForm(_("The same document is given twice."), field="documents")
    if len(document_ids) > len(missing):
        raise InvalidForm(
            _("{given} documents given; this application asks for {asked} more."),
            field="documents",
            given=len(document_ids),
            asked=len(missing),
        )
    for document_id, index in zip(document_ids, missing, strict=False):
        _claim(session, row, document_id).required_index = index
    session.flush()


def _claim(session: Session, row: Application, document_id: str) -> UploadedDocument:
    """Attach the applicant's upload ``document_id`` to ``row`` (not one already attached)."""
    upload = _own_document(session, document_id, row.applicant_national_id)
    if upload.application_id is not None:
        raise InvalidForm(
            _("The document {id} is already attached to an application."),
            field="documents",
            id=document_id,
        )
    upload.application_id = row.id
    return upload


def _missing(session: Session, row: Application) -> list[int]:
    given = set(
        session.scalars(
            sa.select(UploadedDocument.required_index).where(
                UploadedDocument.application_id == row.id
            )
        )
    )
    return [index for index in row.asked_documents if index not in given]


def _decision_days(node: Node, procedure: Procedure) -> int:
    days = procedure.processing_time.max_days
    return days if days else node.settings.services_default_decision_days


def _close_tasks(
    session: Session,
    row: Application,
    kind: str,
    now: dt.datetime,
    state: str = DONE,
    result: dict[str, Any] | None = None,
) -> None:
    for task in session.scalars(
        sa.select(Task).where(Task.application_id == row.id, Task.kind == kind, Task.state == OPEN)
    ):
        task.state = state
        task.completed_at = now
        if result is not None:
            task.result = result
    session.flush()


def _new_task(
    session: Session,
    row: Application,
    *,
    kind: str,
    party: str,
    due_at: dt.datetime | None,
    now: dt.datetime,
    question: str | None = None,
    assignee: str | None = None,
) -> Task:
    task = Task(
        task_id=str(uuid.uuid4()),
        application_id=row.id,
        kind=kind,
        party=party,
        agency=row.agency if party == OFFICER else None,
        state=OPEN,
        due_at=due_at,
        assignee=assignee,
        question=question,
        created_at=now,
    )
    session.add(task)
    session.flush()
    return task


def _submit(
    session: Session, node: Node, row: Application, procedure: Procedure, now: dt.datetime
) -> None:
    missing = _missing(session, row)
    if missing:
        names = [procedure.required_documents[i].name.en for i in missing]
        raise DocumentsMissing(
            _("Still to provide: {documents}."), documents="; ".join(names), missing=missing
        )
    _move(session, node, row, SUBMITTED, actor=row.applicant_national_id, now=now)
    row.submitted_at = now
    row.decision_due_at = now + dt.timedelta(days=_decision_days(node, procedure))
    _close_tasks(session, row, PROVIDE_DOCUMENTS, now)
    _new_task(session, row, kind=REVIEW, party=OFFICER, due_at=row.decision_due_at, now=now)


def start_application(
    session: Session,
    *,
    node: Node,
    procedure_id: str,
    national_id: str,
    form: Mapping[str, Any],
    evidence: EvidenceSource | None,
    documents: Sequence[str] = (),
    sub: str | None = None,
    holder_key: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ApplicationInfo:
    """The person ``national_id`` (logged in) applies for ``procedure_id``.

    The form is checked first (``InvalidForm``), then every document an agency can supply
    is fetched through ``evidence`` (None: every document is asked); ``documents`` are ids
    of the person's uploads, attached in order to the documents still asked. With nothing
    missing the application is submitted at once; otherwise it stays a draft with a
    ``provide-documents`` task for the person (see ``submit_application``). ``holder_key``
    (a public JWK) binds the credential issued on approval to the person's wallet."""
    procedure = catalogue.get_procedure(procedure_id)
    cleaned = validate_form(procedure, form)
    key = credentials.holder_jwk(json.dumps(dict(holder_key))) if holder_key is not None else None
    at = now or utcnow()
    row = Application(
        application_id=str(uuid.uuid4()),
        procedure_id=procedure.id,
        country=procedure.country,
        agency=procedure.agency.member,
        applicant_national_id=national_id,
        applicant_sub=sub,
        state=DRAFT,
        form_data=cleaned,
        asked_documents=[],
        fetched_documents=[],
        holder_key=key,
        created_at=at,
        updated_at=at,
    )
    _move(session, node, row, DRAFT, actor=national_id, now=at)
    fetched, asked = _fetch_evidence(session, node, row, procedure, evidence)
    row.fetched_documents = fetched
    row.asked_documents = asked
    session.flush()
    _attach(session, row, documents)
    if _missing(session, row):
        _new_task(session, row, kind=PROVIDE_DOCUMENTS, party=APPLICANT, due_at=None, now=at)
    else:
        _submit(session, node, row, procedure, at)
    return _info(session, row)


def submit_application(
    session: Session,
    *,
    node: Node,
    application_id: str,
    national_id: str,
    documents: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> ApplicationInfo:
    """Attach ``documents`` (the person's uploads) to a draft and submit it; refused with
    ``DocumentsMissing`` while an asked document has no upload."""
    row = _applicant_application(session, application_id, national_id)
    if row.state != DRAFT:
        raise IllegalTransition(
            _("The application {id} is {state}; it cannot become {to}."),
            id=application_id,
            state=row.state,
            to=SUBMITTED,
        )
    _attach(session, row, documents)
    _submit(session, node, row, catalogue.get_procedure(row.procedure_id), now or utcnow())
    return _info(session, row)


def _applicant_application(session: Session, application_id: str, national_id: str) -> Application:
    """The application, locked for a change by its applicant (someone else's is not found)."""
    row = _application_row(session, application_id, lock=True)
    if row.applicant_national_id != national_id:
        raise ApplicationNotFound(_("No application {id}."), id=application_id)
    return row


def _officer_application(session: Session, application_id: str, officer: Officer) -> Application:
    row = _application_row(session, application_id, lock=True)
    if row.agency is None or row.agency != officer.agency:
        raise NotYourAgency(
            _("The application {id} is handled by another agency, not {agency}."),
            id=application_id,
            agency=officer.agency,
        )
    return row


def _review_task(session: Session, row: Application) -> Task | None:
    return session.scalars(
        sa.select(Task).where(
            Task.application_id == row.id, Task.kind == REVIEW, Task.state == OPEN
        )
    ).first()


def take_in_review(
    session: Session,
    *,
    node: Node,
    application_id: str,
    officer: Officer,
    now: dt.datetime | None = None,
) -> ApplicationInfo:
    """An officer of the procedure's agency takes a submitted application in review; the
    review task is assigned to them."""
    at = now or utcnow()
    row = _officer_application(session, application_id, officer)
    _move(session, node, row, IN_REVIEW, actor=officer.officer_id, now=at)
    task = _review_task(session, row)
    if task is not None:
        task.assignee = officer.officer_id
    session.flush()
    return _info(session, row)


def request_information(
    session: Session,
    *,
    node: Node,
    application_id: str,
    officer: Officer,
    question: str,
    days: int = INFORMATION_DAYS,
    now: dt.datetime | None = None,
) -> ApplicationInfo:
    """The officer asks the applicant for more information, to answer within ``days``."""
    text = (question or "").strip()
    if not text:
        raise InvalidForm(_("The field {field} is required."), field="question")
    if not 1 <= days <= 365:
        raise InvalidForm(_("The answer is due within 1 to 365 days."), field="days")
    at = now or utcnow()
    row = _officer_application(session, application_id, officer)
    _move(session, node, row, MORE_INFO, actor=officer.officer_id, reason=text, now=at)
    _new_task(
        session,
        row,
        kind=PROVIDE_INFORMATION,
        party=APPLICANT,
        due_at=at + dt.timedelta(days=days),
        now=at,
        question=text,
    )
    return _info(session, row)


def answer_information(
    session: Session,
    *,
    node: Node,
    application_id: str,
    national_id: str,
    answer: str,
    documents: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> ApplicationInfo:
    """The applicant answers the officer's question (text, and uploads if any); the
    application goes back in review to the same officer."""
    text = (answer or "").strip()
    if not text:
        raise InvalidForm(_("The field {field} is required."), field="answer")
    at = now or utcnow()
    row = _applicant_application(session, application_id, national_id)
    _move(session, node, row, IN_REVIEW, actor=national_id, reason=text, now=at)
    attached: list[str] = []
    for document_id in documents:
        _claim(session, row, document_id)
        attached.append(document_id)
    _close_tasks(
        session, row, PROVIDE_INFORMATION, at, result={"answer": text, "documents": attached}
    )
    return _info(session, row)


def approve(
    session: Session,
    *,
    node: Node,
    register: Session,
    application_id: str,
    officer: Officer,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> Decision:
    """The officer approves an application in review; the procedure's credential, where it
    has one, is issued to the applicant (``register``: a session of the idp node, which
    holds the population register) and bound to the key given when applying."""
    at = now or utcnow()
    row = _officer_application(session, application_id, officer)
    _move(session, node, row, APPROVED, actor=officer.officer_id, reason=reason, now=at)
    procedure = catalogue.get_procedure(row.procedure_id)
    issued = None
    if procedure.issued_credential:
        issued = credentials.issue_credential(
            session,
            node=node,
            register=register,
            doc_type=procedure.issued_credential,
            national_id=row.applicant_national_id,
            holder_key=row.holder_key,
            actor=officer.officer_id,
        )
        row.credential_id = issued.credential_id
    row.decided_at = at
    row.decision_reason = reason
    _close_tasks(session, row, REVIEW, at, result={"decision": APPROVED})
    return Decision(_info(session, row), issued)


def reject(
    session: Session,
    *,
    node: Node,
    application_id: str,
    officer: Officer,
    reason: str,
    now: dt.datetime | None = None,
) -> Decision:
    """The officer rejects an application in review, saying why (the applicant sees it)."""
    text = (reason or "").strip()
    if not text:
        raise InvalidForm(_("The field {field} is required."), field="reason")
    at = now or utcnow()
    row = _officer_application(session, application_id, officer)
    _move(session, node, row, REJECTED, actor=officer.officer_id, reason=text, now=at)
    row.decided_at = at
    row.decision_reason = text
    _close_tasks(session, row, REVIEW, at, result={"decision": REJECTED})
    _close_tasks(session, row, PROVIDE_INFORMATION, at, state=CANCELLED)
    return Decision(_info(session, row))


def officer_of_task(session: Session, task_id: str, officer: Officer) -> TaskInfo:
    """The task ``task_id`` for ``officer``: ``NotYourAgency`` when it is another agency's
    (or an applicant's) task."""
    task, application = _task_row(session, task_id)
    if task.party != OFFICER or task.agency != officer.agency:
        raise NotYourAgency(
            _("The task {id} belongs to another agency, not {agency}."),
            id=task_id,
            agency=officer.agency,
        )
    return _task_info(task, application)


# --- simplification figures ------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The simplification figures of one procedure (or of all: ``procedure_id`` "*").

    ``documents_required``/``documents_fetchable``: what the catalogue says (per procedure;
    summed overall). Observed over the applications: ``documents_fetched`` (fetched
    once-only) versus ``documents_asked`` (asked of the person); ``visits_avoided``: per
    submitted application, one visit per agency whose document was fetched (the person no
    longer fetches the paper there), one for filing online instead of at the counter, and
    one for the credential delivered online on approval; ``median_decision_hours``: the
    median time from submission to decision."""

    procedure_id: str
    country: str | None
    documents_required: int
    documents_fetchable: int
    applications: int
    submitted: int
    decided: int
    approved: int
    rejected: int
    sent_back: int
    documents_asked: int
    documents_fetched: int
    visits_avoided: int
    median_decision_hours: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Statistics:
    overall: Figures
    procedures: list[Figures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.as_dict(),
            "procedures": [figures.as_dict() for figures in self.procedures],
        }


@dataclass
class _Tally:
    applications: int = 0
    submitted: int = 0
    decided: int = 0
    approved: int = 0
    rejected: int = 0
    sent_back: int = 0
    asked: int = 0
    fetched: int = 0
    visits: int = 0
    hours: list[float] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        for name in ("applications", "submitted", "decided", "approved", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sent_back += other.sent_back
        self.asked += other.asked
        self.fetched += other.fetched
        self.visits += other.visits
        self.hours.extend(other.hours)


def _figures(
    procedure_id: str, country: str | None, required: int, fetchable: int, tally: _Tally
) -> Figures:
    median = round(statistics.median(tally.hours), 2) if tally.hours else None
    return Figures(
        procedure_id=procedure_id,
        country=country,
        documents_required=required,
        documents_fetchable=fetchable,
        applications=tally.applications,
        submitted=tally.submitted,
        decided=tally.decided,
        approved=tally.approved,
        rejected=tally.rejected,
        sent_back=tally.sent_back,
        documents_asked=tally.asked,
        documents_fetched=tally.fetched,
        visits_avoided=tally.visits,
        median_decision_hours=median,
    )


def simplification_figures(
    session: Session,
    *,
    country: str | None = None,
    procedure_ids: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    actor: str | None = None,
) -> Statistics:
    """Per procedure of the catalogue (of ``country``) and overall; applications created
    in ``[since, until)`` when given; only those ``actor`` (an officer) changed, if given."""
    procedures = catalogue.list_procedures(country)
    if procedure_ids is not None:
        wanted = set(procedure_ids)
        procedures = [p for p in procedures if p.id in wanted]
    ids = [p.id for p in procedures]
    query = sa.select(Application).where(Application.procedure_id.in_(ids))
    if since is not None:
        query = query.where(Application.created_at >= since)
    if until is not None:
        query = query.where(Application.created_at < until)
    if actor is not None:
        query = query.where(
            Application.id.in_(
                sa.select(StateChange.application_id).where(StateChange.actor == actor)
            )
        )
    rows = list(session.scalars(query))
    sent_back_counts: dict[int, int] = {}
    providers: dict[int, set[str]] = {}
    if rows:
        keys = [row.id for row in rows]
        for application_id, count in session.execute(
            sa.select(StateChange.application_id, sa.func.count())
            .where(StateChange.application_id.in_(keys), StateChange.to_state == MORE_INFO)
            .group_by(StateChange.application_id)
        ):
            sent_back_counts[application_id] = int(count)
        for application_id, provider in session.execute(
            sa.select(EvidenceRecord.application_id, EvidenceRecord.provider).where(
                EvidenceRecord.application_id.in_(keys)
            )
        ):
            providers.setdefault(application_id, set()).add(provider)
    tallies: dict[str, _Tally] = {p.id: _Tally() for p in procedures}
    for row in rows:
        tally = tallies[row.procedure_id]
        tally.applications += 1
        tally.sent_back += sent_back_counts.get(row.id, 0)
        if row.submitted_at is None:
            continue
        tally.submitted += 1
        tally.asked += len(row.asked_documents)
        tally.fetched += len(row.fetched_documents)
        tally.visits += len(providers.get(row.id, set())) + 1
        if row.state in FINAL and row.decided_at is not None:
            tally.decided += 1
            tally.hours.append((row.decided_at - row.submitted_at).total_seconds() / 3600)
            if row.state == APPROVED:
                tally.approved += 1
                if row.credential_id is not None:
                    tally.visits += 1
            else:
                tally.rejected += 1
    per_procedure: list[Figures] = []
    total = _Tally()
    required = fetchable = 0
    for procedure in procedures:
        tally = tallies[procedure.id]
        n_required = len(procedure.required_documents)
        n_fetchable = len(catalogue.documents_fetchable(procedure))
        per_procedure.append(
            _figures(procedure.id, procedure.country, n_required, n_fetchable, tally)
        )
        total.add(tally)
        required += n_required
        fetchable += n_fetchable
    overall = _figures("*", country.upper() if country else None, required, fetchable, total)
    return Statistics(overall, per_procedure)


__all__ = [
    "APPLICANT",
    "APPROVED",
    "CHAIN",
    "DRAFT",
    "IN_REVIEW",
    "MORE_INFO",
    "OFFICER",
    "REJECTED",
    "STATES",
    "SUBMITTED",
    "TRANSITIONS",
    "ApplicationInfo",
    "Decision",
    "DocumentInfo",
    "EvidenceInfo",
    "EvidenceSource",
    "Fetched",
    "Figures",
    "Officer",
    "StateChangeInfo",
    "Statistics",
    "TaskInfo",
    "answer_information",
    "approve",
    "document_content",
    "eform",
    "eform_id",
    "get_application",
    "get_task",
    "list_applications",
    "list_tasks",
    "officer_of_task",
    "procedure_of_eform",
    "reject",
    "request_information",
    "simplification_figures",
    "sniff",
    "start_application",
    "submit_application",
    "take_in_review",
    "upload_document",
    "validate_form",
]
