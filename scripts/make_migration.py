"""Autogenerate the next Alembic migration from the models.

    make migration m="what changed" [branch=exchange]

Upgrades a scratch SQLite database to every head, compares it with the models and writes
``src/jisr/migrations/versions/NNNN_<slug>.py`` with the next number, on the given branch
(a block's branch label; a new label starts a new branch on the core revision 0001). Without
``branch`` there must be a single head. Read the result before committing it.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from jisr.core import db


def main() -> None:
    args = sys.argv[1:]
    branch = None
    if args and args[0].startswith("--branch="):
        branch = args.pop(0).split("=", 1)[1] or None
    message = " ".join(args).strip()
    if not message:
        sys.exit('usage: make migration m="what changed" [branch=LABEL]')
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
        script = ScriptDirectory.from_config(config)
        kwargs: dict[str, object] = {}
        if branch:
            known = {label for rev in script.walk_revisions() for label in rev.branch_labels}
            if branch in known:
                kwargs["head"] = f"{branch}@head"
            else:
                kwargs["head"] = "0001"
                kwargs["branch_label"] = branch
                kwargs["splice"] = True  # 0001 is not a head once other branches grew on it
        command.revision(
            config,
            message=message,
            autogenerate=True,
            rev_id=rev_id,
            **kwargs,  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    main()
