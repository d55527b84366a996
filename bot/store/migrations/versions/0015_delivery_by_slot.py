"""A slot's deliveries counted from an index; a version for facility staff

Every minute's tick asks, for each week the plan digest looks back on,
whether that week's digest and DMs are all settled (bot/plan/jobs.py). A
week holds a row for every task owner; found by `kind` alone (the first
column of the unique key) each row of every week was read and its slot
compared: 3 ms a week on SQLite with the benchmark's 2,500 owners. With
(kind, slot, status, attempts) the count reads only that week's entries
of the index.

The same tick reads each stale facility's staff; that is now kept per
process while `facilitystaff` is unchanged, so the table gets its row in
`tableversion` (bot/store/versions.py). A process of the previous version
still serving during an upgrade changes staff without bumping it: until the
next change made by the new version, a new process may prompt the staff as
they were (one morning's prompt to someone who left, or none to someone
just added). Restart every process together to avoid it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_delivery_kind_slot', 'delivery', ['kind', 'slot', 'status', 'attempts'])
    table = sa.table('tableversion', sa.column('name', sa.String), sa.column('version', sa.Integer))
    op.bulk_insert(table, [{'name': 'facilitystaff', 'version': 0}])


def downgrade() -> None:
    op.execute("DELETE FROM tableversion WHERE name = 'facilitystaff'")
    op.drop_index('ix_delivery_kind_slot', table_name='delivery')
