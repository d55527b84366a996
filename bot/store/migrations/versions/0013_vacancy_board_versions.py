"""Versions for the vacancy board's tables

Which facilities have free beds (one grouped query over every figure on
the nights asked, the slowest part of `/vacancy`) is kept per process
while neither the figures nor the facilities changed, and only until the
first fresh figure it counted grows stale (bot/vacancy/board.py); the two
tables get their rows in `tableversion` (bot/store/versions.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = sa.table('tableversion', sa.column('name', sa.String), sa.column('version', sa.Integer))
    op.bulk_insert(table, [{'name': 'facility', 'version': 0}, {'name': 'vacancyfigure', 'version': 0}])


def downgrade() -> None:
    op.execute("DELETE FROM tableversion WHERE name IN ('facility', 'vacancyfigure')")
