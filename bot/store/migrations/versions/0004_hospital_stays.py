"""hospital stays (admissions and discharges are events, not the end of care); one patient per registration

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

`patient.admitted_on` / `patient.hospital` say whether the patient is in
hospital now; `patientevent` keeps every admission, discharge and reopened
care with who recorded it. Existing patients are untouched (not in hospital).
`patient.request_key` makes a doubled registration form store one patient;
`vacancyenquiry.conditions` carries what the asker searched for;
`noterevision` keeps a note as it read before each correction (訂正);
`facility.area_kana` lets areas be typed in hiragana.
"""
import sqlalchemy as sa
from alembic import op

import bot.store.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('patient', sa.Column('admitted_on', sa.Date(), nullable=True))
    op.add_column('patient', sa.Column('hospital', sa.String(length=80), nullable=False, server_default=''))
    op.add_column('patient', sa.Column('request_key', sa.String(length=128), nullable=True))
    op.create_index('ix_patient_request_key', 'patient', ['request_key'], unique=True)
    op.add_column('patient', sa.Column('updated_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('vacancyenquiry', sa.Column('conditions', sa.String(length=512), nullable=False,
                                              server_default='{}'))
    op.add_column('facility', sa.Column('area_kana', sa.String(length=60), nullable=False, server_default=''))
    op.add_column('note', sa.Column('corrected_at', bot.store.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        'noterevision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('note_id', sa.Integer(), nullable=False),
        sa.Column('body_json', sa.Text(), nullable=False),
        sa.Column('urgency', sa.String(length=16), nullable=True),
        sa.Column('corrected_by_id', sa.Integer(), nullable=False),
        sa.Column('corrected_at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['corrected_by_id'], ['member.id'], ),
        sa.ForeignKeyConstraint(['note_id'], ['note.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_noterevision_note_id', 'noterevision', ['note_id'], unique=False)
    op.create_table(
        'patientevent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('on', sa.Date(), nullable=False),
        sa.Column('detail', sa.String(length=256), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('at', bot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_patientevent_patient_id', 'patientevent', ['patient_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_patientevent_patient_id', table_name='patientevent')
    op.drop_table('patientevent')
    op.drop_index('ix_noterevision_note_id', table_name='noterevision')
    op.drop_table('noterevision')
    op.drop_column('note', 'corrected_at')
    op.drop_column('facility', 'area_kana')
    op.drop_column('vacancyenquiry', 'conditions')
    op.drop_column('patient', 'updated_at')
    op.drop_index('ix_patient_request_key', table_name='patient')
    op.drop_column('patient', 'request_key')
    op.drop_column('patient', 'hospital')
    op.drop_column('patient', 'admitted_on')
