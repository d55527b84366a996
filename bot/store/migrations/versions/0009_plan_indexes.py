"""/plan: indexes for the overview and the computed indicators over a year of notes

The response rate reads each note's time and author from the index it is
found by, and looks for a quick acknowledgement in an index that holds the
time and member (no table reads for a million notes). Participation asks,
per member, for one note written or acknowledged in the year. The death
rates read only the cares that ended in the year. The plan's overview
reads the completions of the current periods, not the whole log.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_note_created_author', 'note', ['created_at', 'author_id', 'id']),
    ('ix_note_author_created', 'note', ['author_id', 'created_at']),
    ('ix_noteack_note_acked', 'noteack', ['note_id', 'acked_at', 'member_id']),
    ('ix_noteack_member_acked', 'noteack', ['member_id', 'acked_at']),
    ('ix_patient_ended_on', 'patient', ['ended_on']),
    ('ix_plancompletion_period', 'plancompletion', ['period', 'task_id']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
