"""index needs.updated_at and programs.updated_at

Every ranking reads the latest change of the programs (or needs) table to tell whether its
prepared catalog is still current; without an index that is a scan of the whole table
(42 ms a request for 10,000 programs on SQLite, growing with the table).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 08:40:00.000000
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_needs_updated_at'), ['updated_at'], unique=False)
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programs_updated_at'), ['updated_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programs_updated_at'))
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_needs_updated_at'))
