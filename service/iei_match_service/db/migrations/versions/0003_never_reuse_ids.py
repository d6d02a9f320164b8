"""never reuse ids on SQLite (AUTOINCREMENT)

Without AUTOINCREMENT, SQLite gives a new row the largest id in use plus one, so deleting the
newest need handed its id to the next one, while outcomes, exports and job results still
referred to it. Each table is rebuilt with AUTOINCREMENT (its rows, ids, indexes and
constraints kept); the environment turns foreign keys off around the rebuild so that dropping
the old table cascades nothing. PostgreSQL's sequences never reuse a value: nothing to do.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 02:30:00.000000
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Parents before children, so that each rebuilt child refers to a rebuilt parent.
TABLES = ('organizations', 'memberships', 'api_keys', 'needs', 'programs', 'training_bases',
          'partnerships', 'outcome_events', 'jobs')


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
