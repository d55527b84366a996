"""The audit chain's head in one round trip (PostgreSQL)

A transaction that writes audit rows takes the chain lock at commit and
reads the last row's hash under it (bot/privacy.py). That was two round
trips while every other writer waited for the lock. The function does
both in one; being VOLATILE, its read takes a snapshot of its own after
the lock is granted, so it sees the row of the writer that held the lock
before. SQLite needs nothing: its transactions already hold the write lock.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION renkei_audit_chain_head() RETURNS varchar
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(727001);
            RETURN (SELECT hash FROM auditevent ORDER BY id DESC LIMIT 1);
        END
        $$
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS renkei_audit_chain_head()")
