"""Append-only, hash-chained audit records with signed checkpoints, and their verifier.

Design
------
A node keeps many named *chains* (``security``, ``message-log``…). Each chain is a row in
``audit_chains`` (its head: ``head_seq``, ``head_hash``) and records ``1..head_seq`` in
``audit_records``. Record ``n`` stores the hash of record ``n-1`` (``prev_hash``; record 1
stores the genesis value, 64 zeros) and its own hash::

    hash = SHA-256 hex of UTF-8( JSON array
        ["jisr-audit-1", chain, seq, created_at, event, actor, subject, data, prev_hash] )

written without spaces (``separators=(",", ":")``, ``ensure_ascii=False``), so no field can
bleed into the next: strings are quoted and escaped, ``actor``/``subject`` may be ``null``,
``seq`` is a JSON integer. ``created_at`` is ISO 8601 in UTC with microseconds and ``Z``
(``2026-01-02T03:04:05.000006Z``). ``data`` is the canonical JSON text of the caller's mapping
(sorted keys, no spaces, UTF-8 as is, no NaN) and is stored as exactly that text, so the hash
covers the bytes kept. The row ``id`` is storage identity only and is not hashed.

Appending locks the chain head (``SELECT … FOR UPDATE``; on SQLite the write transaction,
opened with ``BEGIN IMMEDIATE``, already serialises writers), creating it on first use with
``INSERT … ON CONFLICT DO NOTHING`` and locking it again, so concurrent first appends queue
instead of forking. ``append_many`` writes a batch under one lock (group commit).

A *checkpoint* is a compact JWS over ``{"chain","hash","iat","seq"}`` (canonical JSON) at a
record, signed by a ``CheckpointSigner`` (the keystore in production). ``append`` writes one
whenever ``seq % checkpoint_every == 0``; ``checkpoint`` signs the current head. A checkpoint
pins history: an attacker who rewrites records and recomputes every later hash and the head
still cannot produce the signed hash.

Verification
------------
Records are read in seq order (streamed in batches); each record's hash is recomputed and the
record is compared with the one before it, its *predecessor* (genesis, seq 0, hash 64 zeros,
before the first). A *break* is a record whose ``prev_hash`` is not its predecessor's hash or
whose seq is not the predecessor's plus one; its *target* is the record whose hash its
``prev_hash`` names (searched among the 16 records before it, the records left behind by
earlier breaks, and every later record). Each break is explained once, by the first rule that
fits, in this order:

1. it links past up to 16 records to an earlier one, and nothing links to the records it
   skips → ``inserted`` (those records are forged extras; ``seq`` is the first of them);
2. its link holds but its seq does not follow → ``changed`` at it when its content hashes
   right at the expected seq (the seq was edited), else ``deleted`` (a gap whose next record
   was relinked and re-hashed);
3. the target is elsewhere in the chain → ``reordered`` (e.g. two rows' seq swapped). A record
   whose content hashes right only at another seq is the one moved; a break that only follows
   from a neighbour's move is not reported again;
4. there is a seq gap and no target → ``deleted``; ``seq`` is the first missing record;
5. no target, no gap, and the record's own hash is wrong: ``deleted`` if it hashes right at a
   seq up to 16 higher (records removed and the rest renumbered), else its own edit (reported
   as ``changed``) explains the break;
6. no target, no gap, own hash right: the predecessor was ``changed`` and its hash recomputed
   (or the first record's link edited). The same evidence follows deleting records and
   renumbering and re-hashing everything after; the signed checkpoints tell the two apart.

Besides breaks: ``changed`` — a record's stored hash does not match its content (a field was
edited), unless rule 1 or 3 already covers it, or it hashes right at its seq minus the net
number inserted/removed before it (renumbered, not changed). ``head-mismatch`` — the head row
disagrees with the last record: records missing from the end (tail truncation; ``seq`` is the
first missing), records beyond the head (appended around the API), the same seq with another
hash, or records without a head row. ``checkpoint-invalid`` — the signature does not verify,
the token is not a compact JWS, or the stored row (chain, seq, hash, iat, kid) differs from
what was signed; without a verifier signatures are not checked, but the row is still compared
with the token's payload. ``checkpoint-mismatch`` — a valid checkpoint names a hash that the
record at its seq no longer has, or a record that no longer exists: the chain was rewritten,
links recomputed, at or before that seq.

Findings are sorted by seq (at one seq: deleted, inserted, reordered, changed, head, then
checkpoint findings), so ``findings[0]`` is the earliest broken record. Each names its record
by ``seq`` and ``record_id`` (``None`` when the record no longer exists) and in its message.
Every inconsistency is reported (``ok`` is false); the kind is the simplest explanation.
What cannot be seen: records after the last checkpoint rewritten or dropped together with the
head, so checkpoint often and keep checkpoint hashes outside the database too. Only anomalous
records are kept in memory; beyond 10,000 of them the report says ``truncated``.

``export_chain`` yields the head, the checkpoints and the records as JSON-ready dicts (data as
its exact stored text); ``verify_exported`` applies the same rules to such an archive.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from jisr.core.audit._canonical import (
    GENESIS_HASH,
    ChainReport,
    CheckpointRow,
    CheckpointVerifier,
    HeadRow,
    RecordRow,
    canonical_json,
    checkpoint_payload,
    format_timestamp,
    record_hash,
    verify_rows,
)
from jisr.core.audit.models import AuditChain, AuditCheckpoint, AuditRecord
from jisr.core.clock import utcnow
from jisr.core.db import sqlite_datetime_text
from jisr.core.errors import InvalidInput, NotFound

BATCH_SIZE = 1000  # rows fetched per round trip while verifying or exporting
_MAX_CHAIN, _MAX_EVENT, _MAX_PARTY, _MAX_KID = 100, 100, 255, 64  # column lengths


class CheckpointSigner(Protocol):
    """Signs checkpoint payloads; the keystore's signing key in production."""

    @property
    def kid(self) -> str: ...

    def sign(self, payload: bytes) -> str:
        """A compact JWS over ``payload`` whose header names ``kid``."""
        ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record to append with ``append_many``."""

    event: str
    data: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None
    subject: str | None = None
    at: dt.datetime | None = None


# --- writing -----------------------------------------------------------------------------


def append(
    session: Session,
    chain: str,
    *,
    event: str,
    data: Mapping[str, Any],
    actor: str | None = None,
    subject: str | None = None,
    at: dt.datetime | None = None,
    signer: CheckpointSigner | None = None,
    checkpoint_every: int | None = None,
) -> AuditRecord:
    """Append one record to ``chain`` (created on first use) and return it, flushed."""
    entry = AuditEntry(event=event, data=data, actor=actor, subject=subject, at=at)
    return append_many(session, chain, [entry], signer=signer, checkpoint_every=checkpoint_every)[0]


def append_many(
    session: Session,
    chain: str,
    entries: Iterable[AuditEntry],
    *,
    signer: CheckpointSigner | None = None,
    checkpoint_every: int | None = None,
) -> list[AuditRecord]:
    """Append ``entries`` in order under one lock of the chain head (group commit).

    Every entry is checked before anything is written. With a ``signer``, a checkpoint is
    written at each new record whose seq is a multiple of ``checkpoint_every`` (default: the
    ``audit_checkpoint_every`` setting). The records are written with SQLAlchemy Core (one
    multi-row INSERT, no unit of work) and returned as detached ``AuditRecord`` objects,
    ids included; ``write_many`` does the same without building them.
    """
    now = utcnow()
    prepared = [_prepare(entry, now) for entry in entries]
    rows = _write(session, chain, prepared, signer, checkpoint_every, want_ids=True)
    return [AuditRecord(**row) for row in rows]


def write_many(
    session: Session | sa.Connection | sqlite3.Connection,
    chain: str,
    entries: Iterable[AuditEntry],
    *,
    signer: CheckpointSigner | None = None,
    checkpoint_every: int | None = None,
) -> int:
    """``append_many`` for hot paths (the gateways' message log): the same records, hashes,
    checkpoints and lock, but no record objects nor ids read back; returns the new head seq
    (0 when ``entries`` is empty and the chain does not exist). ``session`` may also be a
    bare ``Connection`` in a transaction (no ORM session around the write: 0.6 -> 0.4 ms
    CPU for one record in its own transaction, measured with the gateway's ``_append``).
    On SQLite it may also be the driver's own ``sqlite3.Connection`` in a transaction: the
    gateways' message log writes on it, without SQLAlchemy (``_write_sqlite``)."""
    now = utcnow()
    return write_prepared(
        session,
        chain,
        [_prepare(entry, now) for entry in entries],
        signer=signer,
        checkpoint_every=checkpoint_every,
    )


Prepared = tuple[AuditEntry, dt.datetime, str]  # (entry, created_at, canonical data text)


def prepare(entry: AuditEntry, now: dt.datetime | None = None) -> Prepared:
    """Check ``entry`` and canonicalise its data, as appending would: (entry, its time
    (``entry.at``, else ``now``), its data's canonical JSON text); ``InvalidInput`` when it
    cannot be appended. ``write_prepared`` appends it later (the gateways' message log
    journals prepared records first and writes them to the chain off the calls' path)."""
    return _prepare(entry, now or utcnow())


def write_prepared(
    session: Session | sa.Connection | sqlite3.Connection,
    chain: str,
    prepared: list[Prepared],
    *,
    signer: CheckpointSigner | None = None,
    checkpoint_every: int | None = None,
) -> int:
    """``write_many`` of entries already through ``prepare``: numbered, linked and written
    in this order in the caller's transaction; returns the new head seq."""
    if isinstance(session, sqlite3.Connection):
        return _write_sqlite(session, chain, prepared, signer, checkpoint_every)
    rows = _write(session, chain, prepared, signer, checkpoint_every, want_ids=False)
    return int(rows[-1]["seq"]) if rows else 0


# The hot path runs prebuilt Core statements on the session's connection: the ORM unit of
# work cost 0.96 ms CPU for one record in its own transaction (0.19 ms per record in a batch
# of 8), most of it flush bookkeeping (measured with a micro-benchmark of the gateway's
# ``_append``). Measured: 0.96 -> 0.29 ms CPU for one record in its own transaction, 0.19 ->
# 0.07 ms per record in a batch of 8 (``write_many``, no ids read back).
_CHAINS = cast(sa.Table, AuditChain.__table__)
_RECORDS = cast(sa.Table, AuditRecord.__table__)
_CHECKPOINTS = cast(sa.Table, AuditCheckpoint.__table__)
_SELECT_HEAD = (
    sa.select(_CHAINS.c.head_seq, _CHAINS.c.head_hash)
    .where(_CHAINS.c.name == sa.bindparam("chain"))
    .with_for_update()
)
_UPDATE_HEAD = (
    sa.update(_CHAINS)
    .where(_CHAINS.c.name == sa.bindparam("chain"))
    .values(
        head_seq=sa.bindparam("seq"),
        head_hash=sa.bindparam("hash"),
        updated_at=sa.bindparam("now", type_=_CHAINS.c.updated_at.type),
    )
)
_INSERT_RECORDS = sa.insert(_RECORDS)
_INSERT_RECORDS_RETURNING = sa.insert(_RECORDS).returning(
    _RECORDS.c.id, sort_by_parameter_order=True
)
_INSERT_CHECKPOINTS = sa.insert(_CHECKPOINTS)

# On SQLite the same statements go to the driver's cursor directly: SQLAlchemy's execution
# (compiled-cache lookup, parameter processing, result set-up) cost about 90 us per statement
# against 10 us for the statement itself, and a message-log batch runs three (measured with
# the gateway's ``_append``). Values are bound with the columns' own processors, so the
# stored text is the one Core would store.
_RAW_SELECT_HEAD = "SELECT head_seq, head_hash FROM audit_chains WHERE name = ?"
_RAW_INSERT_RECORD = (
    "INSERT INTO audit_records (chain, seq, created_at, event, actor, subject, data, "
    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RAW_UPDATE_HEAD = (
    "UPDATE audit_chains SET head_seq = ?, head_hash = ?, updated_at = ? WHERE name = ?"
)


def _sqlite_cursor(connection: sa.Connection) -> Any | None:
    """The DB-API cursor of a SQLite connection (None on other databases)."""
    if connection.dialect.name != "sqlite":
        return None
    return connection.connection.cursor()


_TIME_PROCESSORS: dict[Any, Any] = {}


def _time_processor(dialect: sa.Dialect) -> Any:
    processor = _TIME_PROCESSORS.get(dialect)
    if processor is None:
        column_type = _RECORDS.c.created_at.type.dialect_impl(dialect)
        processor = column_type.bind_processor(dialect) or (lambda value: value)
        _TIME_PROCESSORS[dialect] = processor
    return processor


def _write(
    session: Session | sa.Connection,
    chain: str,
    prepared: list[Prepared],
    signer: CheckpointSigner | None,
    checkpoint_every: int | None,
    *,
    want_ids: bool,
) -> list[dict[str, Any]]:
    _check_text("chain", chain, _MAX_CHAIN)
    now = utcnow()
    if not prepared:
        return []
    every = _checkpoint_every(signer, checkpoint_every)
    if isinstance(session, Session):
        session.flush()  # objects the caller added go first, as the unit of work would order
        connection = session.connection()
    else:
        connection = session
    cursor = _sqlite_cursor(connection)
    now_stamp = _time_processor(connection.dialect)(now) if cursor is not None else None
    head = cursor.execute(_RAW_SELECT_HEAD, (chain,)).fetchone() if cursor is not None else None
    if head is not None:
        seq, prev_hash = int(head[0]), str(head[1])
    else:
        seq, prev_hash = _lock_head(connection, chain, now)
    rows: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    for number, created_at, entry, data, before, digest in _linked(
        chain, seq, prev_hash, prepared, now
    ):
        rows.append(
            {
                "chain": chain,
                "seq": number,
                "created_at": created_at,
                "event": entry.event,
                "actor": entry.actor,
                "subject": entry.subject,
                "data": data,
                "prev_hash": before,
                "hash": digest,
            }
        )
        if signer is not None and every is not None and number % every == 0:
            checkpoints.append(_checkpoint_values(chain, number, digest, now, signer))
    seq, prev_hash = rows[-1]["seq"], rows[-1]["hash"]
    if cursor is not None and (len(rows) == 1 or not want_ids):
        stamp = _time_processor(connection.dialect)
        values = [
            (
                chain,
                row["seq"],
                now_stamp if row["created_at"] is now else stamp(row["created_at"]),
                row["event"],
                row["actor"],
                row["subject"],
                row["data"],
                row["prev_hash"],
                row["hash"],
            )
            for row in rows
        ]
        if want_ids:  # one row: ``lastrowid`` is set by ``execute`` only
            rows[0]["id"] = cursor.execute(_RAW_INSERT_RECORD, values[0]).lastrowid
        else:
            cursor.executemany(_RAW_INSERT_RECORD, values)
    elif want_ids and len(rows) == 1:
        key = connection.execute(_INSERT_RECORDS, rows[0]).inserted_primary_key
        rows[0]["id"] = key[0] if key is not None else None
    elif want_ids:
        ids = connection.execute(_INSERT_RECORDS_RETURNING, rows).scalars().all()
        for row, row_id in zip(rows, ids, strict=True):
            row["id"] = row_id
    else:
        connection.execute(_INSERT_RECORDS, rows)
    if checkpoints:
        connection.execute(_INSERT_CHECKPOINTS, checkpoints)
    if cursor is not None:
        cursor.execute(
            _RAW_UPDATE_HEAD,
            (seq, prev_hash, now_stamp, chain),
        )
        cursor.close()
    else:
        connection.execute(
            _UPDATE_HEAD, {"chain": chain, "seq": seq, "hash": prev_hash, "now": now}
        )
    if isinstance(session, Session):
        _expire_head(session, chain)
    return rows


def _linked(
    chain: str,
    seq: int,
    prev_hash: str,
    prepared: list[tuple[AuditEntry, dt.datetime, str]],
    now: dt.datetime,
) -> Iterator[tuple[int, dt.datetime, AuditEntry, str, str, str]]:
    """The prepared entries numbered after ``seq`` and linked after ``prev_hash``: (seq,
    created_at, entry, data, prev_hash, hash) for each."""
    # Most records share their time with the record before (written at ``now``, or
    # journalled together): formatted once per time object.
    last_at, at_text = now, format_timestamp(now)
    for entry, created_at, data in prepared:
        seq += 1
        if created_at is not last_at:
            last_at, at_text = created_at, format_timestamp(created_at)
        digest = record_hash(
            chain=chain,
            seq=seq,
            created_at=at_text,
            event=entry.event,
            actor=entry.actor,
            subject=entry.subject,
            data=data,
            prev_hash=prev_hash,
        )
        yield seq, created_at, entry, data, prev_hash, digest
        prev_hash = digest


_RAW_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (chain, seq, hash, created_at, kid, signature) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_RAW_CREATE_HEAD = (
    "INSERT INTO audit_chains (name, head_seq, head_hash, created_at, updated_at) "
    "VALUES (?, 0, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def _write_sqlite(
    connection: sqlite3.Connection,
    chain: str,
    prepared: list[Prepared],
    signer: CheckpointSigner | None,
    checkpoint_every: int | None,
) -> int:
    """``write_many`` on the driver's connection, in the caller's transaction: the same
    rows as ``_write`` (its SQLite statements, values bound with the columns' processors),
    without SQLAlchemy's connection around them. A one-record message-log commit cost about
    twice the work of its statements in the gateway (benchmarks/exchange_overhead.py):
    the context managers, dialect look-ups and dictionaries per row."""
    _check_text("chain", chain, _MAX_CHAIN)
    now = utcnow()
    every = _checkpoint_every(signer, checkpoint_every)
    now_stamp = sqlite_datetime_text(now)
    cursor = connection.cursor()
    try:
        head = cursor.execute(_RAW_SELECT_HEAD, (chain,)).fetchone()
        if head is None:
            cursor.execute(_RAW_CREATE_HEAD, (chain, GENESIS_HASH, now_stamp, now_stamp))
            head = (0, GENESIS_HASH)
        if not prepared:
            return int(head[0])
        values = []
        checkpoints = []
        last_at, at = now, now_stamp
        for seq, created_at, entry, data, prev_hash, digest in _linked(
            chain, int(head[0]), str(head[1]), prepared, now
        ):
            if created_at is not last_at:
                last_at, at = created_at, sqlite_datetime_text(created_at)
            values.append(
                (chain, seq, at, entry.event, entry.actor, entry.subject, data, prev_hash, digest)
            )
            if signer is not None and every is not None and seq % every == 0:
                point = _checkpoint_values(chain, seq, digest, now, signer)
                checkpoints.append(
                    (chain, seq, digest, now_stamp, point["kid"], point["signature"])
                )
        cursor.executemany(_RAW_INSERT_RECORD, values)
        if checkpoints:
            cursor.executemany(_RAW_INSERT_CHECKPOINT, checkpoints)
        last = values[-1]
        cursor.execute(_RAW_UPDATE_HEAD, (last[1], last[8], now_stamp, chain))
        return int(last[1])
    finally:
        cursor.close()


def _expire_head(session: Session, chain: str) -> None:
    """A head this session loaded earlier (``session.get``) would now be stale."""
    loaded = session.identity_map.get(identity_key(AuditChain, chain))
    if loaded is not None:
        session.expire(loaded)


def checkpoint(
    session: Session, chain: str, *, signer: CheckpointSigner, at: dt.datetime | None = None
) -> AuditCheckpoint:
    """Sign the current head of ``chain`` (returns the existing checkpoint if already signed)."""
    moment = _aware(at or utcnow(), "at")
    head = session.scalars(_head_for_update(chain)).one_or_none()
    if head is None:
        raise NotFound(f"There is no audit chain named {chain!r}.")
    existing = session.scalars(
        sa.select(AuditCheckpoint).where(
            AuditCheckpoint.chain == chain, AuditCheckpoint.seq == head.head_seq
        )
    ).one_or_none()
    if existing is not None:
        return existing
    created = _signed_checkpoint(chain, head.head_seq, head.head_hash, moment, signer)
    session.add(created)
    session.flush()
    return created


def _prepare(entry: AuditEntry, now: dt.datetime) -> tuple[AuditEntry, dt.datetime, str]:
    _check_text("event", entry.event, _MAX_EVENT)
    _check_text("actor", entry.actor, _MAX_PARTY, optional=True)
    _check_text("subject", entry.subject, _MAX_PARTY, optional=True)
    if not isinstance(entry.data, Mapping):
        raise InvalidInput(f"Audit data must be a mapping, not {type(entry.data).__name__}.")
    try:
        data = canonical_json(entry.data)
        data.encode("utf-8")
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        raise InvalidInput(f"Audit data is not JSON data: {error}") from error
    return entry, now if entry.at is None else _aware(entry.at, "at"), data


def _check_text(name: str, value: str | None, limit: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    # The common case first (ASCII text of a sane length: ``isascii`` reads a flag): four
    # checks per record on the gateways' message log, about 1 us each the long way.
    if type(value) is str and 0 < len(value) <= limit and value.isascii() and "\x00" not in value:
        return
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"The audit {name} must be a non-empty string.")
    if len(value) > limit:
        raise InvalidInput(f"The audit {name} is longer than {limit} characters.")
    if "\x00" in value:
        raise InvalidInput(f"The audit {name} contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(f"The audit {name} is not valid Unicode text.") from error


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime.")
    return value.astimezone(dt.UTC)


def _checkpoint_every(signer: CheckpointSigner | None, every: int | None) -> int | None:
    if every is None:
        if signer is None:
            return None
        from jisr.core.settings import get_settings

        return get_settings().audit_checkpoint_every
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InvalidInput("checkpoint_every must be a positive integer.")
    return every


def _head_for_update(chain: str) -> sa.Select[AuditChain]:
    # populate_existing: a head cached by an earlier transaction of this session is refreshed.
    return (
        sa.select(AuditChain)
        .where(AuditChain.name == chain)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _lock_head(connection: sa.Connection, chain: str, now: dt.datetime) -> tuple[int, str]:
    """Lock the head of ``chain`` (creating it on first use) and return its seq and hash."""
    row = connection.execute(_SELECT_HEAD, {"chain": chain}).one_or_none()
    if row is not None:
        return int(row.head_seq), str(row.head_hash)
    values = {
        "name": chain,
        "head_seq": 0,
        "head_hash": GENESIS_HASH,
        "created_at": now,
        "updated_at": now,
    }
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        # A concurrent first append blocks here until the other commits, then does nothing.
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        connection.execute(insert(_CHAINS).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - other databases
        try:
            with connection.begin_nested():
                connection.execute(sa.insert(_CHAINS).values(values))
        except IntegrityError:
            pass
    row = connection.execute(_SELECT_HEAD, {"chain": chain}).one()
    return int(row.head_seq), str(row.head_hash)


def _checkpoint_values(
    chain: str, seq: int, digest: str, at: dt.datetime, signer: CheckpointSigner
) -> dict[str, Any]:
    kid = signer.kid
    if not kid or len(kid) > _MAX_KID:
        raise InvalidInput(f"The checkpoint signer's kid must have 1 to {_MAX_KID} characters.")
    payload = checkpoint_payload(chain=chain, seq=seq, hash=digest, iat=int(at.timestamp()))
    return {
        "chain": chain,
        "seq": seq,
        "hash": digest,
        "created_at": at,
        "kid": kid,
        "signature": signer.sign(payload),
    }


def _signed_checkpoint(
    chain: str, seq: int, digest: str, at: dt.datetime, signer: CheckpointSigner
) -> AuditCheckpoint:
    return AuditCheckpoint(**_checkpoint_values(chain, seq, digest, at, signer))


# --- verifying ---------------------------------------------------------------------------


def verify_chain(
    session: Session, chain: str, *, verifier: CheckpointVerifier | None = None
) -> ChainReport:
    """Check every record and checkpoint of ``chain``; see the module docstring."""
    head = _head(session, chain)
    if head is None and not _has_rows(session, chain):
        raise NotFound(f"There is no audit chain named {chain!r}.")
    return verify_rows(
        chain,
        _record_rows(session, chain),
        head=head,
        checkpoints=_checkpoint_rows(session, chain),
        verifier=verifier,
    )


def verify_all(
    session: Session, *, verifier: CheckpointVerifier | None = None
) -> list[ChainReport]:
    """``verify_chain`` for every chain in the database (also those whose head row is gone)."""
    names: set[str] = set(session.scalars(sa.select(AuditChain.name)))
    names.update(session.scalars(sa.select(AuditRecord.chain).distinct()))
    names.update(session.scalars(sa.select(AuditCheckpoint.chain).distinct()))
    return [verify_chain(session, name, verifier=verifier) for name in sorted(names)]


def export_chain(session: Session, chain: str) -> Iterator[dict[str, Any]]:
    """The chain as JSON-ready dicts: its head, then checkpoints, then records, in seq order.

    Each dict has a ``type`` (``head``, ``checkpoint``, ``record``); a record's ``data`` is its
    exact stored text (the bytes hashed). Write one per line to archive the chain.
    """
    head = _head(session, chain)
    if head is None and not _has_rows(session, chain):
        raise NotFound(f"There is no audit chain named {chain!r}.")
    return _export(session, chain, head)


def _export(session: Session, chain: str, head: HeadRow | None) -> Iterator[dict[str, Any]]:
    yield {
        "type": "head",
        "chain": chain,
        "head_seq": head.seq if head else None,
        "head_hash": head.hash if head else None,
    }
    for cp in _checkpoint_rows(session, chain):
        yield {"type": "checkpoint", "chain": chain, **cp._asdict()}
    for row in _record_rows(session, chain):
        yield {"type": "record", **row._asdict()}


def verify_exported(
    records: Iterable[Mapping[str, Any]],
    checkpoints: Iterable[Mapping[str, Any]] = (),
    *,
    head: Mapping[str, Any] | None = None,
    verifier: CheckpointVerifier | None = None,
    after: tuple[int, str] | None = None,
) -> ChainReport:
    """Verify an archive made by ``export_chain``, with no database.

    ``records`` may be the whole export: its ``head`` and ``checkpoint`` items (which come
    before the records) are taken from it. Records must come in seq order, as exported.
    For a period (a contiguous part of the chain), ``after`` is the seq and hash of the record
    before its first (the link), and ``head`` names its last record.
    """
    items = iter(records)
    cps = [_checkpoint_from(item) for item in checkpoints]
    first: Mapping[str, Any] | None = None
    for item in items:
        kind = item.get("type", "record")
        if kind == "head":
            head = item
        elif kind == "checkpoint":
            cps.append(_checkpoint_from(item))
        elif kind == "record":
            first = item
            break
        else:
            raise InvalidInput(f"Unknown item type {kind!r} in the audit export.")
    if head is not None:
        chain = head.get("chain")
    elif first is not None:
        chain = first.get("chain")
    else:
        raise InvalidInput("The audit export holds neither a head nor a record.")
    if not isinstance(chain, str):
        raise InvalidInput("The audit export does not name its chain.")
    head_row = None
    if head is not None and head.get("head_seq") is not None:
        head_row = HeadRow(_field(head, "head_seq", int), _field(head, "head_hash", str))

    def rows() -> Iterator[RecordRow]:
        if first is not None:
            yield _record_from(first)
        for item in items:
            if item.get("type", "record") != "record":
                raise InvalidInput("Checkpoints and the head must come before the records.")
            yield _record_from(item)

    start = HeadRow(*after) if after is not None else None
    return verify_rows(
        chain, rows(), head=head_row, checkpoints=cps, verifier=verifier, after=start
    )


def _head(session: Session, chain: str) -> HeadRow | None:
    row = session.execute(
        sa.select(AuditChain.head_seq, AuditChain.head_hash).where(AuditChain.name == chain)
    ).one_or_none()
    return HeadRow(row.head_seq, row.head_hash) if row is not None else None


def _has_rows(session: Session, chain: str) -> bool:
    for model in (AuditRecord, AuditCheckpoint):
        found = session.scalar(sa.select(model.id).where(model.chain == chain).limit(1))
        if found is not None:
            return True
    return False


def _record_rows(session: Session, chain: str) -> Iterator[RecordRow]:
    r = AuditRecord
    stmt = (
        sa.select(
            r.id,
            r.chain,
            r.seq,
            r.created_at,
            r.event,
            r.actor,
            r.subject,
            r.data,
            r.prev_hash,
            r.hash,
        )
        .where(r.chain == chain)
        .order_by(r.seq)
        .execution_options(yield_per=BATCH_SIZE)
    )
    for row in session.execute(stmt):
        yield RecordRow(
            row.id,
            row.chain,
            row.seq,
            format_timestamp(row.created_at),
            row.event,
            row.actor,
            row.subject,
            row.data,
            row.prev_hash,
            row.hash,
        )


def _checkpoint_rows(session: Session, chain: str) -> list[CheckpointRow]:
    c = AuditCheckpoint
    stmt = (
        sa.select(c.id, c.seq, c.hash, c.created_at, c.kid, c.signature)
        .where(c.chain == chain)
        .order_by(c.seq)
    )
    return [
        CheckpointRow(
            row.id, row.seq, row.hash, format_timestamp(row.created_at), row.kid, row.signature
        )
        for row in session.execute(stmt)
    ]


def _field(item: Mapping[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    value = item.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"An audit export item lacks a valid {name!r}: {dict(item)!r:.200}")
    return value


def _record_from(item: Mapping[str, Any]) -> RecordRow:
    return RecordRow(
        _field(item, "id", int, optional=True),
        _field(item, "chain", str),
        _field(item, "seq", int),
        _field(item, "created_at", str),
        _field(item, "event", str),
        _field(item, "actor", str, optional=True),
        _field(item, "subject", str, optional=True),
        _field(item, "data", str),
        _field(item, "prev_hash", str),
        _field(item, "hash", str),
    )


def _checkpoint_from(item: Mapping[str, Any]) -> CheckpointRow:
    return CheckpointRow(
        _field(item, "id", int, optional=True),
        _field(item, "seq", int),
        _field(item, "hash", str),
        _field(item, "created_at", str),
        _field(item, "kid", str),
        _field(item, "signature", str),
    )
