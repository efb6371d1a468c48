"""telegram_user.monthly_report_since: leads and staff who asked for the monthly report (issue 16)

Nobody is subscribed after the upgrade: the report is sent only to those who ask (/monthly on).

Revision ID: c3f1a9e2d7b4
Revises: 5a1e0c4d9b21
Create Date: 2026-12-04 19:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = 'c3f1a9e2d7b4'
down_revision: str | Sequence[str] | None = '5a1e0c4d9b21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('telegram_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monthly_report_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('telegram_user', schema=None) as batch_op:
        batch_op.drop_column('monthly_report_since')
