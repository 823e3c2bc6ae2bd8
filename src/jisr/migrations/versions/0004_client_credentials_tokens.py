"""client credentials tokens: a token may have no person

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("identity_oidc_tokens", schema=None) as batch_op:
        batch_op.alter_column("person_id", existing_type=_ID, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM identity_oidc_tokens WHERE person_id IS NULL")
    with op.batch_alter_table("identity_oidc_tokens", schema=None) as batch_op:
        batch_op.alter_column("person_id", existing_type=_ID, nullable=False)
