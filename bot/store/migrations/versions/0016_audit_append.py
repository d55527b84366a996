"""The audit chain extended in one round trip (PostgreSQL)

A transaction that writes audit rows took the chain lock at commit with
`renkei_audit_chain_head()`, hashed its rows in Python and inserted them:
two round trips under the lock, and between them the process's turn at the
GIL, which under 16 clients every other writer waited out. This function
takes the lock, reads the head and inserts the rows chained, so only the
commit follows while the lock is held.

It hashes what `bot.privacy.chain_hash` hashes. That is the JSON list
[previous hash, at, actor, action, patient code, target, allowed,
detail]; the caller sends it without its first element, as `tails`, so
the JSON is written by one serialiser only. The previous hash is 64 hex
digits, so putting it in front needs no escaping. `renkei audit verify`
checks every row with Python's hash, whichever database wrote it.
`renkei_audit_chain_head()` stays for a process of the previous version
still serving during an upgrade: both functions take the same advisory lock
(727001), so old and new writers still extend one chain in turn. A later
migration may drop it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION renkei_audit_append(
            ats timestamptz[], actors varchar[], actions varchar[], codes varchar[], targets varchar[],
            alloweds boolean[], details varchar[], tails text[], genesis varchar) RETURNS void
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            prev varchar;
            next_hash varchar;
        BEGIN
            PERFORM pg_advisory_xact_lock(727001);
            -- A statement of its own after the lock: it sees the row of the writer that held it before.
            prev := coalesce((SELECT hash FROM auditevent ORDER BY id DESC LIMIT 1), genesis);
            FOR i IN 1 .. coalesce(array_length(tails, 1), 0) LOOP
                next_hash := encode(sha256(convert_to('["' || prev || '", ' || substr(tails[i], 2), 'UTF8')), 'hex');
                INSERT INTO auditevent (at, actor, action, patient_code, target, allowed, detail, prev_hash, hash)
                VALUES (ats[i], actors[i], actions[i], codes[i], targets[i], alloweds[i], details[i], prev, next_hash);
                prev := next_hash;
            END LOOP;
        END
        $$
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS renkei_audit_append(timestamptz[], varchar[], varchar[], varchar[], "
                   "varchar[], boolean[], varchar[], text[], varchar)")
