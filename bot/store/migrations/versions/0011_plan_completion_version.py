"""A version for the plan's completion log

`/plan`'s overview (progress per item, what is due and overdue) is cached
per process while neither the tasks nor the completion log changed; the log
gets its row in `tableversion` (bot/store/versions.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = sa.table('tableversion', sa.column('name', sa.String), sa.column('version', sa.Integer))
    op.bulk_insert(table, [{'name': 'plancompletion', 'version': 0}])


def downgrade() -> None:
    op.execute("DELETE FROM tableversion WHERE name = 'plancompletion'")
