"""request_contact.expected_arrival_at: when a donor who said available is expected (issue 9)

Nullable: contacts made before it have no expected arrival, and count as the rule counts a
donor whose location is unknown (dispatcher.coverage).

Revision ID: f79d9f462fb8
Revises: 0001_baseline
Create Date: 2026-12-03 18:23:53.047809
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = 'f79d9f462fb8'
down_revision: str | Sequence[str] | None = '0001_baseline'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('request_contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expected_arrival_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('request_contact', schema=None) as batch_op:
        batch_op.drop_column('expected_arrival_at')

