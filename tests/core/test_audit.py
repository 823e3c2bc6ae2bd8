"""The hash-chained audit log: appending, checkpoints, and finding every kind of tampering.

Tampering is done the way an attacker with database access would: raw SQL ``UPDATE``,
``DELETE`` and ``INSERT`` on the tables, with hashes recomputed where the attack needs them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import jisr.core.audit as audit
from jisr.core import db
from jisr.core.audit import (
    GENESIS_HASH,
    AuditChain,
    AuditCheckpoint,
    AuditEntry,
    AuditRecord,
    ChainReport,
    FindingKind,
    append,
    append_many,
    checkpoint,
    export_chain,
    format_timestamp,
    record_hash,
    verify_all,
    verify_chain,
    verify_exported,
)
from jisr.core.db import UTCDateTime
from jisr.core.errors import InvalidInput, NotFound

pytestmark = pytest.mark.db

CHAIN = "security"


class Signer:
    """A small ES256 checkpoint signer (the keystore provides the real one)."""

    def __init__(self, kid: str = "audit-test-1") -> None:
        self.kid = kid
        self.key = ECKey.generate_key("P-256")

    def sign(self, payload: bytes) -> str:
        return jws.serialize_compact({"alg": "ES256", "kid": self.kid}, payload, self.key)

    def verify(self, token: str) -> bytes:
        return jws.deserialize_compact(token, self.key, algorithms=["ES256"]).payload


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


# --- helpers -----------------------------------------------------------------------------


def make(session: Session, count: int, chain: str = CHAIN, **kwargs: Any) -> list[AuditRecord]:
    return [
        append(
            session,
            chain,
            event="login",
            data={"n": n, "who": "أمينة"},
            actor=f"user-{n}",
            subject="MA123",
            **kwargs,
        )
        for n in range(1, count + 1)
    ]


def sql(session: Session, statement: str, **params: Any) -> None:
    session.execute(sa.text(statement), {"chain": CHAIN, **params})


def rehash(session: Session, seq: int, chain: str = CHAIN) -> str:
    """Recompute the stored hash of record ``seq`` from its stored fields."""
    r = session.execute(
        sa.select(AuditRecord.__table__).where(AuditRecord.chain == chain, AuditRecord.seq == seq)
    ).one()
    digest = record_hash(
        chain=r.chain,
        seq=r.seq,
        created_at=format_timestamp(r.created_at),
        event=r.event,
        actor=r.actor,
        subject=r.subject,
        data=r.data,
        prev_hash=r.prev_hash,
    )
    sql(
        session,
        "UPDATE audit_records SET hash = :h WHERE chain = :chain AND seq = :s",
        h=digest,
        s=seq,
    )
    return digest


def relink_from(session: Session, seq: int, last: int, prev: str | None = None) -> None:
    """Rewrite the chain from ``seq`` on: every link and hash recomputed, head moved."""
    if prev is None:
        prev = (
            session.scalar(
                sa.text("SELECT hash FROM audit_records WHERE chain = :chain AND seq = :s"),
                {"chain": CHAIN, "s": seq - 1},
            )
            if seq > 1
            else GENESIS_HASH
        )
    assert prev is not None
    for s in range(seq, last + 1):
        sql(
            session,
            "UPDATE audit_records SET prev_hash = :p WHERE chain = :chain AND seq = :s",
            p=prev,
            s=s,
        )
        prev = rehash(session, s)
    sql(session, "UPDATE audit_chains SET head_hash = :h WHERE name = :chain", h=prev)


def renumber(session: Session, first: int, delta: int) -> None:
    """Shift the seq of records ``first``… by ``delta`` (two steps: seq is unique)."""
    sql(session, "UPDATE audit_records SET seq = -seq WHERE chain = :chain AND seq >= :s", s=first)
    sql(
        session,
        "UPDATE audit_records SET seq = -seq + :d WHERE chain = :chain AND seq < 0",
        d=delta,
    )


def set_seq(session: Session, old: int, new: int) -> None:
    sql(
        session, "UPDATE audit_records SET seq = :n WHERE chain = :chain AND seq = :o", n=new, o=old
    )


def forge(session: Session, *, seq: int, prev_hash: str, event: str = "forged") -> str:
    """Insert a well-formed record (its own hash right) at ``seq`` after ``prev_hash``."""
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    data = '{"forged":true}'
    digest = record_hash(
        chain=CHAIN,
        seq=seq,
        created_at=format_timestamp(at),
        event=event,
        actor=None,
        subject=None,
        data=data,
        prev_hash=prev_hash,
    )
    session.execute(
        sa.text(
            "INSERT INTO audit_records (chain, seq, created_at, event, actor, subject, data, "
            "prev_hash, hash) VALUES (:chain, :seq, :at, :event, NULL, NULL, :data, :prev, :h)"
        ).bindparams(sa.bindparam("at", type_=UTCDateTime())),
        {
            "chain": CHAIN,
            "seq": seq,
            "at": at,
            "event": event,
            "data": data,
            "prev": prev_hash,
            "h": digest,
        },
    )
    return digest


def kinds(report: ChainReport) -> list[tuple[str, int]]:
    return [(str(f.kind), f.seq) for f in report.findings]


def hash_of(records: list[AuditRecord], seq: int) -> str:
    return records[seq - 1].hash


# --- appending ---------------------------------------------------------------------------


class TestAppend:
    def test_records_link_from_genesis(self, session: Session) -> None:
        records = make(session, 3)
        assert [r.seq for r in records] == [1, 2, 3]
        assert records[0].prev_hash == GENESIS_HASH
        assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
        head = session.get(AuditChain, CHAIN)
        assert head is not None and (head.head_seq, head.head_hash) == (3, records[-1].hash)
        first = records[0]
        assert first.id is not None
        assert first.hash == record_hash(
            chain=CHAIN,
            seq=1,
            created_at=format_timestamp(first.created_at),
            event="login",
            actor="user-1",
            subject="MA123",
            data=first.data,
            prev_hash=GENESIS_HASH,
        )

    def test_data_is_stored_as_canonical_json(self, session: Session) -> None:
        record = append(session, CHAIN, event="e", data={"b": [1, 2.5], "a": "é", "c": None})
        assert record.data == '{"a":"é","b":[1,2.5],"c":null}'
        session.expire_all()
        assert session.get(AuditRecord, record.id).data == record.data  # type: ignore[union-attr]

    def test_at_is_kept_in_utc_with_microseconds(self, session: Session) -> None:
        at = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        record = append(session, CHAIN, event="e", data={}, at=at)
        assert format_timestamp(record.created_at) == "2026-05-06T06:08:09.123456Z"
        assert verify_chain(session, CHAIN).ok

    def test_fields_cannot_bleed_into_each_other(self) -> None:
        base: dict[str, Any] = dict(
            chain="c",
            seq=1,
            created_at="t",
            event="ab",
            actor="c",
            subject=None,
            data="{}",
            prev_hash=GENESIS_HASH,
        )
        assert record_hash(**base) != record_hash(**{**base, "event": "a", "actor": "bc"})
        assert record_hash(**base) != record_hash(**{**base, "actor": None, "subject": "c"})
        assert record_hash(**{**base, "actor": ""}) != record_hash(**{**base, "actor": None})

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"event": ""},
            {"event": "x" * 101},
            {"actor": "a\x00b"},
            {"subject": "\ud800"},
            {"data": {"x": float("nan")}},
            {"data": {"x": object()}},
            {"data": {"x": "\udfff"}},
            {"data": ["not", "a", "mapping"]},
            {"at": dt.datetime(2026, 1, 1)},
        ],
    )
    def test_bad_input_is_refused_and_writes_nothing(
        self, session: Session, kwargs: dict[str, Any]
    ) -> None:
        call: dict[str, Any] = {"event": "e", "data": {}, **kwargs}
        with pytest.raises(InvalidInput):
            append(session, CHAIN, **call)
        assert session.get(AuditChain, CHAIN) is None

    def test_bad_chain_name_is_refused(self, session: Session) -> None:
        with pytest.raises(InvalidInput):
            append(session, "c" * 101, event="e", data={})

    def test_append_many_writes_one_contiguous_batch(self, session: Session) -> None:
        make(session, 2)
        batch = append_many(session, CHAIN, [AuditEntry("m", {"i": i}) for i in range(5)])
        assert [r.seq for r in batch] == [3, 4, 5, 6, 7]
        assert append_many(session, CHAIN, []) == []
        assert session.get(AuditChain, CHAIN).head_seq == 7  # type: ignore[union-attr]
        assert verify_chain(session, CHAIN).ok

    def test_a_bad_entry_refuses_the_whole_batch(self, session: Session) -> None:
        with pytest.raises(InvalidInput):
            append_many(session, CHAIN, [AuditEntry("ok"), AuditEntry("")])
        assert session.get(AuditChain, CHAIN) is None


# --- checkpoints -------------------------------------------------------------------------


class TestCheckpoints:
    def test_written_every_n_records(self, session: Session, signer: Signer) -> None:
        make(session, 7, signer=signer, checkpoint_every=3)
        append_many(session, CHAIN, [AuditEntry("b")] * 6, signer=signer, checkpoint_every=3)
        cps = session.scalars(
            sa.select(AuditCheckpoint)
            .where(AuditCheckpoint.chain == CHAIN)
            .order_by(AuditCheckpoint.seq)
        ).all()
        assert [c.seq for c in cps] == [3, 6, 9, 12]
        claims = json.loads(signer.verify(cps[0].signature))
        assert claims["chain"] == CHAIN and claims["seq"] == 3 and claims["hash"] == cps[0].hash
        assert cps[0].kid == signer.kid
        report = verify_chain(session, CHAIN, verifier=signer.verify)
        assert report.ok and report.checkpoints_checked == 4 and report.records_checked == 13

    def test_checkpoint_every_defaults_to_the_setting(
        self, session: Session, signer: Signer
    ) -> None:
        make(session, 3, signer=signer)  # audit_checkpoint_every is 1000
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditCheckpoint)
                .where(AuditCheckpoint.chain == CHAIN)
            )
            == 0
        )
        with pytest.raises(InvalidInput):
            make(session, 1, signer=signer, checkpoint_every=0)

    def test_checkpoint_signs_the_head_once(self, session: Session, signer: Signer) -> None:
        records = make(session, 4)
        first = checkpoint(session, CHAIN, signer=signer)
        assert (first.seq, first.hash) == (4, records[-1].hash)
        assert checkpoint(session, CHAIN, signer=signer).id == first.id
        with pytest.raises(NotFound):
            checkpoint(session, "nowhere", signer=signer)

    def test_forged_signature_is_invalid(self, session: Session, signer: Signer) -> None:
        make(session, 6, signer=signer, checkpoint_every=3)
        forger = Signer(kid=signer.kid)  # same kid, another key
        token = session.scalar(
            sa.select(AuditCheckpoint.signature).where(
                AuditCheckpoint.chain == CHAIN, AuditCheckpoint.seq == 6
            )
        )
        assert token is not None
        payload = signer.verify(token)
        sql(
            session,
            "UPDATE audit_checkpoints SET signature = :t WHERE chain = :chain AND seq = 6",
            t=forger.sign(payload),
        )
        report = verify_chain(session, CHAIN, verifier=signer.verify)
        assert kinds(report) == [("checkpoint-invalid", 6)]
        assert "does not verify" in report.findings[0].message
        assert verify_chain(session, CHAIN).ok  # no verifier: signatures are not checked

    def test_edited_checkpoint_row_is_invalid(self, session: Session, signer: Signer) -> None:
        make(session, 3, signer=signer, checkpoint_every=3)
        sql(session, "UPDATE audit_checkpoints SET hash = :h WHERE chain = :chain", h="f" * 64)
        for verifier in (None, signer.verify):
            report = verify_chain(session, CHAIN, verifier=verifier)
            assert kinds(report) == [("checkpoint-invalid", 3)]
            assert "disagrees with what was signed (hash)" in report.findings[0].message
        sql(session, "UPDATE audit_checkpoints SET signature = 'garbage' WHERE chain = :chain")
        assert kinds(verify_chain(session, CHAIN)) == [("checkpoint-invalid", 3)]

    def test_rewritten_chain_is_caught_by_checkpoints(
        self, session: Session, signer: Signer
    ) -> None:
        make(session, 9, signer=signer, checkpoint_every=4)
        sql(
            session,
            "UPDATE audit_records SET data = :d WHERE chain = :chain AND seq = 3",
            d='{"n":999}',
        )
        relink_from(session, 3, 9)  # every later hash and link recomputed, head moved
        for verifier in (None, signer.verify):
            report = verify_chain(session, CHAIN, verifier=verifier)
            assert kinds(report) == [("checkpoint-mismatch", 4), ("checkpoint-mismatch", 8)]
            assert "rewritten at or before record 4" in report.findings[0].message

    def test_truncated_tail_is_caught_by_head_and_checkpoint(
        self, session: Session, signer: Signer
    ) -> None:
        make(session, 6, signer=signer, checkpoint_every=3)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq = 6")
        report = verify_chain(session, CHAIN, verifier=signer.verify)
        assert kinds(report) == [("head-mismatch", 6), ("checkpoint-mismatch", 6)]
        assert report.findings[0].record_id is None
        assert "record 6 of chain 'security' was deleted from the end" in (
            report.findings[0].message
        )
        # Even with the head moved back, the signed checkpoint remembers record 6.
        sql(
            session,
            "UPDATE audit_chains SET head_seq = 5, head_hash = (SELECT hash FROM "
            "audit_records WHERE chain = :chain AND seq = 5) WHERE name = :chain",
        )
        assert kinds(verify_chain(session, CHAIN)) == [("checkpoint-mismatch", 6)]


# --- tampering ---------------------------------------------------------------------------


class TestTampering:
    def test_intact_chain_verifies(self, session: Session) -> None:
        make(session, 5)
        report = verify_chain(session, CHAIN)
        assert report.ok and report.findings == [] and report.records_checked == 5
        assert report.chain == CHAIN and not report.truncated
        with pytest.raises(NotFound):
            verify_chain(session, "nowhere")

    @pytest.mark.parametrize(
        "column,value",
        [
            ("data", '{"n":5,"who":"someone else"}'),
            ("event", "logout"),
            ("actor", None),
            ("subject", "MA999"),
            ("prev_hash", "a" * 64),
        ],
    )
    def test_changed_field(self, session: Session, column: str, value: Any) -> None:
        records = make(session, 8)
        sql(
            session,
            f"UPDATE audit_records SET {column} = :v WHERE chain = :chain AND seq = 5",
            v=value,
        )
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("changed", 5)]
        finding = report.findings[0]
        assert finding.kind is FindingKind.CHANGED and finding.record_id == records[4].id
        assert finding.message.startswith("record 5 of chain 'security' was changed: ")

    def test_changed_timestamp(self, session: Session) -> None:
        make(session, 3)
        session.execute(
            sa.text(
                "UPDATE audit_records SET created_at = :v WHERE chain = 'security' AND seq = 2"
            ).bindparams(sa.bindparam("v", type_=UTCDateTime())),
            {"v": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)},
        )
        assert kinds(verify_chain(session, CHAIN)) == [("changed", 2)]

    def test_changed_and_own_hash_recomputed(self, session: Session) -> None:
        records = make(session, 8)
        sql(session, "UPDATE audit_records SET actor = 'mallory' WHERE chain = :chain AND seq = 5")
        rehash(session, 5)  # record 5 is self-consistent again; record 6's link breaks
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("changed", 5)]
        assert report.findings[0].record_id == records[4].id
        assert "hash recomputed: record 6 links to hash" in report.findings[0].message

    def test_changed_last_record_with_hash_recomputed(self, session: Session) -> None:
        make(session, 4)
        sql(session, "UPDATE audit_records SET actor = 'mallory' WHERE chain = :chain AND seq = 4")
        rehash(session, 4)
        assert kinds(verify_chain(session, CHAIN)) == [("head-mismatch", 4)]

    def test_changed_first_record_with_hash_recomputed(self, session: Session) -> None:
        make(session, 3)
        sql(session, "UPDATE audit_records SET event = 'x' WHERE chain = :chain AND seq = 1")
        rehash(session, 1)
        assert kinds(verify_chain(session, CHAIN)) == [("changed", 1)]

    def test_deleted_record(self, session: Session) -> None:
        make(session, 8)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq = 5")
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("deleted", 5)]
        assert report.findings[0].record_id is None
        assert report.findings[0].message.startswith("record 5 of chain 'security' was deleted")

    def test_deleted_records(self, session: Session) -> None:
        make(session, 8)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq IN (4, 5, 6)")
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("deleted", 4)]
        assert "records 4–6 of chain 'security' were deleted" in report.findings[0].message

    def test_deleted_first_record(self, session: Session) -> None:
        make(session, 3)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq = 1")
        assert kinds(verify_chain(session, CHAIN)) == [("deleted", 1)]

    def test_deleted_and_relinked(self, session: Session) -> None:
        records = make(session, 6)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq = 3")
        relink_from(session, 4, 6, prev=hash_of(records, 2))
        assert kinds(verify_chain(session, CHAIN)) == [("deleted", 3)]

    def test_deleted_and_renumbered(self, session: Session) -> None:
        make(session, 8)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq = 5")
        renumber(session, 6, -1)
        sql(session, "UPDATE audit_chains SET head_seq = 7 WHERE name = :chain")
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("deleted", 5)]
        assert "renumbered" in report.findings[0].message

    def test_deleted_last_record(self, session: Session) -> None:
        make(session, 5)
        sql(session, "DELETE FROM audit_records WHERE chain = :chain AND seq = 5")
        assert kinds(verify_chain(session, CHAIN)) == [("head-mismatch", 5)]

    def test_inserted_in_the_middle_with_renumbered_seqs(self, session: Session) -> None:
        records = make(session, 8)
        renumber(session, 6, +1)
        forge(session, seq=6, prev_hash=hash_of(records, 5))
        sql(session, "UPDATE audit_chains SET head_seq = 9 WHERE name = :chain")
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("inserted", 6)]
        assert report.findings[0].message.startswith(
            "record 6 of chain 'security' was inserted: record 7 links past it to record 5"
        )
        assert report.findings[0].record_id not in {r.id for r in records}

    def test_inserted_with_a_made_up_link(self, session: Session) -> None:
        make(session, 5)
        renumber(session, 3, +2)
        forge(session, seq=3, prev_hash="b" * 64)
        forge(session, seq=4, prev_hash=rehash(session, 3), event="forged-too")
        sql(session, "UPDATE audit_chains SET head_seq = 7 WHERE name = :chain")
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("inserted", 3)]
        assert "records 3–4 of chain 'security' were inserted" in report.findings[0].message

    def test_appended_around_the_api(self, session: Session) -> None:
        records = make(session, 4)
        forge(session, seq=5, prev_hash=hash_of(records, 4))
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("head-mismatch", 5)]
        assert "appended around the API" in report.findings[0].message

    def test_swapped_neighbours(self, session: Session) -> None:
        make(session, 6)
        set_seq(session, 3, -1)
        set_seq(session, 4, 3)
        set_seq(session, -1, 4)
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("reordered", 3), ("reordered", 4)]
        assert "hashes correctly only as seq 4" in report.findings[0].message

    def test_swapped_distant_records(self, session: Session) -> None:
        make(session, 9)
        set_seq(session, 2, -1)
        set_seq(session, 7, 2)
        set_seq(session, -1, 7)
        assert kinds(verify_chain(session, CHAIN)) == [("reordered", 2), ("reordered", 7)]

    def test_swapped_and_rehashed(self, session: Session) -> None:
        make(session, 6)
        set_seq(session, 2, -1)
        set_seq(session, 4, 2)
        set_seq(session, -1, 4)
        rehash(session, 2)
        rehash(session, 4)
        report = verify_chain(session, CHAIN)
        assert report.findings[0].kind == "reordered" and report.findings[0].seq == 2
        assert ("reordered", 4) in kinds(report)

    def test_seq_edited(self, session: Session) -> None:
        make(session, 4)
        set_seq(session, 4, 10)
        report = verify_chain(session, CHAIN)
        assert kinds(report) == [("changed", 10), ("head-mismatch", 10)]
        assert "seq was edited from 4 to 10" in report.findings[0].message

    def test_head_row_deleted(self, session: Session) -> None:
        make(session, 2)
        sql(session, "DELETE FROM audit_chains WHERE name = :chain")
        assert kinds(verify_chain(session, CHAIN)) == [("head-mismatch", 2)]

    def test_verify_all_reports_every_chain(self, session: Session, unique: str) -> None:
        good, bad = f"good-{unique}", f"bad-{unique}"
        make(session, 2, chain=good)
        make(session, 2, chain=bad)
        session.execute(sa.text("DELETE FROM audit_chains WHERE name = :n"), {"n": bad})
        reports = {r.chain: r for r in verify_all(session)}
        assert reports[good].ok
        assert [f.kind for f in reports[bad].findings] == ["head-mismatch"]
        assert json.loads(json.dumps(reports[bad].to_dict()))["ok"] is False


# --- export ------------------------------------------------------------------------------


class TestExport:
    def test_round_trip_through_json(self, session: Session, signer: Signer) -> None:
        make(session, 7, signer=signer, checkpoint_every=3)
        lines = [json.dumps(item, ensure_ascii=False) for item in export_chain(session, CHAIN)]
        items = [json.loads(line) for line in lines]
        assert [i["type"] for i in items] == ["head"] + ["checkpoint"] * 2 + ["record"] * 7
        report = verify_exported(items, verifier=signer.verify)
        assert report.ok and report.records_checked == 7 and report.checkpoints_checked == 2
        records = [i for i in items if i["type"] == "record"]
        cps = [i for i in items if i["type"] == "checkpoint"]
        assert verify_exported(records, cps, head=items[0], verifier=signer.verify).ok

    def test_tampered_export_is_detected(self, session: Session, signer: Signer) -> None:
        make(session, 7, signer=signer, checkpoint_every=3)
        items = list(export_chain(session, CHAIN))
        items[5]["data"] = items[5]["data"].replace('"n":3', '"n":33')  # record 3
        assert kinds(verify_exported(items)) == [("changed", 3)]
        del items[5]
        assert kinds(verify_exported(items)) == [("deleted", 3), ("checkpoint-mismatch", 3)]
        items[-1]["chain"] = "elsewhere"
        assert ("changed", 7) in kinds(verify_exported(items))

    def test_a_period_verifies_from_its_link(self, session: Session, signer: Signer) -> None:
        """Records 4–7 alone, starting after record 3 (the link) and ending at record 7."""
        make(session, 7, signer=signer, checkpoint_every=3)
        items = list(export_chain(session, CHAIN))
        records = [i for i in items if i["type"] == "record"]
        link = (3, records[2]["hash"])
        period = records[3:]
        checkpoints = [i for i in items if i["type"] == "checkpoint" and i["seq"] >= 4]
        head = {"type": "head", "chain": CHAIN, "head_seq": 7, "head_hash": records[6]["hash"]}
        report = verify_exported(period, checkpoints, head=head, verifier=signer.verify, after=link)
        assert report.ok and report.records_checked == 4 and report.checkpoints_checked == 1
        assert kinds(verify_exported(period, head=head)) == [("deleted", 1)]  # from genesis
        assert kinds(verify_exported(period, head=head, after=(3, "f" * 64))) == [("changed", 4)]
        assert kinds(verify_exported(period[1:], head=head, after=link)) == [("deleted", 4)]

    def test_malformed_export_is_refused(self, session: Session) -> None:
        make(session, 2)
        items = list(export_chain(session, CHAIN))
        del items[1]["hash"]
        with pytest.raises(InvalidInput):
            verify_exported(items)
        with pytest.raises(InvalidInput):
            verify_exported([])
        with pytest.raises(NotFound):
            export_chain(session, "nowhere")


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_appends_do_not_fork(engine: Engine, unique: str) -> None:
    chain = f"concurrent-{unique}"
    factory = db.make_sessionmaker(engine)
    threads, per_thread = 6, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with db.session_scope(factory) as s:
                    if i % 5 == 4:
                        append_many(s, chain, [AuditEntry("batch", {"t": t, "i": i})] * 3)
                    else:
                        append(s, chain, event="call", data={"t": t, "i": i})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors, errors
        expected = threads * (per_thread + 2 * (per_thread // 5))
        with db.session_scope(factory) as s:
            seqs = s.scalars(
                sa.select(AuditRecord.seq)
                .where(AuditRecord.chain == chain)
                .order_by(AuditRecord.seq)
            ).all()
            assert seqs == list(range(1, expected + 1))
            report = verify_chain(s, chain)
            assert report.ok and report.records_checked == expected
    finally:
        with engine.begin() as connection:
            for table, column in (
                ("audit_records", "chain"),
                ("audit_checkpoints", "chain"),
                ("audit_chains", "name"),
            ):
                connection.execute(
                    sa.text(f"DELETE FROM {table} WHERE {column} = :c"), {"c": chain}
                )


# --- properties --------------------------------------------------------------------------

_text = st.characters(codec="utf-8", exclude_characters="\x00")
_names = st.text(_text, min_size=1, max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_zones = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))]
)
_entries = st.lists(
    st.builds(
        AuditEntry,
        event=_names,
        data=st.dictionaries(st.text(max_size=6), _json, max_size=4),
        actor=st.none() | _names,
        subject=st.none() | _names,
        at=st.none()
        | st.datetimes(
            min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=_zones
        ),
    ),
    min_size=1,
    max_size=6,
)
FIELDS = ["chain", "seq", "created_at", "event", "actor", "subject", "data", "prev_hash", "hash"]


def _one_char_changed(value: str | None, position: int, replacement: str) -> str:
    if not value:
        return replacement
    index = position % len(value)
    new = replacement if replacement != value[index] else ("a" if value[index] != "a" else "b")
    return value[:index] + new + value[index + 1 :]


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entries=_entries,
    target=st.integers(0, 5),
    field=st.sampled_from(FIELDS),
    position=st.integers(0, 200),
    replacement=_text,
    bit=st.integers(0, 30),
    micros=st.integers(1, 10**6),
)
def test_any_appends_verify_and_any_single_change_is_detected(
    session: Session,
    entries: list[AuditEntry],
    target: int,
    field: str,
    position: int,
    replacement: str,
    bit: int,
    micros: int,
) -> None:
    chain = f"p-{uuid.uuid4().hex[:8]}"
    savepoint = session.begin_nested()
    try:
        append(
            session,
            chain,
            event=entries[0].event,
            data=entries[0].data,
            actor=entries[0].actor,
            subject=entries[0].subject,
            at=entries[0].at,
        )
        append_many(session, chain, entries[1:])
        assert verify_chain(session, chain).ok
        exported = list(export_chain(session, chain))
        assert verify_exported(json.loads(json.dumps(exported))).ok

        seq = target % len(entries) + 1
        row = next(i for i in exported if i["type"] == "record" and i["seq"] == seq)
        # The same one-character change, to the archive and to the table.
        changed: Any
        if field == "seq":
            changed = seq ^ (1 << bit)
            if changed <= len(entries):
                changed = seq + len(entries)  # keep seq unique
        elif field == "created_at":
            changed = _one_char_changed(row["created_at"], position, replacement)
        else:
            changed = _one_char_changed(row[field], position, replacement)
        archive = [dict(i) for i in exported]
        for item in archive:
            if item["type"] == "record" and item["seq"] == seq:
                item[field] = changed
        assert not verify_exported(archive).ok, (field, changed)

        value: Any = changed
        statement = sa.text(f"UPDATE audit_records SET {field} = :v WHERE id = :id")
        if field == "created_at":  # the table holds a timestamp: move it by some microseconds
            value = dt.datetime.fromisoformat(row["created_at"]) + dt.timedelta(microseconds=micros)
            statement = statement.bindparams(sa.bindparam("v", type_=UTCDateTime()))
        session.execute(statement, {"v": value, "id": row["id"]})
        report = verify_chain(session, chain)
        assert not report.ok, (field, value)
    finally:
        savepoint.rollback()


def test_exports_are_reexported() -> None:
    assert set(audit.__all__) <= set(dir(audit))
    assert "verify_chain" in audit.__all__ and "CheckpointSigner" in audit.__all__


def test_the_sqlite_fast_path_stores_what_core_stores(session: Session, signer: Signer) -> None:
    """``write_many`` on a bare connection runs the driver's cursor on SQLite; the rows it
    stores (timestamps included) have the form of those written through Core and verify."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the fast path is SQLite's")
    chain = f"fast-{uuid.uuid4().hex[:8]}"
    append_many(session, chain, [AuditEntry("core", {"n": 1}), AuditEntry("core", {"n": 2})])
    audit.write_many(session.connection(), chain, [AuditEntry("fast", {"n": 3}, actor="a")])
    append(session, chain, event="one", data={"n": 4}, signer=signer, checkpoint_every=2)
    stamps = [
        row[0]
        for row in session.execute(
            sa.text("SELECT created_at FROM audit_records WHERE chain = :c ORDER BY seq"),
            {"c": chain},
        )
    ]
    assert len(stamps) == 4
    assert all(len(stamp) == len(stamps[0]) and "+" not in stamp for stamp in stamps)
    report = verify_chain(session, chain)
    assert report.ok, report


def test_the_driver_connection_path_stores_what_core_stores(
    session: Session, signer: Signer
) -> None:
    """``write_many`` on SQLite's own connection (the gateways' message log): a new chain's
    head, records at ``now`` and at their own time, a checkpoint; the rows read back as
    those Core writes, and the chain verifies with its checkpoint."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the driver's connection is SQLite's")
    chain = f"raw-{uuid.uuid4().hex[:8]}"
    raw = session.connection().connection.driver_connection
    earlier = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    entries = [
        AuditEntry("raw", {"n": 1, "é": "ض"}, actor="a"),
        AuditEntry("raw", {"n": 2}, subject="s", at=earlier),
    ]
    assert audit.write_many(raw, chain, entries, signer=signer, checkpoint_every=2) == 2
    assert audit.write_many(raw, chain, []) == 2
    append_many(session, chain, [AuditEntry("core", {"n": 3})])
    session.expire_all()
    records = session.scalars(
        sa.select(AuditRecord).where(AuditRecord.chain == chain).order_by(AuditRecord.seq)
    ).all()
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[1].created_at == earlier
    assert records[0].data == json.dumps(
        {"n": 1, "é": "ض"}, ensure_ascii=False, separators=(",", ":")
    )
    checkpoints = session.scalars(
        sa.select(AuditCheckpoint).where(AuditCheckpoint.chain == chain)
    ).all()
    assert [c.seq for c in checkpoints] == [2]
    report = verify_chain(session, chain, verifier=signer.verify)
    assert report.ok and report.checkpoints_checked == 1, report
