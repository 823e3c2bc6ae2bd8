"""The fixture ladder: ``database_url`` → ``engine`` (migrated once per backend and xdist
worker) → ``session`` (inside a transaction rolled back after each test).

Every test that uses ``engine`` or ``session`` runs on SQLite and, when
``JISR_TEST_DATABASE_URL`` names a PostgreSQL server (CI does), again on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from jisr.core import db

POSTGRES_URL = os.environ.get("JISR_TEST_DATABASE_URL", "")
# portals started by tests do not load the whole assistant in the background (it may need a
# cold index build); tests/assistant/test_robustness.py turns it on where it tests it
os.environ.setdefault("JISR_ASSISTANT_WARM_AT_START", "false")


def pytest_bdd_apply_tag(tag: str, function: Callable[..., object]) -> bool:
    """The GovStack features' tags (@smoke, @unit, @method=GET…) are not our markers: every
    bdd folder ignores them."""
    return True


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def postgres_database_url(suffix: str) -> str:
    """A fresh database name on the test server, unique to this worker and ``suffix``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = make_url(POSTGRES_URL)
    name = f"{base.database or 'jisr_test'}_{worker}_{suffix}"
    rendered = base.set(database=name).render_as_string(hide_password=False)
    return rendered.replace("%7B", "{").replace("%7D", "}")  # keep a {node} placeholder


def drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session", params=_backends())
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
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
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
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


@pytest.fixture(scope="session")
def instance_factory(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Any]:
    """Makes initialised instances on the test backend (SQLite files, or PostgreSQL
    databases named per instance and node); everything is removed at the end."""
    from jisr.core.instance import Instance, init_instance

    made: list[Instance] = []

    def make(code: str = "MA", **kwargs: Any) -> Instance:
        path = tmp_path_factory.mktemp(f"instance-{code}") / code
        if database_url.startswith("postgresql"):
            suffix = uuid.uuid4().hex[:8]
            kwargs.setdefault("database_url", postgres_database_url(f"{suffix}_{{node}}"))
        instance = init_instance(path, code=code, **kwargs)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        # Nodes added after init (gateways, registers) have databases too.
        urls = [node.database_url for node in instance.nodes.values()]
        instance.close()
        for url in urls:
            if url.startswith("postgresql"):
                drop_postgres_database(url)


@pytest.fixture(scope="session")
def instance(instance_factory: Any) -> Any:
    """One initialised MA instance shared by the tests of a session (do not break it)."""
    return instance_factory("MA")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skips, saying why, where either is absent)."""
    import shutil

    executable = next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
        None,
    )
    if executable is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
