"""jobs: leases, heartbeats, cancel requests and deduplication

Jobs became a queue that every process of the service takes work from: a process claims a
job by writing its lease (owner and expiry) and renews it while it works; a job whose lease
expired is taken over by another process. A cancel is a flag any process can set.
``active_key`` identifies a queued or running job's submission (unique: an identical
submission finds it) and is cleared when the job ends.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('cancel_requested', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('active_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_jobs_active_key'), ['active_key'], unique=True)
        batch_op.create_index(batch_op.f('ix_jobs_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_jobs_active_key'))
        for name in ('active_key', 'attempts', 'cancel_requested', 'lease_expires_at',
                     'lease_owner'):
            batch_op.drop_column(name)
