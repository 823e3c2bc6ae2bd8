"""Alembic environment: runs on a connection handed over by ``jisr.core.db.upgrade`` or on the
URL in the configuration. SQLite uses batch mode so ALTER works there too."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import jisr.models  # noqa: F401  (registers every block's tables on Base.metadata)
from jisr.core.db import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
