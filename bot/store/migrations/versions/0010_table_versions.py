"""The version of each table whose lookup index processes cache

One primary-key read tells a process whether its index of patients,
meetings or plan tasks is current, instead of counting the table on every
request (bot/store/versions.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLES = ('patient', 'meeting', 'plantask')


def upgrade() -> None:
    table = op.create_table(
        'tableversion',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.bulk_insert(table, [{'name': name, 'version': 0} for name in TABLES])


def downgrade() -> None:
    op.drop_table('tableversion')
