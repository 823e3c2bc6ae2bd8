"""Applications on a real portal node: once-only evidence, uploads, the officers' workflow,
the credential issued on approval, the audit chain, the simplification figures, and every
refusal changing nothing.

The evidence source here is a small in-test implementation of the ``EvidenceSource``
protocol (the exchange-backed one is ``jisr.services.evidence``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from jisr.core import audit
from jisr.core.audit.models import AuditRecord
from jisr.core.clock import utcnow
from jisr.core.crypto.keystore import public_jwk_of
from jisr.credentials import service as credentials
from jisr.services import applications as apps
from jisr.services import service as catalogue
from jisr.services.errors import (
    ApplicationNotFound,
    DocumentRefused,
    DocumentsMissing,
    DocumentTooLarge,
    IllegalTransition,
    InvalidForm,
    NotYourAgency,
    ProcedureNotFound,
    ServicesError,
    TaskNotFound,
)

pytestmark = pytest.mark.db

PERSON = "MAAB123456"
RESIDENCE = "ma-residence-certificate"
MOI = apps.Officer(agency="MA/GOV/MOI", officer_id="moi-officer-1")
DGI = apps.Officer(agency="MA/GOV/DGI", officer_id="dgi-officer-1")
FORM = {"purpose": "Opening a bank account", "declaration": True}
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


class Refused(ServicesError):
    code = "evidence-unavailable"


@dataclass(frozen=True)
class Fetched:
    service: str
    provider: str
    message_id: str
    purpose: str
    fetched_at: dt.datetime
    data: dict[str, Any]


class Source:
    """Answers every service it knows (or all, with ``everything``); refuses ``refused``."""

    def __init__(self, *, everything: bool = False, refused: tuple[str, ...] = ()) -> None:
        self.everything = everything
        self.refused = refused
        self.calls: list[tuple[str, str, str, str]] = []

    def available(self, service: str) -> bool:
        return self.everything or service.startswith(("MA/GOV/CIVIL-REGISTRY", "MA/GOV/DGSN"))

    def fetch(self, service: str, *, national_id: str, purpose: str, user_id: str) -> Fetched:
        self.calls.append((service, national_id, purpose, user_id))
        if service in self.refused:
            raise Refused("refused")
        provider = "/".join(service.split("/")[:3])
        return Fetched(
            service=service,
            provider=provider,
            message_id=f"msg-{len(self.calls)}",
            purpose=purpose,
            fetched_at=utcnow(),
            data={"national_id": national_id, "service": service},
        )


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[Any]:
    from jisr.demo.people import FATIMA
    from jisr.identity import service as register
    from jisr.identity.schemas import PersonCreate

    instance = instance_factory("MA")
    with instance.node("idp").session() as session:
        register.create_person(session, PersonCreate(**FATIMA))
    yield instance


def portal(world: Any) -> Any:
    return world.node("portal")


def counts(world: Any) -> dict[str, int]:
    """Rows of every services table and of the services audit chain."""
    from jisr.services import models

    tables = (
        models.Application,
        models.UploadedDocument,
        models.EvidenceRecord,
        models.Task,
        models.StateChange,
    )
    with portal(world).session() as session:
        found = {
            t.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(t)) or 0
            for t in tables
        }
        found["audit"] = (
            session.scalar(sa.select(sa.func.count()).where(AuditRecord.chain == apps.CHAIN)) or 0
        )
        return found


def start(
    world: Any, source: Any = None, procedure: str = RESIDENCE, **kwargs: Any
) -> apps.ApplicationInfo:
    node = portal(world)
    kwargs.setdefault("form", FORM)
    with node.session() as session:
        return apps.start_application(
            session,
            node=node,
            procedure_id=procedure,
            national_id=PERSON,
            evidence=source,
            **kwargs,
        )


def upload(world: Any, content: bytes = PDF, national_id: str = PERSON) -> apps.DocumentInfo:
    node = portal(world)
    with node.session() as session:
        return apps.upload_document(
            session, node=node, national_id=national_id, filename="bail.pdf", content=content
        )


def act(world: Any, function: Any, **kwargs: Any) -> Any:
    node = portal(world)
    with node.session() as session:
        return function(session, node=node, **kwargs)


def submitted(world: Any) -> apps.ApplicationInfo:
    draft = start(world, Source())
    document = upload(world)
    return act(
        world,
        apps.submit_application,
        application_id=draft.application_id,
        national_id=PERSON,
        documents=[document.document_id],
    )


class TestEForm:
    def test_derived_from_the_procedure(self) -> None:
        procedure = catalogue.get_procedure(RESIDENCE)
        form = apps.eform(procedure, "fr")
        assert form["eFormId"] == "ma-residence-certificate.form"
        assert form["name"] == procedure.title.fr
        schema = form["schema"]
        assert schema["required"] == ["purpose", "declaration"]
        assert schema["properties"]["channel"]["enum"] == list(procedure.channels)
        assert apps.procedure_of_eform(form["eFormId"]) == procedure

    def test_every_procedure_has_a_valid_schema(self) -> None:
        jsonschema = pytest.importorskip("jsonschema")
        for procedure in catalogue.list_procedures():
            schema = apps.eform(procedure)["schema"]
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.validate({"purpose": "For my file", "declaration": True}, schema)


class TestOnceOnly:
    def test_fetches_what_the_exchange_holds_and_asks_the_rest(self, world: Any) -> None:
        source = Source()
        draft = start(world, source)
        assert draft.state == apps.DRAFT
        assert draft.documents_fetched == [0, 1] and draft.documents_asked == [2]
        assert [e.provider for e in draft.evidence] == ["MA/GOV/DGSN", "MA/GOV/CIVIL-REGISTRY"]
        assert draft.evidence[1].document["en"] == "Birth certificate extract"
        purpose = f"{RESIDENCE}/{draft.application_id}"
        assert all(e.purpose == purpose for e in draft.evidence)
        assert [c[2:] for c in source.calls] == [(purpose, PERSON)] * 2
        assert draft.missing_documents == [2]
        assert [(t.kind, t.party, t.state) for t in draft.tasks] == [
            (apps.PROVIDE_DOCUMENTS, apps.APPLICANT, apps.OPEN)
        ]

    def test_without_a_gateway_everything_is_asked(self, world: Any) -> None:
        draft = start(world, None)
        assert draft.documents_fetched == [] and draft.documents_asked == [0, 1, 2]

    def test_a_refused_fetch_is_asked_instead(self, world: Any) -> None:
        refused = "MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record"
        draft = start(world, Source(refused=(refused,)))
        assert draft.documents_fetched == [0] and draft.documents_asked == [1, 2]
        with portal(world).session() as session:
            events = session.scalars(
                sa.select(AuditRecord.data).where(
                    AuditRecord.event == "services.evidence.unavailable"
                )
            ).all()
        assert any(draft.application_id in data for data in events)

    @pytest.mark.parametrize(
        "procedure_id",
        [
            p.id
            for p in catalogue.list_procedures()
            if p.required_documents and not catalogue.documents_asked(p)
        ],
    )
    def test_nothing_is_asked_when_the_exchange_holds_everything(
        self, world: Any, procedure_id: str
    ) -> None:
        application = start(world, Source(everything=True), procedure=procedure_id)
        assert application.documents_asked == []
        assert application.state == apps.SUBMITTED
        assert len(application.evidence) == len(
            catalogue.get_procedure(procedure_id).required_documents
        )


class TestWorkflow:
    def test_from_application_to_credential(self, world: Any) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        holder = public_jwk_of(key.public_key())
        draft = start(world, Source(), holder_key=holder)
        document = upload(world)
        assert document.media_type == "application/pdf" and len(document.sha256) == 64
        application = act(
            world,
            apps.submit_application,
            application_id=draft.application_id,
            national_id=PERSON,
            documents=[document.document_id],
        )
        assert application.state == apps.SUBMITTED
        assert application.decision_due_at is not None and application.submitted_at is not None
        review = [t for t in application.tasks if t.kind == apps.REVIEW]
        assert (
            review
            and review[0].agency == "MA/GOV/MOI"
            and review[0].due_at == application.decision_due_at
        )
        with portal(world).session() as session:
            tasks = apps.list_tasks(session, agency=MOI.agency, open_only=True)
            assert review[0].task_id in [t.task_id for t in tasks]
            assert (
                apps.officer_of_task(session, review[0].task_id, MOI).task_id == review[0].task_id
            )
        app_id = application.application_id
        reviewed = act(world, apps.take_in_review, application_id=app_id, officer=MOI)
        assert reviewed.state == apps.IN_REVIEW
        assert [t.assignee for t in reviewed.tasks if t.kind == apps.REVIEW] == [MOI.officer_id]
        asked = act(
            world,
            apps.request_information,
            application_id=app_id,
            officer=MOI,
            question="Since when do you live there?",
            days=10,
        )
        assert asked.state == apps.MORE_INFO
        info = [t for t in asked.tasks if t.kind == apps.PROVIDE_INFORMATION]
        assert info[0].party == apps.APPLICANT and info[0].due_at is not None
        with portal(world).session() as session:
            mine = apps.list_tasks(session, national_id=PERSON, open_only=True)
            assert info[0].task_id in [t.task_id for t in mine]
        extra = upload(world, PNG)
        answered = act(
            world,
            apps.answer_information,
            application_id=app_id,
            national_id=PERSON,
            answer="Since 2019.",
            documents=[extra.document_id],
        )
        assert answered.state == apps.IN_REVIEW
        node = portal(world)
        with world.node("idp").session() as register, node.session() as session:
            decision = apps.approve(
                session, node=node, register=register, application_id=app_id, officer=MOI
            )
        approved = decision.application
        assert approved.state == apps.APPROVED and decision.issued is not None
        assert approved.credential_id == decision.issued.credential_id
        assert decision.issued.doc_type == "residence-certificate"
        with node.session() as session:
            row = credentials.get_credential(session, approved.credential_id)
            assert row.subject_national_id == PERSON and row.holder_key_thumbprint is not None
            result = credentials.local_verifier(session, node=node).verify(decision.issued.token)
        assert result.valid
        assert [h.to_state for h in approved.history] == [
            "draft",
            "submitted",
            "in_review",
            "more_info",
            "in_review",
            "approved",
        ]
        assert all(t.state != apps.OPEN for t in approved.tasks)
        with node.session() as session:
            rows = session.scalars(
                sa.select(AuditRecord)
                .where(AuditRecord.chain == apps.CHAIN)
                .order_by(AuditRecord.seq)
            ).all()
            mine = [r for r in rows if app_id in r.data]
            assert [r.event for r in mine if r.event.startswith("services.application.")] == [
                f"services.application.{h.to_state}" for h in approved.history
            ]
            assert mine[-1].actor == MOI.officer_id
            assert "Fatima" not in " ".join(r.data for r in mine)
            assert audit.verify_chain(session, apps.CHAIN).ok

    def test_rejection(self, world: Any) -> None:
        application = submitted(world)
        app_id = application.application_id
        act(world, apps.take_in_review, application_id=app_id, officer=MOI)
        decision = act(
            world, apps.reject, application_id=app_id, officer=MOI, reason="Not in our area."
        )
        assert decision.application.state == apps.REJECTED and decision.issued is None
        assert decision.application.decision_reason == "Not in our area."
        with portal(world).session() as session:
            seen = apps.get_application(session, app_id, national_id=PERSON)
        assert seen.state == apps.REJECTED

    def test_submitting_at_start_with_every_document(self, world: Any) -> None:
        document = upload(world, JPEG)
        application = start(world, Source(), documents=[document.document_id])
        assert application.state == apps.SUBMITTED
        assert [u.required_index for u in application.uploads] == [2]

    def test_another_persons_application_is_not_found(self, world: Any) -> None:
        draft = start(world, Source())
        with portal(world).session() as session, pytest.raises(ApplicationNotFound):
            apps.get_application(session, draft.application_id, national_id="MA:ZZ999999")
        with portal(world).session() as session, pytest.raises(ApplicationNotFound):
            apps.get_application(session, draft.application_id, agency=DGI.agency)


class TestRefusals:
    """Each refusal raises a clear error and leaves every table and the chain unchanged."""

    def unchanged(self, world: Any, error: type[Exception], work: Any) -> Exception:
        before = counts(world)
        with pytest.raises(error) as raised:
            work()
        assert counts(world) == before
        return raised.value

    def test_unknown_procedure(self, world: Any) -> None:
        self.unchanged(
            world, ProcedureNotFound, lambda: start(world, Source(), procedure="ma-nope")
        )

    @pytest.mark.parametrize(
        "form",
        [
            {"declaration": True},
            {"purpose": "  ", "declaration": True},
            {"purpose": "For my bank"},
            {"purpose": "For my bank", "declaration": True, "colour": "red"},
            {"purpose": "For my bank", "declaration": True, "channel": "pigeon"},
            {"purpose": "For my bank", "declaration": True, "phone": "call me"},
        ],
    )
    def test_invalid_form(self, world: Any, form: dict[str, Any]) -> None:
        error = self.unchanged(world, InvalidForm, lambda: start(world, Source(), form=form))
        assert isinstance(error, InvalidForm) and error.params["field"]

    @pytest.mark.parametrize(
        "content", [b"GIF89a" + b"\x00" * 20, b"<html>not a pdf</html>", b"", b"PK\x03\x04zip"]
    )
    def test_wrong_file_type(self, world: Any, content: bytes) -> None:
        self.unchanged(world, DocumentRefused, lambda: upload(world, content))

    def test_oversized_upload(self, world: Any) -> None:
        limit = portal(world).settings.services_upload_max_bytes
        big = PDF + b"\x00" * (limit - len(PDF) + 1)
        error = self.unchanged(world, DocumentTooLarge, lambda: upload(world, big))
        assert error.status_code == 413  # type: ignore[attr-defined]

    def test_officer_of_another_agency(self, world: Any) -> None:
        application = submitted(world)
        app_id = application.application_id
        task = [t for t in application.tasks if t.kind == apps.REVIEW][0]
        self.unchanged(
            world,
            NotYourAgency,
            lambda: act(world, apps.take_in_review, application_id=app_id, officer=DGI),
        )
        act(world, apps.take_in_review, application_id=app_id, officer=MOI)
        self.unchanged(
            world,
            NotYourAgency,
            lambda: act(world, apps.reject, application_id=app_id, officer=DGI, reason="no"),
        )
        with portal(world).session() as session, pytest.raises(NotYourAgency):
            apps.officer_of_task(session, task.task_id, DGI)

    def test_illegal_transitions(self, world: Any) -> None:
        draft = start(world, Source())
        app_id = draft.application_id
        self.unchanged(
            world,
            IllegalTransition,
            lambda: act(world, apps.take_in_review, application_id=app_id, officer=MOI),
        )
        node = portal(world)

        def approve_draft() -> None:
            with world.node("idp").session() as register, node.session() as session:
                apps.approve(
                    session, node=node, register=register, application_id=app_id, officer=MOI
                )

        self.unchanged(world, IllegalTransition, approve_draft)
        self.unchanged(
            world,
            IllegalTransition,
            lambda: act(
                world,
                apps.answer_information,
                application_id=app_id,
                national_id=PERSON,
                answer="x",
            ),
        )

    def test_submitting_without_the_asked_document(self, world: Any) -> None:
        draft = start(world, Source())
        self.unchanged(
            world,
            DocumentsMissing,
            lambda: act(
                world,
                apps.submit_application,
                application_id=draft.application_id,
                national_id=PERSON,
            ),
        )

    def test_someone_elses_upload(self, world: Any) -> None:
        draft = start(world, Source())
        theirs = upload(world, national_id="MA:ZZ999999")
        from jisr.services.errors import DocumentNotFound

        self.unchanged(
            world,
            DocumentNotFound,
            lambda: act(
                world,
                apps.submit_application,
                application_id=draft.application_id,
                national_id=PERSON,
                documents=[theirs.document_id],
            ),
        )

    def test_unknown_task(self, world: Any) -> None:
        with portal(world).session() as session, pytest.raises(TaskNotFound):
            apps.get_task(session, "n0t-ex1st1ng-task")


class TestFigures:
    def test_counts_what_was_fetched_and_asked(self, world: Any) -> None:
        procedure = "ma-life-certificate"
        node = portal(world)
        with node.session() as session:
            before = apps.simplification_figures(session, procedure_ids=[procedure]).procedures[0]
        application = start(world, Source(everything=True), procedure=procedure)
        app_id = application.application_id
        act(world, apps.take_in_review, application_id=app_id, officer=MOI)
        act(world, apps.reject, application_id=app_id, officer=MOI, reason="Test rejection.")
        with node.session() as session:
            stats = apps.simplification_figures(session, country="MA")
        after = next(f for f in stats.procedures if f.procedure_id == procedure)
        fetched = len(application.documents_fetched)
        assert after.applications == before.applications + 1
        assert after.documents_fetched == before.documents_fetched + fetched
        assert after.documents_asked == before.documents_asked
        assert after.decided == before.decided + 1 and after.rejected == before.rejected + 1
        assert after.median_decision_hours is not None
        providers = {e.provider for e in application.evidence}
        assert after.visits_avoided == before.visits_avoided + len(providers) + 1
        assert after.documents_required == len(
            catalogue.get_procedure(procedure).required_documents
        )
        assert stats.overall.applications == sum(f.applications for f in stats.procedures)
        assert stats.overall.country == "MA"
        assert json.dumps(stats.as_dict(), default=str)


class TestStatsCli:
    def test_json(self, world: Any) -> None:
        from typer.testing import CliRunner

        from jisr.cli import app

        start(world, Source(everything=True), procedure="ma-life-certificate")
        directory = str(world.settings.instance_dir)
        result = CliRunner().invoke(
            app, ["services", "stats", "--country", "MA", "--json", "--dir", directory]
        )
        assert result.exit_code == 0, result.output
        figures = json.loads(result.stdout)
        assert figures["overall"]["country"] == "MA" and figures["overall"]["applications"] >= 1
        assert {f["country"] for f in figures["procedures"]} == {"MA"}
        life = next(f for f in figures["procedures"] if f["procedure_id"] == "ma-life-certificate")
        assert life["documents_fetched"] >= 1 and life["documents_asked"] == 0
        text = CliRunner().invoke(app, ["services", "stats", "--dir", directory])
        assert text.exit_code == 0 and "ma-life-certificate" in text.stdout

    def test_refusals_are_sentences(self, world: Any, tmp_path: Any) -> None:
        from typer.testing import CliRunner

        from jisr.cli import app

        directory = str(world.settings.instance_dir)
        unknown = CliRunner().invoke(
            app, ["services", "stats", "--procedure", "ma-nope", "--dir", directory]
        )
        assert unknown.exit_code != 0 and "ma-nope" in unknown.output
        empty = CliRunner().invoke(app, ["services", "stats", "--dir", str(tmp_path)])
        assert empty.exit_code != 0 and "jisr init" in empty.output
