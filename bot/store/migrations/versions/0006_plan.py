"""/plan: the annual business plan's tasks, owners and completion log; team settings; digest mutes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'plantask',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fiscal_year', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=1), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('due', sa.Date(), nullable=True),
        sa.Column('every', sa.String(length=8), nullable=True),
        sa.Column('source', sa.String(length=12), nullable=False),
        sa.Column('meeting_id', sa.Integer(), sa.ForeignKey('meeting.id'), nullable=True),
        sa.Column('created_by_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('request_key', sa.String(length=128), nullable=True, unique=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_plantask_year', 'plantask', ['fiscal_year'])
    op.create_table(
        'plantaskowner',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), sa.ForeignKey('plantask.id'), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'member_id'),
    )
    op.create_index('ix_plantaskowner_task_id', 'plantaskowner', ['task_id'])
    op.create_index('ix_plantaskowner_member_id', 'plantaskowner', ['member_id'])
    op.create_table(
        'plancompletion',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), sa.ForeignKey('plantask.id'), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('comment', sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'period'),
    )
    op.create_index('ix_plancompletion_task_id', 'plancompletion', ['task_id'])
    op.create_index('ix_plancompletion_at', 'plancompletion', ['at'])
    op.create_table(
        'teamsetting',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False, unique=True),
        sa.Column('value', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'planmute',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False, unique=True),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    for table in ('planmute', 'teamsetting', 'plancompletion', 'plantaskowner', 'plantask'):
        op.drop_table(table)
