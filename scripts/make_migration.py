"""Autogenerate the next Alembic migration from the models: ``make migration m="what changed"``.

Upgrades a scratch SQLite database to the current head, compares it with the models and
writes ``src/jisr/migrations/versions/NNNN_<slug>.py`` with the next number. Read the result.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from jisr.core import db


def main() -> None:
    message = " ".join(sys.argv[1:]).strip()
    if not message:
        sys.exit('usage: make migration m="what changed"')
    versions = db.MIGRATIONS_DIR / "versions"
    numbers = [int(p.name[:4]) for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py")]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        config = db.alembic_config(url)
        config.set_main_option("file_template", f"{rev_id}_{slug}")
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
