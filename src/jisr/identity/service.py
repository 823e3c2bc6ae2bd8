"""The population register: create, read, change, search and import persons (node ``idp``).

Functions take the idp node's ``session`` first, only ``flush()``, and raise the block's
errors (``jisr.identity.errors``). Identifiers are stored in compact form (``MAAB123456``)
and accepted in either written form.

History
-------
Every change is appended to the node's own audit chain ``population-register`` (subject: the
compact identifier; actor: who did it, when known): ``person.created`` with the initial
values, ``person.updated`` with ``{"changes": {field: [old, new]}}`` for the fields that
really changed, ``person.deceased`` with the date. The chain is the register's legal history,
so it holds values, but only those of the register's own fields, and it stays on the idp
node: it is never sent to another node. Pass the node's ``signer`` (``Node.checkpoint_signer``)
to sign checkpoints on it.

Search
------
A query that is a national identifier finds that person. Otherwise it is keyed like the
stored names (``jisr.identity.names``): Arabic script searches ``name_key_ar``, Latin script
``name_key_latin``; a person matches when every query token starts one of the key's tokens
(``key LIKE 'tok%' OR key LIKE '% tok%'``), all in SQL over the key columns. Exact key first,
then key prefix, then by family and given name. On PostgreSQL a ``pg_trgm`` index on the keys
is the next step if registers grow past a few million rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core.arabic import contains_arabic
from jisr.core.audit import AuditEntry, CheckpointSigner, append_many
from jisr.core.clock import utcnow
from jisr.core.i18n import _
from jisr.identity._import import Progress, read_rows
from jisr.identity.errors import (
    IdentityError,
    ImportRejected,
    InvalidNationalId,
    InvalidPerson,
    PersonAlreadyDeceased,
    PersonAlreadyExists,
    PersonNotFound,
    RowError,
)
from jisr.identity.identifiers import NationalId, parse_national_id, qid_birth_year
from jisr.identity.models import Person
from jisr.identity.names import arabic_name_key, latin_name_key
from jisr.identity.schemas import PersonCreate, PersonUpdate, Status

CHAIN = "population-register"
MAX_LIMIT = 100
INSERT_BATCH = 1000

_NAME_FIELDS = ("given_name_ar", "family_name_ar", "given_name_latin", "family_name_latin")
_AUDITED = (
    *_NAME_FIELDS,
    "birth_date",
    "birth_place",
    "sex",
    "nationality",
    "address",
    "status",
    "death_date",
    "email",
    "phone",
)


# --- reading -----------------------------------------------------------------------------


def find_person(session: Session, national_id: str) -> Person | None:
    """The person with ``national_id`` (either written form), or ``None``."""
    compact = parse_national_id(national_id).compact
    return session.scalars(sa.select(Person).where(Person.national_id == compact)).one_or_none()


def get_person_by_national_id(session: Session, national_id: str) -> Person:
    """The person with ``national_id``; ``PersonNotFound`` when the register has none."""
    person = find_person(session, national_id)
    if person is None:
        raise PersonNotFound(
            _("No person with identifier {national_id}."),
            national_id=parse_national_id(national_id).display,
        )
    return person


def existing_national_ids(session: Session, compact_ids: Iterable[str]) -> set[str]:
    """Which of ``compact_ids`` are already in the register (queried in batches)."""
    wanted = list(dict.fromkeys(compact_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        batch = wanted[start : start + 500]
        found.update(
            session.scalars(sa.select(Person.national_id).where(Person.national_id.in_(batch)))
        )
    return found


def search_persons(
    session: Session, query: str, *, country: str | None = None, limit: int = 20
) -> list[Person]:
    """Persons matching ``query`` (an identifier, or a name in Arabic or Latin script)."""
    text = query.strip()
    if not text:
        raise InvalidPerson(_("The search query is empty."))
    limit = max(1, min(limit, MAX_LIMIT))
    country_code = country.strip().upper() if country else None
    national_id = _as_national_id(text, country_code)
    if national_id is not None:
        found = find_person(session, national_id.compact)
        return [found] if found is not None else []
    if contains_arabic(text):
        column, key = Person.name_key_ar, arabic_name_key(text)
    else:
        column, key = Person.name_key_latin, latin_name_key(text)
    tokens = key.split()
    if not tokens:
        return []
    statement = sa.select(Person).where(
        *(sa.or_(column.like(f"{token}%"), column.like(f"% {token}%")) for token in tokens)
    )
    if country_code:
        statement = statement.where(Person.country == country_code)
    rank = sa.case((column == key, 0), (column.like(f"{key}%"), 1), else_=2)
    statement = statement.order_by(
        rank, Person.family_name_latin, Person.given_name_latin, Person.national_id
    ).limit(limit)
    return list(session.scalars(statement))


def _as_national_id(text: str, country: str | None) -> NationalId | None:
    for candidate in (text, f"{country}{text}" if country else None):
        if candidate is None:
            continue
        try:
            return parse_national_id(candidate)
        except InvalidNationalId:
            continue
    return None


# --- writing -----------------------------------------------------------------------------


def create_person(
    session: Session,
    data: PersonCreate,
    *,
    actor: str | None = None,
    signer: CheckpointSigner | None = None,
) -> Person:
    """Add one person; ``PersonAlreadyExists`` if the identifier is taken."""
    values = person_values(data)
    if existing_national_ids(session, [values["national_id"]]):
        raise PersonAlreadyExists(
            _("A person with identifier {national_id} is already in the register."),
            national_id=parse_national_id(values["national_id"]).display,
        )
    person = Person(**values)
    session.add(person)
    session.flush()
    _record(session, [_created_entry(values, actor)], signer)
    return person


def create_persons(
    session: Session,
    people: Sequence[dict[str, Any]],
    *,
    source: str,
    actor: str | None = None,
    signer: CheckpointSigner | None = None,
    progress: Progress | None = None,
) -> int:
    """Insert already validated rows (``person_values``) in bulk; their ids must be free.

    Used by the CSV import and the demo: one multi-row INSERT per thousand persons, one
    audit record per person written under one lock of the chain.
    """
    total = len(people)
    for start in range(0, total, INSERT_BATCH):
        session.execute(sa.insert(Person), list(people[start : start + INSERT_BATCH]))
        if progress is not None:
            progress("insert", min(start + INSERT_BATCH, total), total)
    _record(session, [_created_entry(values, actor, source=source) for values in people], signer)
    return total


def update_person(
    session: Session,
    national_id: str,
    changes: PersonUpdate,
    *,
    actor: str | None = None,
    signer: CheckpointSigner | None = None,
) -> Person:
    """Change the fields set in ``changes``; the audit chain records each one, old and new."""
    person = get_person_by_national_id(session, national_id)
    wanted = changes.model_dump(exclude_unset=True)
    if wanted.get("sex") is not None:
        wanted["sex"] = wanted["sex"].value
    merged = {field: getattr(person, field) for field in _AUDITED} | wanted
    _check_consistency(parse_national_id(person.national_id), merged)
    changed: dict[str, list[Any]] = {}
    for field, new in wanted.items():
        old = getattr(person, field)
        if old != new:
            changed[field] = [_jsonable(old), _jsonable(new)]
            setattr(person, field, new)
    if not changed:
        return person
    if changed.keys() & set(_NAME_FIELDS):
        person.name_key_ar, person.name_key_latin = _keys(merged)
    person.updated_at = utcnow()
    session.flush()
    entry = AuditEntry(
        event="person.updated",
        data={"changes": changed},
        actor=actor,
        subject=person.national_id,
    )
    _record(session, [entry], signer)
    return person


def mark_deceased(
    session: Session,
    national_id: str,
    *,
    death_date: dt.date,
    actor: str | None = None,
    signer: CheckpointSigner | None = None,
) -> Person:
    """Record a death; refused twice, before the birth, or in the future."""
    person = get_person_by_national_id(session, national_id)
    display = parse_national_id(person.national_id).display
    if person.status == Status.DECEASED.value:
        raise PersonAlreadyDeceased(
            _("{national_id} is already recorded as deceased on {death_date}."),
            national_id=display,
            death_date=str(person.death_date),
        )
    if death_date < person.birth_date or death_date > utcnow().date():
        raise InvalidPerson(
            _("The date of death {death_date} must be between the birth and today."),
            death_date=str(death_date),
        )
    person.status, person.death_date, person.updated_at = (
        Status.DECEASED.value,
        death_date,
        utcnow(),
    )
    session.flush()
    entry = AuditEntry(
        event="person.deceased",
        data={"death_date": death_date.isoformat()},
        actor=actor,
        subject=person.national_id,
    )
    _record(session, [entry], signer)
    return person


# --- import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows read, persons added, rows skipped (already registered)."""

    rows: int
    imported: int
    skipped: int


def import_csv(
    session: Session,
    file: IO[str],
    *,
    progress: Progress | None = None,
    skip_existing: bool = False,
    actor: str | None = None,
    signer: CheckpointSigner | None = None,
) -> ImportReport:
    """Import a register CSV (format: ``jisr.identity._import``) all or nothing.

    Every row is checked first (form, identifier, duplicates in the file, identifiers
    already registered unless ``skip_existing``); any refusal raises ``ImportRejected``
    listing each bad row with its line, and nothing is written. Then the rows are inserted
    in bulk in the caller's transaction.
    """
    rows, errors = read_rows(file, person_values, progress=progress)
    taken = existing_national_ids(session, [row.values["national_id"] for row in rows])
    if taken and not skip_existing:
        errors.extend(
            RowError(
                row.line,
                _("A person with identifier {national_id} is already in the register."),
                "national_id",
                {"national_id": parse_national_id(row.values["national_id"]).display},
            )
            for row in rows
            if row.values["national_id"] in taken
        )
    if errors:
        errors.sort(key=lambda error: error.line)
        raise ImportRejected(
            _(
                "The file was not imported: {count} problem(s), the first on line {line}. "
                "Nothing was changed."
            ),
            errors=errors,
            count=len(errors),
            line=errors[0].line,
        )
    fresh = [row.values for row in rows if row.values["national_id"] not in taken]
    create_persons(session, fresh, source="import", actor=actor, signer=signer, progress=progress)
    return ImportReport(rows=len(rows), imported=len(fresh), skipped=len(rows) - len(fresh))


# --- helpers -----------------------------------------------------------------------------


def person_values(data: PersonCreate) -> dict[str, Any]:
    """The table row for ``data``, keys computed; refuses a bad or inconsistent identifier."""
    national_id = parse_national_id(data.national_id)
    values = data.model_dump(exclude={"national_id"})
    values["sex"] = data.sex.value
    _check_consistency(national_id, values)
    now = utcnow()
    name_key_ar, name_key_latin = _keys(values)
    return {
        **values,
        "national_id": national_id.compact,
        "country": national_id.country,
        "name_key_ar": name_key_ar,
        "name_key_latin": name_key_latin,
        "status": Status.ALIVE.value,
        "death_date": None,
        "created_at": now,
        "updated_at": now,
    }


def _check_consistency(national_id: NationalId, values: dict[str, Any]) -> None:
    birth = values.get("birth_date")
    if national_id.country == "QA" and isinstance(birth, dt.date):
        year = qid_birth_year(national_id.number)
        if birth.year != year:
            raise InvalidNationalId(
                _("{national_id} encodes the birth year {year}, not {birth_year}."),
                national_id=national_id.display,
                year=year,
                birth_year=birth.year,
            )


def _keys(values: dict[str, Any]) -> tuple[str, str]:
    return (
        arabic_name_key(values["given_name_ar"], values["family_name_ar"]),
        latin_name_key(values["given_name_latin"], values["family_name_latin"]),
    )


def _created_entry(
    values: dict[str, Any], actor: str | None, *, source: str = "single"
) -> AuditEntry:
    fields = {f: _jsonable(values.get(f)) for f in _AUDITED if values.get(f) not in (None, "")}
    return AuditEntry(
        event="person.created",
        data={"fields": fields, "source": source},
        actor=actor,
        subject=values["national_id"],
    )


def _record(session: Session, entries: list[AuditEntry], signer: CheckpointSigner | None) -> None:
    append_many(session, CHAIN, entries, signer=signer)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


__all__ = [
    "CHAIN",
    "IdentityError",
    "ImportReport",
    "import_csv",
    "create_person",
    "create_persons",
    "existing_national_ids",
    "find_person",
    "get_person_by_national_id",
    "mark_deceased",
    "person_values",
    "search_persons",
    "update_person",
]
