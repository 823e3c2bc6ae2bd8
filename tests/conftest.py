"""The fixture ladder: ``database_url`` → ``engine`` (migrated once per backend and xdist
worker) → ``session`` (inside a transaction rolled back after each test).

Every test that uses ``engine`` or ``session`` runs on SQLite and, when
``JISR_TEST_DATABASE_URL`` names a PostgreSQL server (CI does), again on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from jisr.core import db

POSTGRES_URL = os.environ.get("JISR_TEST_DATABASE_URL", "")


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def postgres_database_url(suffix: str) -> str:
    """A fresh database name on the test server, unique to this worker and ``suffix``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = make_url(POSTGRES_URL)
    name = f"{base.database or 'jisr_test'}_{worker}_{suffix}"
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session", params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    url = postgres_database_url("shared")
    drop_postgres_database(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    db.ensure_database(database_url)
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back when the test ends (services may commit)."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        if transaction.is_active:
            transaction.rollback()
        connection.close()


@pytest.fixture
def unique() -> str:
    """A short unique token for names that must not collide between tests."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def shared_specs() -> Path:
    """``../shared/specs``; tests that need it skip with a reason where it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "specs"
    if not path.is_dir():
        pytest.skip(f"the shared specs folder {path} is absent")
    return path
