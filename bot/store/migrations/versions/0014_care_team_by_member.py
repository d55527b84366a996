"""The patients of a member's care teams read from the index alone

Every request now reads the acting member's care teams with the member
(bot/store/queries.py, `acting_member`). By `member_id` alone the index
found the rows and each was then fetched from the table: one page each,
60 for a member in 60 teams (0.25 ms of the server's time on the benchmark's
data, PostgreSQL). With `patient_id` in the index the read stays in it
(0.13 ms). The index on `member_id` alone is its first column, so it goes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_careteammember_member_patient', 'careteammember', ['member_id', 'patient_id'])
    op.drop_index('ix_careteammember_member_id', table_name='careteammember')


def downgrade() -> None:
    op.create_index('ix_careteammember_member_id', 'careteammember', ['member_id'])
    op.drop_index('ix_careteammember_member_patient', table_name='careteammember')
