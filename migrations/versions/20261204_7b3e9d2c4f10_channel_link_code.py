"""channel_link_code: one-time codes that link a donor's Zalo chat to her record (issue 15)

Only a hash of each code is stored; a code expires and is used once (dispatcher.channel_links).

Revision ID: 7b3e9d2c4f10
Revises: c3f1a9e2d7b4
Create Date: 2026-12-04 19:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = '7b3e9d2c4f10'
down_revision: str | Sequence[str] | None = 'c3f1a9e2d7b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_link_code',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('donor_id', sa.Integer(), nullable=False),
                    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('created_by', sa.BigInteger(), nullable=True),
                    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
                    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
                    sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
                    sa.ForeignKeyConstraint(['donor_id'], ['donor.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('code_hash'))
    with op.batch_alter_table('channel_link_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_link_code_donor_id'), ['donor_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('channel_link_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_link_code_donor_id'))
    op.drop_table('channel_link_code')
