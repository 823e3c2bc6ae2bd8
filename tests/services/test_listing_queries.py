"""The listings of applications and tasks load their related rows (evidence, uploads,
tasks, history, the application of each task) in a fixed number of SQL statements: the
count for 20 applications is the count for one (no query per row), in the service and
through the GovStack Registration API; the results are those of one-by-one reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jisr.services import applications as apps
from jisr.services import registration_api

from .test_applications import MOI, PDF, Source
from .test_registration_api import World, serve_world

pytestmark = pytest.mark.db

RESIDENCE = "ma-residence-certificate"
FORM = {"purpose": "Opening a bank account", "declaration": True}
MANY = 20


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside the block."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _apply(node: Any, national_id: str, *, submit: bool) -> None:
    """A new application of ``national_id``: submitted with an upload (a review task for the
    officers) or left a draft (a ``provide-documents`` task for the person)."""
    with node.session() as session:
        documents = []
        if submit:
            upload = apps.upload_document(
                session, node=node, national_id=national_id, filename="bail.pdf", content=PDF
            )
            documents = [upload.document_id]
        apps.start_application(
            session,
            node=node,
            procedure_id=RESIDENCE,
            national_id=national_id,
            form=FORM,
            evidence=Source(),
            documents=documents,
        )


def _grow(node: Any, national_id: str, total: int) -> None:
    """Applications of ``national_id`` until there are ``total``, half submitted (the
    even ones, one in review with a question to answer)."""
    with node.session() as session:
        have = len(apps.list_applications(session, national_id=national_id, limit=1000))
    for n in range(have, total):
        _apply(node, national_id, submit=n % 2 == 0)
    with node.session() as session:
        first = apps.list_applications(session, national_id=national_id, limit=1)[0]
        if first.state == apps.SUBMITTED:
            apps.take_in_review(
                session, node=node, application_id=first.application_id, officer=MOI
            )
            apps.request_information(
                session,
                node=node,
                application_id=first.application_id,
                officer=MOI,
                question="Which bank?",
            )


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[World]:
    yield from serve_world(instance_factory)


@pytest.fixture(autouse=True)
def exchange(monkeypatch: pytest.MonkeyPatch) -> Source:
    source = Source()
    monkeypatch.setattr(registration_api, "_evidence_source", lambda node: source)
    return source


def _measure(engine: Engine, read: Callable[[], int]) -> tuple[int, int]:
    """(statements run, items listed) by ``read``."""
    with statements(engine) as seen:
        listed = read()
    return len(seen), listed


def test_service_listings_do_not_grow_with_the_rows(world: World) -> None:
    node = world.instance.node("portal")
    person = "MAXX000001"

    def listings() -> dict[str, tuple[int, int]]:
        found = {}
        for name, call in {
            "applications of a person": lambda s: apps.list_applications(s, national_id=person),
            "applications of an agency": lambda s: apps.list_applications(s, agency=MOI.agency),
            "newest first": lambda s: apps.list_applications(
                s, national_id=person, newest_first=True
            ),
            "tasks of a person": lambda s: apps.list_tasks(s, national_id=person),
            "tasks of an agency": lambda s: apps.list_tasks(s, agency=MOI.agency, open_only=True),
        }.items():
            with node.session() as session:
                found[name] = _measure(
                    node.engine, lambda call=call, session=session: len(call(session))
                )
        return found

    _grow(node, person, 1)
    one = listings()
    _grow(node, person, MANY)
    many = listings()
    for name in one:
        assert many[name][1] > one[name][1], name  # more rows listed ...
        assert many[name][0] == one[name][0], (name, one[name], many[name])  # ... same SQL
    assert many["applications of a person"][1] == MANY


def test_listed_applications_are_those_read_one_by_one(world: World) -> None:
    node = world.instance.node("portal")
    person = "MAXX000002"
    _grow(node, person, 6)
    with node.session() as session:
        listed = apps.list_applications(session, national_id=person)
        alone = [apps.get_application(session, a.application_id) for a in listed]
        tasks = apps.list_tasks(session, national_id=person)
        tasks_alone = [apps.get_task(session, t.task_id) for t in tasks]
    assert listed == alone
    assert tasks == tasks_alone
    assert {a.state for a in listed} == {apps.DRAFT, apps.SUBMITTED, apps.MORE_INFO}
    for info in listed:
        assert info.evidence and info.history and info.tasks
        assert {t.application_id for t in info.tasks} == {info.application_id}
        assert {t.application_state for t in info.tasks} == {info.state}
        assert [u.required_index for u in info.uploads] == (
            [] if info.state == apps.DRAFT else info.documents_asked
        )
    by_application = {a.application_id: a.state for a in listed}
    assert tasks and all(t.application_state == by_application[t.application_id] for t in tasks)


def test_api_listings_do_not_grow_with_the_rows(world: World) -> None:
    node = world.instance.node("portal")
    person = "MAAB123456"  # the citizen the API world logs in

    def listings() -> dict[str, tuple[int, int]]:
        found = {}
        for name, path, headers in (
            ("applicant's applications", "/applications", world.citizen),
            ("agency's applications", "/applications", world.moi),
            ("applicant's tasks", "/tasks", world.citizen),
            ("agency's tasks", "/tasks", world.moi),
        ):

            def read(path: str = path, headers: dict[str, str] = headers) -> int:
                response = world.http.get(path, headers=headers)
                assert response.status_code == 200, response.text
                return len(response.json())

            found[name] = _measure(node.engine, read)
        return found

    _grow(node, person, 1)
    one = listings()
    _grow(node, person, MANY)
    many = listings()
    for name in one:
        assert many[name][1] > one[name][1], name
        assert many[name][0] == one[name][0], (name, one[name], many[name])
    # the states shown with the tasks are their applications'
    tasks = world.http.get("/tasks", headers=world.citizen).json()
    for task in tasks:
        file = world.http.get(f"/applications/{task['fileId']}", headers=world.citizen).json()
        assert task["status"] == file["status"]
