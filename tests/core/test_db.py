"""The database layer: migrations, drift, timestamps, SQLite pragmas."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import jisr.models  # noqa: F401
from jisr.core import db
from jisr.core.audit.models import AuditChain


class TestMigrations:
    def test_database_is_at_head(self, engine: Engine) -> None:
        assert db.current_revisions(engine) == db.head_revisions()
        assert db.is_up_to_date(engine)

    def test_models_and_migrations_do_not_drift(self, engine: Engine) -> None:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, db.Base.metadata)
        assert diff == [], f"models differ from migrations; run `make migration`: {diff}"


class TestTimestamps:
    def test_round_trip_is_aware_utc(self, session: Session) -> None:
        moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        session.add(
            AuditChain(
                name="t", head_seq=0, head_hash="0" * 64, created_at=moment, updated_at=moment
            )
        )
        session.flush()
        session.expire_all()
        stored = session.get(AuditChain, "t")
        assert stored is not None
        assert stored.created_at == moment
        assert stored.created_at.tzinfo is not None
        assert stored.created_at.utcoffset() == dt.timedelta(0)

    def test_naive_datetime_is_refused(self, session: Session) -> None:
        naive = dt.datetime(2026, 1, 2)
        session.add(
            AuditChain(name="n", head_seq=0, head_hash="0" * 64, created_at=naive, updated_at=naive)
        )
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            session.flush()


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "sub" / "x.db").exists()
    engine.dispose()


def test_session_scope_rolls_back_on_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(RuntimeError), db.session_scope(factory) as session:
        session.add(
            AuditChain(name="x", head_seq=0, head_hash="0" * 64, created_at=now, updated_at=now)
        )
        session.flush()
        raise RuntimeError("boom")
    with db.session_scope(factory) as session:
        assert session.get(AuditChain, "x") is None
    engine.dispose()


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),  # no microseconds: still six digits
        dt.datetime(2026, 12, 31, 23, 30, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-1))),
        dt.datetime(999, 1, 1, 0, 0, 1, tzinfo=dt.UTC),
    ],
)
def test_sqlite_datetime_text_is_what_sqlalchemy_stores(moment: dt.datetime) -> None:
    dialect = sa.dialects.sqlite.dialect()
    column = AuditChain.__table__.c.created_at
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    assert db.sqlite_datetime_text(moment) == processor(moment)


def test_sqlite_datetime_text_refuses_naive_values() -> None:
    with pytest.raises(ValueError, match="naive"):
        db.sqlite_datetime_text(dt.datetime(2026, 1, 2))
