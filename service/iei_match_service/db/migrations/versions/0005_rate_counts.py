"""rate_counts: a per-key request count per minute that every process shares

With several processes of the service, a per-key rate limit counted in each process allows
N times the limit. ``IEI_MATCH_SHARED_RATE_LIMIT`` counts requests here instead: one
upsert per request, on the (key, minute) row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 05:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_counts',
        sa.Column('bucket', sa.String(length=100), nullable=False),
        sa.Column('minute', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('bucket', 'minute'),
    )


def downgrade() -> None:
    op.drop_table('rate_counts')
