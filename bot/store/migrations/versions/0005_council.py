"""/council: meetings, invitations and answers, groups, agenda, minutes, calendar tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from bot.store.types import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        'meeting',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        _ts('starts_at'), _ts('ends_at', True),
        sa.Column('place', sa.String(length=200), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('channel', sa.String(length=300), nullable=True),
        sa.Column('organiser_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('remind', sa.String(length=64), nullable=False),
        sa.Column('message_id', sa.String(length=300), nullable=True),
        _ts('created_at'), _ts('updated_at'), _ts('cancelled_at', True),
        sa.Column('request_key', sa.String(length=128), nullable=True, unique=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_meeting_starts_at', 'meeting', ['starts_at'])
    op.create_table(
        'meetinginvite',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), sa.ForeignKey('meeting.id'), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        sa.Column('answer', sa.String(length=8), nullable=True),
        _ts('answered_at', True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('meeting_id', 'member_id'),
    )
    op.create_index('ix_meetinginvite_meeting_id', 'meetinginvite', ['meeting_id'])
    op.create_index('ix_meetinginvite_member_id', 'meetinginvite', ['member_id'])
    op.create_table(
        'meetinggroup',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False, unique=True),
        _ts('created_at'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'meetinggroupmember',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), sa.ForeignKey('meetinggroup.id'), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group_id', 'member_id'),
    )
    op.create_index('ix_meetinggroupmember_group_id', 'meetinggroupmember', ['group_id'])
    op.create_table(
        'agendaitem',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), sa.ForeignKey('meeting.id'), nullable=False),
        sa.Column('text', sa.String(length=500), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        _ts('at'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_agendaitem_meeting_id', 'agendaitem', ['meeting_id'])
    op.create_table(
        'meetingminutes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), sa.ForeignKey('meeting.id'), nullable=False, unique=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('decisions_json', sa.Text(), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False),
        _ts('at'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'calendartoken',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), sa.ForeignKey('member.id'), nullable=False, unique=True),
        sa.Column('token', sa.String(length=64), nullable=False, unique=True),
        _ts('created_at'),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    for table in ('calendartoken', 'meetingminutes', 'agendaitem', 'meetinggroupmember', 'meetinggroup',
                  'meetinginvite', 'meeting'):
        op.drop_table(table)
