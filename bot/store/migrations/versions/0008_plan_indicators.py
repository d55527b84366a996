"""/plan: indicators the council records by hand each quarter; when a task was last edited

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'planindicator',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False, unique=True),
        sa.Column('unit', sa.String(length=20), nullable=False),
        sa.Column('target', sa.Float(), nullable=True),
        sa.Column('lower_is_better', sa.Boolean(), nullable=False),
        sa.Column('kind', sa.String(length=4), nullable=False),
        sa.Column('created_by_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'planindicatorvalue',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('indicator_id', sa.Integer(), sa.ForeignKey('planindicator.id'), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('indicator_id', 'period'),
    )
    op.create_index('ix_planindicatorvalue_indicator_id', 'planindicatorvalue', ['indicator_id'])
    with op.batch_alter_table('plantask') as table:
        table.add_column(sa.Column('updated_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('plantask') as table:
        table.drop_column('updated_at')
    op.drop_table('planindicatorvalue')
    op.drop_table('planindicator')
