"""Digital registries [GovStack Digital Registries]: registry databases described by a JSON
Schema, and their records, served by an agency's ``registers`` node.

A *registry database* is a (``name``, ``version``) pair with a JSON Schema (any draft the
``jsonschema`` library knows; 2020-12 when ``$schema`` is absent) whose root is an object.
GovStack's extensions are read from it: a top-level property with ``"primaryKey": true`` is
the record's key (unique in the database, numbered from ``number_format`` when a new record
leaves it out, e.g. ``"{code}{indexNoByCode}"``), and the flag ``{"name": "personal-id",
"path": "/child/nationalId"}`` (a JSON pointer) names the data subject's personal identifier,
so that a person can see who read their data (``personal_data_usage``).

Records are JSON objects. Every write (create, update, delete, schema change) is checked
against the schema first and refused as a whole when anything fails (nothing is written), and
recorded on the node's audit chain ``registries`` with the content's SHA-256 (never the
personal data itself). Every read of a record about a person is kept in
``registry_data_usage``: who (the exchange client), which record, when.

Queries:

* *content queries* (read, exists, update, update-entries, update-or-create): a partial object;
  a record matches when every field given equals the record's (objects recursively: the
  record's object must hold the query's fields; anything else: equal JSON values);
* *list*: ``query.<field>=value`` (exact, as text), ``search`` (case-insensitive substring
  after Arabic normalisation, in ``filter``'s field or in every text of the record; not a
  regular expression: a caller's pattern can take exponential time), ``ordering``
  (``ascending``/``descending`` by ``filter``'s field, else by creation; or a field name,
  ``-field`` for descending), ``page`` and ``pageSize`` (at most ``MAX_PAGE_SIZE``).

Field names are top-level properties or dotted paths into nested objects (``child.firstName``);
a field the schema does not declare is refused when the schema lists its properties.

Updates merge the ``write`` object into the record as a JSON Merge Patch (RFC 7396: ``null``
removes a field). Errors (``RegistriesError`` and below) are RFC 9457 problems in the API.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import uuid as uuid_module
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from jsonschema import FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, validator_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jisr.core.arabic import normalize_arabic
from jisr.core.audit import AuditEntry, CheckpointSigner
from jisr.core.audit import service as audit
from jisr.core.clock import utcnow
from jisr.core.i18n import _
from jisr.core.instance import Instance, Node, Progress, add_node
from jisr.services.errors import ServicesError
from jisr.services.registries_models import RegistryDatabase, RegistryDataUsage, RegistryRecord

REGISTERS_NODE = "registers"
AUDIT_CHAIN = "registries"
PERSONAL_ID_FLAG = "personal-id"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_SEARCH = 200

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}$")
_CLIENT = re.compile(r"^[^/\s]{1,64}(/[^/\s]{1,64}){2,3}$")
_FORMAT_FIELDS = {"code", "indexNoByCode"}


# --- errors ------------------------------------------------------------------------------------


class RegistriesError(ServicesError):
    """Base of the registries' errors (400).

    Hierarchy::

        RegistriesError (400)
        ├── RegistryNotFound (404)      no database with this name and version, or this id
        ├── RecordNotFound (404)        no record matches (read, update, delete, read-value)
        ├── FieldNotFound (404)         the record has no such field (read-value)
        ├── SchemaViolation (422)       the content breaks the database's JSON Schema
        ├── InvalidSchema (422)         a database schema that is not a usable JSON Schema
        ├── BadQuery (400)              a query naming unknown fields, bad paging, bad ids
        ├── DuplicateRecord (409)       another record already has this primary key
        ├── AmbiguousQuery (409)        an update whose query matches several records
        └── RegistryInUse (409)         deleting a database that still holds records
    """

    status_code = 400
    code = "registries-error"
    title = _("The registry request cannot be completed")


class RegistryNotFound(RegistriesError):
    status_code = 404
    code = "registry-not-found"
    title = _("No such registry database")


class RecordNotFound(RegistriesError):
    status_code = 404
    code = "record-not-found"
    title = _("no record found")


class FieldNotFound(RegistriesError):
    status_code = 404
    code = "field-not-found"
    title = _("The record has no such field")


class SchemaViolation(RegistriesError):
    status_code = 422
    code = "schema-violation"
    title = _("The record does not follow the registry's schema")


class InvalidSchema(RegistriesError):
    status_code = 422
    code = "invalid-schema"
    title = _("The registry schema is not valid")


class BadQuery(RegistriesError):
    status_code = 400
    code = "bad-query"
    title = _("The registry query is not valid")


class DuplicateRecord(RegistriesError):
    status_code = 409
    code = "duplicate-record"
    title = _("A record with this key already exists")


class AmbiguousQuery(RegistriesError):
    status_code = 409
    code = "ambiguous-query"
    title = _("The query matches more than one record")


class RegistryInUse(RegistriesError):
    status_code = 409
    code = "registry-in-use"
    title = _("The registry database still holds records")


# --- audit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Auditor:
    """Who acts and how the audit chain is signed (the node's checkpoint signer)."""

    actor: str
    signer: CheckpointSigner | None = None
    checkpoint_every: int | None = None

    def record(self, session: Session, entries: list[AuditEntry]) -> None:
        if entries:
            audit.append_many(
                session,
                AUDIT_CHAIN,
                entries,
                signer=self.signer,
                checkpoint_every=self.checkpoint_every if self.signer else None,
            )

    def entry(
        self, event: str, database: RegistryDatabase, data: Mapping[str, Any], subject: str | None
    ) -> AuditEntry:
        return AuditEntry(
            event=event,
            data={"database": database.name, "version": database.version, **data},
            actor=self.actor,
            subject=subject,
        )


def content_digest(content: Mapping[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_client(value: str) -> str:
    """An exchange client id ``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``; ``BadQuery`` otherwise."""
    if not _CLIENT.match(value):
        raise BadQuery(
            _("{value} is not a client id of the form INSTANCE/CLASS/MEMBER/SUBSYSTEM."),
            value=value[:100],
        )
    return value


# --- the node ------------------------------------------------------------------------------


def ensure_registers_node(
    instance: Instance, *, progress: Progress | None = None
) -> tuple[Node, bool]:
    """The instance's ``registers`` node, added (database, migrations, signing key) when it
    is missing; returns the node and whether it was added."""
    if REGISTERS_NODE in instance.nodes:
        return instance.node(REGISTERS_NODE), False
    return add_node(instance, REGISTERS_NODE, progress=progress), True


def node_auditor(node: Node, session: Session, actor: str) -> Auditor:
    """An ``Auditor`` signing the chain's checkpoints with ``node``'s key."""
    return Auditor(
        actor=actor,
        signer=node.checkpoint_signer(session),
        checkpoint_every=node.settings.audit_checkpoint_every,
    )


# --- schemas -------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Validator:
    schema = json.loads(schema_text)
    cls = validator_for(schema, default=Draft202012Validator)
    validator: Validator = cls(schema, format_checker=FormatChecker())
    return validator


def check_schema(schema: Any) -> tuple[str | None, dict[str, Any]]:
    """Check a database schema; its primary-key property (or ``None``) and the schema."""
    if not isinstance(schema, dict):
        raise InvalidSchema(_("A registry schema must be a JSON object."))
    if schema.get("type", "object") != "object":
        raise InvalidSchema(_("A registry schema must describe objects (type object)."))
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as error:
        raise InvalidSchema(
            _("The registry schema is not a valid JSON Schema: {reason}"),
            reason=error.message[:300],
        ) from error
    properties = schema.get("properties", {})
    keys = [
        name
        for name, sub in properties.items()
        if isinstance(sub, dict) and sub.get("primaryKey") is True
    ]
    if len(keys) > 1:
        raise InvalidSchema(
            _("A registry schema may mark one primary key; it marks {fields}."),
            fields=", ".join(keys),
        )
    return (keys[0] if keys else None), schema


def _check_flags(flags: Any) -> list[dict[str, Any]]:
    if not isinstance(flags, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("path"), str)
        for f in flags
    ):
        raise InvalidSchema(_("Schema flags must be a list of objects with a name and a path."))
    for flag in flags:
        if not flag["path"].startswith("/"):
            raise InvalidSchema(
                _("The flag path {path} is not a JSON pointer (it must start with /)."),
                path=flag["path"],
            )
    return list(flags)


def _check_number_format(number_format: str | None) -> str | None:
    if not number_format:
        return None
    fields = set(re.findall(r"{([^{}]*)}", number_format))
    if not fields <= _FORMAT_FIELDS or "indexNoByCode" not in fields or len(number_format) > 100:
        raise InvalidSchema(
            _("The number format {format} may only use {{code}} and must use {{indexNoByCode}}."),
            format=number_format,
        )
    return number_format


def violations(database: RegistryDatabase, content: Any) -> list[str]:
    """What in ``content`` breaks the database's schema (empty when it passes)."""
    found = []
    for error in sorted(_validator(database.schema).iter_errors(content), key=lambda e: e.path):
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        found.append(f"{where}: {error.message}"[:300])
    return found


def _validate(database: RegistryDatabase, content: Any) -> None:
    problems = violations(database, content)
    if problems:
        raise SchemaViolation(
            _("The record breaks the schema of {name} {version}: {reason}"),
            name=database.name,
            version=database.version,
            reason="; ".join(problems[:5]),
        )


# --- databases -----------------------------------------------------------------------------


# Names the API routes use at the place of a registry name (``/data/MyPersonalDataUsage/1.0``,
# the Registration API's ``/data/statistics``).
RESERVED_NAMES = frozenset({"mypersonaldatausage", "statistics"})


def _check_names(name: str, version: str, code: str) -> None:
    if name.casefold() in RESERVED_NAMES:
        raise BadQuery(_("{value} is reserved by the API; choose another name."), value=name)
    if not _NAME.match(name):
        raise BadQuery(_("{value} is not a valid registry name."), value=name[:100])
    if not _VERSION.match(version):
        raise BadQuery(_("{value} is not a valid registry version."), value=version[:100])
    if not _CODE.match(code):
        raise BadQuery(_("{value} is not a valid database code."), value=code[:100])


def _subject_path(flags: list[dict[str, Any]]) -> str | None:
    return next((f["path"] for f in flags if f["name"] == PERSONAL_ID_FLAG), None)


def create_database(
    session: Session,
    *,
    name: str,
    version: str,
    code: str,
    schema: Any,
    auditor: Auditor,
    group_name: str = "",
    catalog_name: str = "",
    description: str = "",
    institution: str = "",
    number_format: str | None = None,
    schema_flags: Any = (),
    database_id: int | None = None,
) -> RegistryDatabase:
    """A new registry database; ``Conflict`` (409) when the name and version are taken."""
    _check_names(name, version, code)
    primary_key, schema = check_schema(schema)
    flags = _check_flags(list(schema_flags))
    number_format = _check_number_format(number_format)
    if find_database(session, name, version) is not None:
        raise DuplicateRecord(
            _("The registry {name} {version} already exists."), name=name, version=version
        )
    if database_id is not None and session.get(RegistryDatabase, database_id) is not None:
        raise DuplicateRecord(_("A registry database {id} already exists."), id=database_id)
    now = utcnow()
    database = RegistryDatabase(
        name=name,
        version=version,
        code=code,
        group_name=group_name,
        catalog_name=catalog_name,
        description=description,
        institution=institution,
        schema=json.dumps(schema, ensure_ascii=False, sort_keys=True),
        schema_flags=json.dumps(flags, ensure_ascii=False),
        primary_key=primary_key,
        subject_path=_subject_path(flags),
        number_format=number_format,
        next_index=1,
        created_by=auditor.actor,
        created_at=now,
        modified_at=now,
    )
    # Ids are numbered here, not by the database: PostgreSQL's sequence does not see the
    # explicit ids the Database API may set, and would hand out one of them again.
    if database_id is None:
        database_id = (session.scalar(sa.select(sa.func.max(RegistryDatabase.id))) or 0) + 1
    database.id = database_id
    session.add(database)
    session.flush()
    auditor.record(
        session,
        [
            auditor.entry(
                "registries.database.created",
                database,
                {"id": database.id, "schema_sha256": content_digest(schema)},
                None,
            )
        ],
    )
    return database


def modify_database(
    session: Session,
    *,
    code: str,
    schema: Any,
    auditor: Auditor,
    name: str | None = None,
    version: str | None = None,
    **fields: Any,
) -> tuple[RegistryDatabase, bool]:
    """GovStack ``/database/modify``: create the database, or replace its schema.

    The database is (``name`` or ``code``, ``version``); without a version, the latest one
    of that name (``1.0`` for a new one). A new schema is refused unless every record the
    database holds passes it. Returns the database and whether it was created.
    """
    name = name or code
    if version is None:
        versions = list_databases(session, name=name)
        version = versions[-1].version if versions else "1.0"
    database = find_database(session, name, version)
    if database is None:
        created = create_database(
            session, name=name, version=version, code=code, schema=schema, auditor=auditor, **fields
        )
        return created, True
    _check_names(name, version, code)
    primary_key, schema = check_schema(schema)
    flags = _check_flags(list(fields.get("schema_flags", json.loads(database.schema_flags))))
    text = json.dumps(schema, ensure_ascii=False, sort_keys=True)
    for record in _records(session, database):
        problems = violations_for(text, record.content)
        if problems:
            raise SchemaViolation(
                _("Record {uuid} would break the new schema of {name} {version}: {reason}"),
                uuid=record.uuid,
                name=name,
                version=version,
                reason="; ".join(problems[:3]),
            )
        if primary_key != database.primary_key:
            raise InvalidSchema(
                _("The primary key of {name} {version} cannot change while it holds records."),
                name=name,
                version=version,
            )
    database.schema = text
    database.code = code
    database.primary_key = primary_key
    database.schema_flags = json.dumps(flags, ensure_ascii=False)
    database.subject_path = _subject_path(flags)
    for attribute in ("group_name", "catalog_name", "description", "institution"):
        if fields.get(attribute):
            setattr(database, attribute, fields[attribute])
    if "number_format" in fields:
        database.number_format = _check_number_format(fields["number_format"])
    database.modified_at = utcnow()
    session.flush()
    auditor.record(
        session,
        [
            auditor.entry(
                "registries.database.modified",
                database,
                {"id": database.id, "schema_sha256": content_digest(schema)},
                None,
            )
        ],
    )
    return database, False


def violations_for(schema_text: str, content: Any) -> list[str]:
    validator = _validator(schema_text)
    return [
        f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"[:300]
        for e in validator.iter_errors(content)
    ]


def find_database(session: Session, name: str, version: str) -> RegistryDatabase | None:
    return session.scalars(
        sa.select(RegistryDatabase).where(
            RegistryDatabase.name == name, RegistryDatabase.version == version
        )
    ).one_or_none()


def get_database(session: Session, name: str, version: str) -> RegistryDatabase:
    """The database ``name`` ``version``; ``RegistryNotFound`` otherwise."""
    database = find_database(session, name, version)
    if database is None:
        raise RegistryNotFound(
            _("There is no registry {name} version {version} here."), name=name, version=version
        )
    return database


def get_database_by_id(session: Session, database_id: int) -> RegistryDatabase:
    database = session.get(RegistryDatabase, database_id)
    if database is None:
        raise RegistryNotFound(_("There is no registry database {id} here."), id=database_id)
    return database


def list_databases(session: Session, *, name: str | None = None) -> list[RegistryDatabase]:
    """Every database (of ``name``), by name then id."""
    query = sa.select(RegistryDatabase).order_by(RegistryDatabase.name, RegistryDatabase.id)
    if name is not None:
        query = query.where(RegistryDatabase.name == name)
    return list(session.scalars(query))


def count_records(session: Session, database: RegistryDatabase) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(RegistryRecord)
            .where(RegistryRecord.database_id == database.id)
        )
        or 0
    )


def delete_database(session: Session, *, database_id: int, auditor: Auditor) -> None:
    """Delete an empty database (``RegistryInUse`` while it holds records)."""
    database = get_database_by_id(session, database_id)
    held = count_records(session, database)
    if held:
        raise RegistryInUse(
            _("The registry {name} {version} still holds {count} records; delete them first."),
            name=database.name,
            version=database.version,
            count=held,
        )
    session.execute(
        sa.delete(RegistryDataUsage).where(RegistryDataUsage.database_id == database.id)
    )
    auditor.record(
        session, [auditor.entry("registries.database.deleted", database, {"id": database.id}, None)]
    )
    session.delete(database)
    session.flush()


def database_info(session: Session, database: RegistryDatabase) -> dict[str, Any]:
    """A database as GovStack's ``DatabaseInfo``."""
    schema = json.loads(database.schema)
    flags = json.loads(database.schema_flags)
    if database.primary_key:
        flags = [*flags, {"name": "primaryKey", "path": "/" + database.primary_key}]
    return {
        "id": database.id,
        "version": database.version,
        "name": database.name,
        "code": database.code,
        "description": database.description,
        "institution": database.institution,
        "numberFormat": database.number_format or "",
        "schema": schema,
        "schemaTags": [],
        "schemaFlags": flags,
        "fieldsUniques": [[database.primary_key]] if database.primary_key else [],
        "isDraft": False,
        "isDisabled": False,
        "isArchived": False,
        "modifiedAt": _timestamp(database.modified_at),
        "byUserName": database.created_by,
        "genericServices": [
            {"serviceId": n, "name": s, "isVisible": True, "usedCount": 0}
            for n, s in enumerate(GENERIC_SERVICES, 1)
        ],
        "dataIndexIncrement": database.next_index - 1,
        "hasLogo": False,
        "recordCount": count_records(session, database),
    }


GENERIC_SERVICES = (
    "data-create",
    "data-read",
    "data-read-value",
    "data-list",
    "data-exists",
    "data-update",
    "data-update-entries",
    "data-update-or-create",
    "data-delete",
)


def catalogues(session: Session) -> list[dict[str, Any]]:
    """Every database grouped by catalogue, as GovStack ``databasesSchema`` objects.

    ``id`` and ``groupId`` are the smallest database id of the catalogue and of its group
    (a catalogue has no row of its own here); ``order`` is its place in the list.
    """
    groups: dict[str, list[RegistryDatabase]] = {}
    for database in list_databases(session):
        groups.setdefault(database.catalog_name or database.name, []).append(database)
    answer = []
    for order, (catalog, members) in enumerate(sorted(groups.items()), 1):
        answer.append(
            {
                "id": min(d.id for d in members),
                "name": catalog,
                "code": members[0].code,
                "databases": [database_info(session, d) for d in members],
                "groupId": min(d.id for d in members),
                "groupName": members[0].group_name,
                "order": order,
                "dataIndexIncrement": sum(d.next_index - 1 for d in members),
            }
        )
    return answer


# --- content helpers -----------------------------------------------------------------------


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def record_view(record: RegistryRecord) -> dict[str, Any]:
    """A record as the API returns it: GovStack's ``Data`` (content, uuid, timestamps)."""
    return {
        "content": record.content,
        "uuid": record.uuid,
        "createdAt": _timestamp(record.created_at),
        "modifiedAt": _timestamp(record.modified_at),
    }


def _normal(text: str) -> str:
    return normalize_arabic(text).casefold()


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, str):
        yield value
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _search_text(content: Mapping[str, Any]) -> str:
    return "\x1f".join(_normal(t) for t in _texts(content))


def _pointer(content: Any, pointer: str | None) -> Any:
    if not pointer:
        return None
    node = content
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:255]


def _matches(record: Any, query: Any) -> bool:
    if isinstance(query, dict):
        return isinstance(record, dict) and all(
            k in record and _matches(record[k], v) for k, v in query.items()
        )
    if isinstance(query, bool) or isinstance(record, bool):
        return type(query) is type(record) and query == record
    return bool(query == record)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch of ``patch`` into ``target`` (a new value)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _declared(database: RegistryDatabase) -> dict[str, Any] | None:
    """The schema's top-level properties when it lists them (``None``: anything goes)."""
    schema = json.loads(database.schema)
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        return properties
    return None


def field_path(database: RegistryDatabase, field: str) -> list[str]:
    """``field`` as a path into records: a top-level property, else a dotted path; a first
    step the schema does not declare is refused (``BadQuery``)."""
    if not field or len(field) > 200:
        raise BadQuery(_("A field name must have 1 to 200 characters."))
    declared = _declared(database)
    if declared is None or field in declared:
        return [field]
    path = field.split(".")
    if path[0] not in declared:
        raise BadQuery(
            _("The registry {name} {version} has no field {field}."),
            name=database.name,
            version=database.version,
            field=field,
        )
    return path


def _check_query(database: RegistryDatabase, query: Mapping[str, Any]) -> None:
    declared = _declared(database)
    if declared is None:
        return
    unknown = [k for k in query if k not in declared]
    if unknown:
        raise BadQuery(
            _("The registry {name} {version} has no field {field}."),
            name=database.name,
            version=database.version,
            field=", ".join(unknown),
        )


def _at(content: Any, path: list[str]) -> tuple[bool, Any]:
    node = content
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _json_at(path: list[str]) -> Any:
    column = RegistryRecord.content
    return column[path[0]] if len(path) == 1 else column[tuple(path)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- records: writing ----------------------------------------------------------------------


def _lock_numbering(session: Session, database: RegistryDatabase) -> None:
    """Lock the database row once per transaction before numbering (PostgreSQL: concurrent
    writers wait; SQLite already serialises write transactions)."""
    locked: set[int] = session.info.setdefault("registries_locked", set())
    if database.id not in locked:
        session.flush()
        session.refresh(database, with_for_update=True)
        locked.add(database.id)


def _prepare(
    session: Session,
    database: RegistryDatabase,
    content: Any,
    *,
    exclude: int | None = None,
) -> tuple[dict[str, Any], str | None, str | None]:
    """Validate ``content`` (numbering its key when the schema asks for one and it is
    absent); the content, its key and its subject."""
    if not isinstance(content, dict):
        raise SchemaViolation(_("A record must be a JSON object."))
    content = dict(content)
    key_field = database.primary_key
    if key_field and content.get(key_field) in (None, "") and database.number_format:
        _lock_numbering(session, database)
        content[key_field] = database.number_format.format(
            code=database.code, indexNoByCode=database.next_index
        )
        database.next_index += 1
    _validate(database, content)
    key = _scalar_text(content.get(key_field)) if key_field else None
    if key is not None:
        clash = sa.select(RegistryRecord.id).where(
            RegistryRecord.database_id == database.id, RegistryRecord.key == key
        )
        if exclude is not None:
            clash = clash.where(RegistryRecord.id != exclude)
        if session.scalar(clash) is not None:
            raise DuplicateRecord(
                _("The registry {name} {version} already has a record {key}."),
                name=database.name,
                version=database.version,
                key=key,
            )
    subject = _scalar_text(_pointer(content, database.subject_path))
    return content, key, subject


def create_record(
    session: Session, *, database: RegistryDatabase, content: Any, auditor: Auditor
) -> RegistryRecord:
    """Create one record; its key numbered from the database's format when absent."""
    return create_records(session, database=database, contents=[content], auditor=auditor)[0]


def create_records(
    session: Session,
    *,
    database: RegistryDatabase,
    contents: Iterable[Any],
    auditor: Auditor,
    uuids: Sequence[str | None] | None = None,
) -> list[RegistryRecord]:
    """Create records (an import): all pass or none is written (the caller's transaction
    rolls back on the error, which names the failing record's position). ``uuids`` keeps
    the identifiers records had in the system they come from (a new one where ``None``)."""
    made: list[RegistryRecord] = []
    entries: list[AuditEntry] = []
    keys: set[str] = set()
    items = list(contents)
    for position, content in enumerate(items, 1):
        try:
            content, key, subject = _prepare(session, database, content)
            if key is not None and key in keys:
                raise DuplicateRecord(
                    _("The registry {name} {version} already has a record {key}."),
                    name=database.name,
                    version=database.version,
                    key=key,
                )
        except RegistriesError as error:
            if len(items) == 1:
                raise
            raise type(error)(
                _("Record {position}: {reason}"), position=position, reason=error.detail
            ) from error
        if key is not None:
            keys.add(key)
        given = uuids[position - 1] if uuids is not None and position <= len(uuids) else None
        now = utcnow()
        record = RegistryRecord(
            uuid=_new_uuid(session, given),
            database_id=database.id,
            key=key,
            subject=subject,
            content=content,
            search_text=_search_text(content),
            created_at=now,
            modified_at=now,
        )
        session.add(record)
        made.append(record)
        entries.append(
            auditor.entry(
                "registries.record.created",
                database,
                {"uuid": record.uuid, "key": key, "sha256": content_digest(content)},
                subject,
            )
        )
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent writer took the key first
        raise DuplicateRecord(
            _("The registry {name} {version} already has a record {key}."),
            name=database.name,
            version=database.version,
            key=", ".join(sorted(keys)),
        ) from error
    auditor.record(session, entries)
    return made


def _new_uuid(session: Session, given: str | None) -> str:
    if given is None:
        return str(uuid_module.uuid4())
    try:
        value = str(uuid_module.UUID(given))
    except ValueError as error:
        raise BadQuery(_("{value} is not a UUID."), value=given[:100]) from error
    if session.scalar(sa.select(RegistryRecord.id).where(RegistryRecord.uuid == value)):
        raise DuplicateRecord(_("A record {uuid} already exists."), uuid=value)
    return value


def _apply(
    session: Session,
    database: RegistryDatabase,
    record: RegistryRecord,
    write: Mapping[str, Any],
    auditor: Auditor,
) -> AuditEntry:
    merged = merge_patch(record.content, dict(write))
    content, key, subject = _prepare(session, database, merged, exclude=record.id)
    record.content = content
    record.key = key
    record.subject = subject
    record.search_text = _search_text(content)
    record.modified_at = utcnow()
    return auditor.entry(
        "registries.record.updated",
        database,
        {"uuid": record.uuid, "key": key, "sha256": content_digest(content)},
        subject,
    )


def _matching(
    session: Session, database: RegistryDatabase, query: Mapping[str, Any]
) -> Iterator[RegistryRecord]:
    """Records matching a content query, oldest first (SQL narrows, Python decides)."""
    _check_query(database, query)
    statement = sa.select(RegistryRecord).where(RegistryRecord.database_id == database.id)
    for name, value in query.items():
        if isinstance(value, str):
            statement = statement.where(_json_at([name]).as_string() == value)
    if database.primary_key and isinstance(query.get(database.primary_key), (str, int)):
        key = _scalar_text(query[database.primary_key])
        statement = statement.where(RegistryRecord.key == key)
    for record in session.scalars(statement.order_by(RegistryRecord.id)):
        if _matches(record.content, query):
            yield record


def _write_target(
    database: RegistryDatabase, query: Mapping[str, Any] | None, write: Mapping[str, Any]
) -> Mapping[str, Any]:
    if query:
        return query
    key_field = database.primary_key
    if key_field and write.get(key_field) not in (None, ""):
        return {key_field: write[key_field]}
    raise BadQuery(
        _("Say which record to change: give a query, or the primary key in the written data.")
    )


def update_record(
    session: Session,
    *,
    database: RegistryDatabase,
    query: Mapping[str, Any] | None,
    write: Mapping[str, Any],
    auditor: Auditor,
) -> RegistryRecord:
    """Update the one record the query matches (``RecordNotFound``, ``AmbiguousQuery``)."""
    found = _only(session, database, _write_target(database, query, write))
    if found is None:
        raise RecordNotFound(
            _("No record of {name} {version} matches the query."),
            name=database.name,
            version=database.version,
        )
    entry = _apply(session, database, found, write, auditor)
    session.flush()
    auditor.record(session, [entry])
    return found


def _only(
    session: Session, database: RegistryDatabase, query: Mapping[str, Any]
) -> RegistryRecord | None:
    found = None
    for count, record in enumerate(_matching(session, database, query), 1):
        if count > 1:
            raise AmbiguousQuery(
                _(
                    "The query matches more than one record of {name} {version}; "
                    "use update-entries to change them all."
                ),
                name=database.name,
                version=database.version,
            )
        found = record
    return found


def update_entries(
    session: Session,
    *,
    database: RegistryDatabase,
    query: Mapping[str, Any] | None,
    write: Mapping[str, Any],
    auditor: Auditor,
) -> list[RegistryRecord]:
    """Update every record the query matches (all, when it is empty); all or none."""
    records = list(_matching(session, database, query or {}))
    entries = [_apply(session, database, r, write, auditor) for r in records]
    session.flush()
    auditor.record(session, entries)
    return records


def update_or_create(
    session: Session,
    *,
    database: RegistryDatabase,
    query: Mapping[str, Any] | None,
    write: Mapping[str, Any],
    auditor: Auditor,
) -> tuple[RegistryRecord, bool]:
    """Update the record the query matches, or create one from ``write``; (record, created)."""
    target = _write_target(database, query, write)
    found = _only(session, database, target)
    if found is None:
        return create_record(session, database=database, content=dict(write), auditor=auditor), True
    entry = _apply(session, database, found, write, auditor)
    session.flush()
    auditor.record(session, [entry])
    return found, False


def find_record(session: Session, database: RegistryDatabase, ref: str) -> RegistryRecord:
    """The record whose uuid or primary key is ``ref``; ``RecordNotFound`` otherwise."""
    condition = RegistryRecord.uuid == ref
    if database.primary_key:
        condition = sa.or_(condition, RegistryRecord.key == ref)
    found = session.scalars(
        sa.select(RegistryRecord)
        .where(RegistryRecord.database_id == database.id, condition)
        .order_by(RegistryRecord.id)
    ).first()
    if found is None:
        raise RecordNotFound(
            _("The registry {name} {version} has no record {ref}."),
            name=database.name,
            version=database.version,
            ref=ref[:100],
        )
    return found


def delete_record(
    session: Session, *, database: RegistryDatabase, ref: str, auditor: Auditor
) -> RegistryRecord:
    """Delete the record whose uuid or primary key is ``ref``."""
    record = find_record(session, database, ref)
    auditor.record(
        session,
        [
            auditor.entry(
                "registries.record.deleted",
                database,
                {"uuid": record.uuid, "key": record.key, "sha256": content_digest(record.content)},
                record.subject,
            )
        ],
    )
    session.delete(record)
    session.flush()
    return record


# --- records: reading ----------------------------------------------------------------------


def _log_reads(
    session: Session,
    database: RegistryDatabase,
    records: Iterable[RegistryRecord],
    *,
    reader: str,
    operation: str,
) -> None:
    now = utcnow()
    for record in records:
        if record.subject:
            session.add(
                RegistryDataUsage(
                    database_id=database.id,
                    subject=record.subject,
                    reference=record.key or record.uuid,
                    reader=reader,
                    operation=operation,
                    read_at=now,
                )
            )
    session.flush()


def read_record(
    session: Session, *, database: RegistryDatabase, query: Mapping[str, Any], reader: str
) -> RegistryRecord:
    """The first (oldest) record matching the query; ``RecordNotFound`` otherwise."""
    found = next(_matching(session, database, query), None)
    if found is None:  # GovStack's 404 detail, word for word (translated)
        raise RecordNotFound(_("no record found"), name=database.name, version=database.version)
    _log_reads(session, database, [found], reader=reader, operation="read")
    return found


def exists(session: Session, *, database: RegistryDatabase, query: Mapping[str, Any]) -> bool:
    return next(_matching(session, database, query), None) is not None


def read_value(
    session: Session, *, database: RegistryDatabase, ref: str, field: str, reader: str
) -> Any:
    """One field of one record (``ref``: its uuid or key); ``FieldNotFound`` when absent."""
    record = find_record(session, database, ref)
    present, value = _at(record.content, field_path(database, field))
    if not present:
        raise FieldNotFound(
            _("Record {ref} of {name} {version} has no field {field}."),
            ref=ref[:100],
            name=database.name,
            version=database.version,
            field=field,
        )
    _log_reads(session, database, [record], reader=reader, operation="read-value")
    return value


@dataclass
class Page:
    count: int
    results: list[RegistryRecord]
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.count


def list_records(
    session: Session,
    *,
    database: RegistryDatabase,
    reader: str,
    search: str | None = None,
    filter: str | None = None,
    ordering: str | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    fields: Mapping[str, str] | None = None,
) -> Page:
    """A page of the records matching the list query (see the module docstring)."""
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadQuery(
            _("page must be 1 or more and pageSize between 1 and {max}."), max=MAX_PAGE_SIZE
        )
    if search is not None and len(search) > MAX_SEARCH:
        raise BadQuery(_("search may have at most {max} characters."), max=MAX_SEARCH)
    filter_path = field_path(database, filter) if filter else None
    descending = False
    order_path: list[str] | None = None
    if ordering:
        if ordering.lower() in ("ascending", "asc", "descending", "desc"):
            descending = ordering.lower().startswith("desc")
            order_path = filter_path
        else:
            descending = ordering.startswith("-")
            order_path = field_path(database, ordering.removeprefix("-"))
    statement = sa.select(RegistryRecord).where(RegistryRecord.database_id == database.id)
    for name, value in (fields or {}).items():
        path = field_path(database, name)
        statement = statement.where(_json_at(path).as_string() == value)
    term = _normal(search) if search else ""
    if term:
        statement = statement.where(
            RegistryRecord.search_text.like(f"%{_escape_like(term)}%", escape="\\")
        )
    in_python = filter_path is not None and bool(term) or order_path is not None
    if not in_python:
        order = RegistryRecord.id.desc() if descending else RegistryRecord.id
        count = session.scalar(sa.select(sa.func.count()).select_from(statement.subquery())) or 0
        results = list(
            session.scalars(
                statement.order_by(order).offset((page - 1) * page_size).limit(page_size)
            )
        )
    else:
        candidates = list(session.scalars(statement.order_by(RegistryRecord.id)))
        if filter_path is not None and term:
            candidates = [
                r
                for r in candidates
                if term in _normal(" ".join(_texts(_at(r.content, filter_path)[1])))
            ]
        if order_path is not None:
            candidates.sort(key=lambda r: _sort_key(_at(r.content, order_path)[1]))
            if descending:
                candidates.reverse()
        elif descending:
            candidates.reverse()
        count = len(candidates)
        results = candidates[(page - 1) * page_size : page * page_size]
    _log_reads(session, database, results, reader=reader, operation="list")
    return Page(count=count, results=results, page=page, page_size=page_size)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (
        1,
        _normal(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value),
    )


def _records(session: Session, database: RegistryDatabase) -> Iterator[RegistryRecord]:
    yield from session.scalars(
        sa.select(RegistryRecord)
        .where(RegistryRecord.database_id == database.id)
        .order_by(RegistryRecord.id)
    )


def personal_data_usage(
    session: Session, *, user_id: str, database_code: str
) -> list[dict[str, Any]]:
    """Who read records about ``user_id`` in the databases with ``database_code``
    (GovStack ``PersonalDataUsage`` objects, newest first)."""
    if not _USER_ID.match(user_id):
        raise BadQuery(_("{value} is not a valid personal identifier."), value=user_id[:100])
    if not _CODE.match(database_code):
        raise BadQuery(_("{value} is not a valid database code."), value=database_code[:100])
    databases = session.scalars(
        sa.select(RegistryDatabase).where(RegistryDatabase.code == database_code)
    ).all()
    if not databases:
        raise RegistryNotFound(
            _("There is no registry database with the code {code} here."), code=database_code
        )
    rows = session.scalars(
        sa.select(RegistryDataUsage)
        .where(
            RegistryDataUsage.subject == user_id,
            RegistryDataUsage.database_id.in_([d.id for d in databases]),
        )
        .order_by(RegistryDataUsage.id.desc())
    )
    answer = []
    for row in rows:
        parts = row.reader.split("/")
        answer.append(
            {
                "id": str(row.id),
                "readerId": row.reader,
                "readerInstitutionId": "/".join(parts[:3]),
                "readerApplicationName": parts[3] if len(parts) > 3 else "",
                "searchDateTime": _timestamp(row.read_at),
                "operation": row.operation,
                "refrences": [{"ReferenceID": row.reference}],
            }
        )
    return answer


__all__ = [
    "AUDIT_CHAIN",
    "REGISTERS_NODE",
    "AmbiguousQuery",
    "Auditor",
    "BadQuery",
    "DuplicateRecord",
    "FieldNotFound",
    "InvalidSchema",
    "Page",
    "RecordNotFound",
    "RegistriesError",
    "RegistryInUse",
    "RegistryNotFound",
    "SchemaViolation",
    "catalogues",
    "check_client",
    "check_schema",
    "count_records",
    "create_database",
    "create_record",
    "create_records",
    "database_info",
    "delete_database",
    "delete_record",
    "ensure_registers_node",
    "exists",
    "find_database",
    "find_record",
    "get_database",
    "get_database_by_id",
    "list_databases",
    "list_records",
    "merge_patch",
    "modify_database",
    "node_auditor",
    "personal_data_usage",
    "read_record",
    "read_value",
    "record_view",
    "update_entries",
    "update_or_create",
    "update_record",
    "violations",
]
