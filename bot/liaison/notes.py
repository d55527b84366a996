"""Who may write or read a patient's notes, storing a note exactly once,
acknowledgements, and how a stored note reads. Returns domain data; the
command module words it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, func, select

from bot.context import Context
from bot.forms import Form, display_value
from bot.privacy import audit, is_admin, may_access_notes
from bot.store.models import Member, Note, NoteAck, NoteRevision, Patient
from bot.store.queries import insert_once, insert_unless_there, linked_members


class Refused(Exception):
    """The member may not do this to this patient's notes; `reason` is worded
    by `common/refused`. The refusal is already audited."""

    def __init__(self, reason: str, patient: Patient):
        super().__init__(reason)
        self.reason = reason
        self.patient = patient


def check_may_write(ctx: Context, patient: Patient, action: str = "note.write") -> None:
    reason = None
    if not may_access_notes(ctx, patient):
        reason = "not_team"
    elif patient.status == "ended":
        reason = "ended"
    elif patient.consent == "no":
        reason = "no_consent"
    if reason is not None:
        audit(ctx, action, patient=patient, allowed=False, detail=reason)
        raise Refused(reason, patient)


def check_may_read(ctx: Context, patient: Patient, action: str, target: str = "") -> None:
    if not may_access_notes(ctx, patient):
        audit(ctx, action, patient=patient, allowed=False, target=target, detail="not in care team")
        raise Refused("not_team_read", patient)


URGENT = "緊急"


def store(ctx: Context, patient: Patient, form: Form, clean: dict[str, Any],
          urgency: str | None = None) -> tuple[Note, bool]:
    """(the note, True if this action had already stored it). `urgency`: a
    quick note marked urgent (the form's own urgency field otherwise)."""
    note = Note(
        patient_id=patient.id, form_id=form.id, body_json=json.dumps(clean, ensure_ascii=False),
        urgency=urgency or (clean.get(form.urgency_field) if form.urgency_field else None),
        author_id=ctx.member.id, created_at=ctx.now, request_key=ctx.request_key or f"anon:{uuid.uuid4()}",
        channel=patient.channel or (str(ctx.place) if ctx.place else None),
    )
    earlier = insert_once(ctx.session, note)
    if earlier is not None:  # the platform delivered this action again: store nothing
        return earlier, True
    audit(ctx, "note.write", patient=patient, target=f"note:{note.id}", detail=form.id)
    return note, False


def readable_note(ctx: Context, note_id: int, action: str) -> tuple[Note, Patient] | None:
    """The note and its patient if it exists; raises Refused for outsiders."""
    note = ctx.session.get(Note, note_id)
    if note is None:
        return None
    patient = ctx.session.get(Patient, note.patient_id)
    check_may_read(ctx, patient, action, target=f"note:{note.id}")
    return note, patient


def check_may_correct(ctx: Context, note: Note, patient: Patient) -> None:
    """The author, or an admin, corrects a note; nobody else."""
    if note.author_id != ctx.member.id and not is_admin(ctx):
        audit(ctx, "note.correct", patient=patient, allowed=False, target=f"note:{note.id}", detail="not the author")
        raise Refused("not_author", patient)


def correct(ctx: Context, note: Note, patient: Patient, form: Form, clean: dict[str, Any], reason: str) -> None:
    """Keep the note as it read, then change it; who, when and why are kept."""
    ctx.session.add(NoteRevision(note_id=note.id, body_json=note.body_json, urgency=note.urgency,
                                 corrected_by_id=ctx.member.id, corrected_at=ctx.now, reason=reason[:500]))
    note.body_json = json.dumps(clean, ensure_ascii=False)
    if form.urgency_field:
        note.urgency = clean.get(form.urgency_field)
    note.corrected_at = ctx.now
    ctx.session.add(note)
    audit(ctx, "note.correct", patient=patient, target=f"note:{note.id}", detail=reason[:200])


def revisions(session: Session, note: Note) -> list[NoteRevision]:
    return list(session.exec(select(NoteRevision).where(NoteRevision.note_id == note.id).order_by(NoteRevision.id)))


def acknowledge(ctx: Context, note: Note, patient: Patient) -> bool:
    """Record that this member read the note; True if they already had."""
    ack = NoteAck(note_id=note.id, member_id=ctx.member.id, acked_at=ctx.now)
    if insert_unless_there(ctx.session, ack, ("note_id", "member_id"), lambda: select(NoteAck).where(
            NoteAck.note_id == note.id, NoteAck.member_id == ctx.member.id)) is not None:
        return True
    audit(ctx, "note.ack", patient=patient, target=f"note:{note.id}")
    return False


def acked_by(session: Session, note: Note) -> list[Member]:
    return linked_members(session, NoteAck, "note_id", note.id)


# Built once: `/liaison <patient> list` and `/patient show` run them (see store.queries).
_ACK_COUNTS = select(NoteAck.note_id, func.count(NoteAck.id)).where(
    NoteAck.note_id.in_(bindparam("notes", expanding=True))).group_by(NoteAck.note_id)
_COUNT = select(func.count(Note.id)).where(Note.patient_id == bindparam("patient"))
_LATEST = select(Note).where(Note.patient_id == bindparam("patient")).order_by(
    Note.created_at.desc(), Note.id.desc()).limit(bindparam("limit"))


def ack_counts(session: Session, note_ids: list[int]) -> dict[int, int]:
    """How many acknowledged each note (absent: nobody), in one query."""
    return dict(session.exec(_ACK_COUNTS, params={"notes": note_ids}).all()) if note_ids else {}


def count(session: Session, patient: Patient) -> int:
    return session.exec(_COUNT, params={"patient": patient.id}).one()


def latest(session: Session, patient: Patient, limit: int) -> list[Note]:
    return list(session.exec(_LATEST, params={"patient": patient.id, "limit": limit}))


def note_fields(form: Form | None, note: Note) -> list[tuple[str, str]]:
    """(label, value) as the note reads, in the form's order."""
    values = json.loads(note.body_json)
    known = {f.id: f for f in form.fields} if form else {}
    rows = [(known[k].label, display_value(known[k], values[k])) for k in known if k in values]
    rows += [(k, str(v)) for k, v in values.items() if k not in known]  # fields since removed from the form
    return rows


def form_title(forms, note: Note) -> str:
    form = forms.get(note.form_id)
    return form.title if form else note.form_id
