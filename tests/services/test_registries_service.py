"""The registries service without HTTP: merge patches (RFC 7396's examples), matching, the
all-or-none writes, kept uuids, numbering and the audit chain."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from jisr.core.audit import service as audit
from jisr.services import registries
from jisr.services.registries import merge_patch

# RFC 7396, Appendix A: (target, patch, result)
RFC7396 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7396)
def test_merge_patch_rfc7396(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # the target is not modified


SCHEMA = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "primaryKey": True},
        "n": {"type": "integer"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array"},
        "who": {"type": "object"},
    },
    "additionalProperties": False,
}


@pytest.fixture
def auditor() -> registries.Auditor:
    return registries.Auditor(actor="MA/GOV/TEST/UNIT")


@pytest.fixture
def database(session: Session, auditor: registries.Auditor, unique: str) -> Any:
    return registries.create_database(
        session,
        name=f"svc-{unique}",
        version="1",
        code="SVC",
        schema=SCHEMA,
        auditor=auditor,
        number_format="{code}{indexNoByCode}",
        schema_flags=[{"name": "personal-id", "path": "/who/id"}],
    )


pytestmark = pytest.mark.db


def test_matching_keeps_json_types(session: Session, database: Any, auditor: Any) -> None:
    registries.create_records(
        session,
        database=database,
        contents=[
            {"n": 1, "flag": True, "tags": ["a"], "who": {"id": "X", "name": "x"}},
            {"n": 0, "flag": False},
        ],
        auditor=auditor,
    )

    def found(query: dict[str, Any]) -> str | None:
        record = registries.read_record(
            session, database=database, query=query, reader="MA/GOV/TEST/UNIT"
        )
        return record.key

    assert found({"n": 1}) == "SVC1"
    assert found({"flag": False}) == "SVC2"
    assert not registries.exists(session, database=database, query={"n": True})  # 1 is not true
    assert not registries.exists(session, database=database, query={"flag": 0})  # false is not 0
    assert not registries.exists(session, database=database, query={"n": "1"})
    assert registries.exists(session, database=database, query={"who": {"id": "X"}})
    assert registries.exists(session, database=database, query={"tags": ["a"]})
    assert not registries.exists(session, database=database, query={"tags": ["a", "b"]})


def test_imports_are_all_or_none(session: Session, database: Any, auditor: Any) -> None:
    with pytest.raises(registries.SchemaViolation, match="Record 3"):
        with session.begin_nested():
            registries.create_records(
                session,
                database=database,
                contents=[{"n": 1}, {"n": 2}, {"n": "three"}],
                auditor=auditor,
            )
    assert registries.count_records(session, database) == 0


def test_uuids_are_kept_and_checked(session: Session, database: Any, auditor: Any) -> None:
    given = "80bcb084-fa17-11ed-be56-0242ac120002"
    made = registries.create_records(
        session, database=database, contents=[{"n": 1}, {"n": 2}], auditor=auditor, uuids=[given]
    )
    assert made[0].uuid == given and made[1].uuid != given
    with pytest.raises(registries.DuplicateRecord):
        registries.create_records(
            session, database=database, contents=[{"n": 3}], auditor=auditor, uuids=[given]
        )
    with pytest.raises(registries.BadQuery):
        registries.create_records(
            session, database=database, contents=[{"n": 3}], auditor=auditor, uuids=["nope"]
        )


def test_subject_and_usage(session: Session, database: Any, auditor: Any) -> None:
    record = registries.create_record(
        session, database=database, content={"who": {"id": "MA:AB123456"}}, auditor=auditor
    )
    assert record.subject == "MA:AB123456"
    registries.read_value(
        session, database=database, ref=record.uuid, field="who.id", reader="MA/GOV/HEALTH/APP"
    )
    usage = registries.personal_data_usage(session, user_id="MA:AB123456", database_code="SVC")
    assert usage[0]["readerId"] == "MA/GOV/HEALTH/APP"
    assert usage[0]["refrences"] == [{"ReferenceID": record.key}]


def test_every_write_is_on_the_audit_chain(session: Session, database: Any, auditor: Any) -> None:
    made = registries.create_record(session, database=database, content={"n": 1}, auditor=auditor)
    registries.update_record(
        session, database=database, query={"key": made.key}, write={"n": 2}, auditor=auditor
    )
    registries.update_entries(session, database=database, query={}, write={"n": 3}, auditor=auditor)
    registries.update_or_create(
        session, database=database, query={"n": 9}, write={"n": 9}, auditor=auditor
    )
    registries.delete_record(session, database=database, ref=made.uuid, auditor=auditor)
    events = [
        r["event"]
        for r in audit.export_chain(session, registries.AUDIT_CHAIN)
        if r.get("event", "").startswith("registries.")
        and r.get("data", "").find(database.name) > 0
    ]
    assert events[-6:] == [
        "registries.database.created",
        "registries.record.created",
        "registries.record.updated",
        "registries.record.updated",
        "registries.record.created",
        "registries.record.deleted",
    ]
    assert audit.verify_chain(session, registries.AUDIT_CHAIN).ok
