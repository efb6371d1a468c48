"""donor_channel and outbox_message.channel/address: reach a donor on SMS or Zalo too (issue 15)

A donor's channels, each with its address and consent, in her order. Every donor the bot can
already message gets her Telegram channel here (consent: when she agreed to be contacted), so
nothing changes for her; outbox rows written before are Telegram's.

Revision ID: 5a1e0c4d9b21
Revises: 93a8ad2a0661
Create Date: 2026-12-04 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = '5a1e0c4d9b21'
down_revision: str | Sequence[str] | None = '93a8ad2a0661'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('donor_channel',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('donor_id', sa.Integer(), nullable=False),
                    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('rank', sa.Integer(), nullable=False),
                    sa.Column('consent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
                    sa.Column('consent_policy_version', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
                    sa.Column('unreachable_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
                    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
                    sa.ForeignKeyConstraint(['donor_id'], ['donor.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('donor_id', 'channel', name='uq_donor_channel'))
    with op.batch_alter_table('donor_channel', schema=None) as batch_op:
        batch_op.create_index('ix_donor_channel_address', ['channel', 'address'], unique=False)
        batch_op.create_index(batch_op.f('ix_donor_channel_donor_id'), ['donor_id'], unique=False)
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default='telegram'))
        batch_op.add_column(sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    # Data: the Telegram channel of every donor linked to a Telegram account. Its consent is her consent
    # to be contacted (None when she never gave it: the channel is known, not agreed to).
    op.execute(sa.text(
        "INSERT INTO donor_channel (donor_id, channel, address, rank, consent_at, consent_policy_version,"
        " created_at) SELECT id, 'telegram', CAST(telegram_id AS VARCHAR), 0, consent_contact_at,"
        " consent_policy_version, created_at FROM donor WHERE telegram_id IS NOT NULL"))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('address')
        batch_op.drop_column('channel')
    with op.batch_alter_table('donor_channel', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_donor_channel_donor_id'))
        batch_op.drop_index('ix_donor_channel_address')
    op.drop_table('donor_channel')
