"""one identity per platform; places and actors platform-qualified; wide ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Every member keeps their row and id; their Slack id moves to `identity`
as ('slack', U…). Channels become "platform:id" (`slack:C0TEAM`) and Slack's
message `ts` becomes a neutral `message_id`. Id columns widen to 300
characters, enough for Teams ids. Audit rows are append-only and hashed as
written, so they are not rewritten: older rows keep the bare Slack actor
they were hashed with, and `renkei audit verify` checks both kinds.

SQLite does not enforce VARCHAR lengths, and recreating the audit table
would drop its append-only triggers, so on SQLite only the renames, the
copy and the dropped column happen (natively, SQLite >= 3.35).
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

WIDE = 300


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        'identity',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('external_id', sa.String(length=WIDE), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform', 'external_id'),
    )
    op.create_index('ix_identity_member_id', 'identity', ['member_id'], unique=False)
    op.execute("INSERT INTO identity (platform, external_id, member_id) "
               "SELECT 'slack', slack_user_id, id FROM member ORDER BY id")
    op.drop_index('ix_member_slack_user_id', table_name='member')
    op.execute("ALTER TABLE member DROP COLUMN slack_user_id")

    op.execute("ALTER TABLE patient RENAME COLUMN channel_id TO channel")
    op.execute("ALTER TABLE note RENAME COLUMN channel_id TO channel")
    op.execute("ALTER TABLE note RENAME COLUMN message_ts TO message_id")
    op.execute("UPDATE patient SET channel = 'slack:' || channel WHERE channel IS NOT NULL")
    op.execute("UPDATE note SET channel = 'slack:' || channel WHERE channel IS NOT NULL")
    if sqlite:
        return
    for table, column, length in [('patient', 'channel', WIDE), ('note', 'channel', WIDE),
                                  ('note', 'message_id', WIDE), ('auditevent', 'actor', WIDE + 20),
                                  ('auditevent', 'target', 1024), ('delivery', 'subject', 255)]:
        op.alter_column(table, column, type_=sa.String(length=length), existing_nullable=True)


def downgrade() -> None:
    raise NotImplementedError("0003 is not reversible: Slack ids now live only in `identity`")
