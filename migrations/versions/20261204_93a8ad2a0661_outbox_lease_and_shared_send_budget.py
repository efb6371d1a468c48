"""outbox_message.claimed_by/lease_until and send_budget: several instances on one PostgreSQL (issue 14)

A row being sent names the instance that claimed it and until when; rows left ``sending`` by
an older version have no claimer, and the next start puts them back to pending as before.
send_budget holds Telegram's per-token limits shared by the instances (dispatcher.send_budget).

Revision ID: 93a8ad2a0661
Revises: 4c44a3b510dc
Create Date: 2026-12-04 11:54:59.559853
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = '93a8ad2a0661'
down_revision: str | Sequence[str] | None = '4c44a3b510dc'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('send_budget',
                    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('next_at', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_outbox_chat_state', ['chat_id', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_chat_state')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claimed_by')
    op.drop_table('send_budget')
