"""exchange: the replay guard's table without its unique key on (client, message_id)

The gateway's memory of the window's message ids decides a replay (loaded from this table
when the gateway starts); the unique key put one random B-tree leaf into every call's commit
(a six-call commit at 700,000 ids: 60-77 -> 46-53 us CPU per call without it;
docs/exchange.md, Seventh pass).

Revision ID: 0102
Revises: 0101
Create Date: 2026-11-29 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0102"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exchange_seen_messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_exchange_seen_messages_client_message_id"), type_="unique"
        )


def downgrade() -> None:
    # Ids seen twice (possible once the key is gone) keep their first row only.
    op.execute(
        "DELETE FROM exchange_seen_messages WHERE id NOT IN "
        "(SELECT min(id) FROM exchange_seen_messages GROUP BY client, message_id)"
    )
    with op.batch_alter_table("exchange_seen_messages", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_exchange_seen_messages_client_message_id"), ["client", "message_id"]
        )
