"""/liaison: structured liaison notes on the team's unified forms."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any, Iterator

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from bot.commands import args as argparse
from bot.commands.common import resolve_patient
from bot.context import Context
from bot.forms import Form, display_value, validate
from bot.privacy import audit, initials, may_access_notes
from bot.replies import Modal, Post, Reply
from bot.store.models import Member, Note, NoteAck, Patient
from bot.store.queries import insert_once

COMMAND = "/liaison"
POST_KIND = "note.post"
LIST_WORDS = {"list", "一覧", "履歴", "ls"}
HELP_WORDS = {"help", "ヘルプ", "使い方"}
DEFAULT_LIST, MAX_LIST = 5, 20


def handle(ctx: Context, text: str) -> Reply:
    word, _ = argparse.first_word(text)
    if not word or word in HELP_WORDS:
        return Reply("liaison/usage", {"forms": ctx.forms.ordered})
    patient, rest, other = resolve_patient(ctx, COMMAND, text)
    if other:
        return other
    word, after = argparse.first_word(rest)
    if word in LIST_WORDS:
        return list_notes(ctx, patient, after)
    if not rest.strip():
        return open_form(ctx, patient)
    return quick_note(ctx, patient, rest)


def write_refusal(ctx: Context, patient: Patient, action: str) -> Reply | None:
    """Why this member may not add a note to this patient now, or None."""
    reason = None
    if not may_access_notes(ctx, patient):
        reason = "not_team"
    elif patient.status == "ended":
        reason = "ended"
    elif patient.consent == "no":
        reason = "no_consent"
    if reason is None:
        return None
    audit(ctx, action, patient=patient, allowed=False, detail=reason)
    return Reply("common/refused", {"reason": reason, "code": patient.code})


def open_form(ctx: Context, patient: Patient, form_id: str | None = None) -> Reply:
    refusal = write_refusal(ctx, patient, "note.write")
    if refusal:
        return refusal
    form = ctx.forms.get(form_id or "") or ctx.forms.default
    return Reply(modal=Modal("liaison", {
        "patient": patient, "initials": initials(patient), "form": form, "forms": ctx.forms.ordered,
        "channel_id": ctx.channel_id,
    }))


def quick_note(ctx: Context, patient: Patient, text: str) -> Reply:
    refusal = write_refusal(ctx, patient, "note.write")
    if refusal:
        return refusal
    form = ctx.forms.quick()
    clean, errors = validate(form, {form.quick_field: argparse.typed_text(text)})
    if errors:
        code, params = errors[form.quick_field]
        return Reply("liaison/invalid", {"problem": code, **params})
    return store_note(ctx, patient, form, clean)


def submit_form(ctx: Context, patient_code: str, form_id: str, raw: dict[str, Any]) -> Reply:
    patient = ctx.session.exec(select(Patient).where(Patient.code == patient_code)).first()
    form = ctx.forms.get(form_id)
    if patient is None or form is None:
        return Reply(field_errors={"form_type": ("form_gone", {})})
    refusal = write_refusal(ctx, patient, "note.write")
    if refusal:
        return Reply(field_errors={"form_type": ("refused", refusal.values)})
    clean, errors = validate(form, raw)
    if errors:
        return Reply(field_errors=errors)
    return store_note(ctx, patient, form, clean)


def store_note(ctx: Context, patient: Patient, form: Form, clean: dict[str, Any]) -> Reply:
    note = Note(
        patient_id=patient.id, form_id=form.id, body_json=json.dumps(clean, ensure_ascii=False),
        urgency=clean.get(form.urgency_field) if form.urgency_field else None,
        author_id=ctx.member.id, created_at=ctx.now, request_key=ctx.request_key or f"anon:{uuid.uuid4()}",
        channel_id=patient.channel_id or ctx.channel_id,
    )
    earlier = insert_once(ctx.session, note)
    if earlier is not None:  # Slack delivered this action again: answer, store nothing
        return Reply("liaison/stored", {"note": earlier, "patient": patient, "form": form, "duplicate": True})
    audit(ctx, "note.write", patient=patient, target=f"note:{note.id}", detail=form.id)
    posts = [channel_post(ctx, note, tell_on_failure=ctx.member.slack_user_id)] if note.channel_id else []
    return Reply("liaison/stored", {"note": note, "patient": patient, "form": form, "duplicate": False},
                 posts=posts)


def channel_post(ctx: Context, note: Note, tell_on_failure: str | None = None) -> Post:
    """The note's announcement in its channel, sent once through the delivery
    table; Slack's ts is remembered so acks can update the count."""
    return Post(note.channel_id, "liaison/posted", posted_values(ctx, note), tell_on_failure=tell_on_failure,
                delivery=(POST_KIND, f"note:{note.id}", "post"),
                on_sent=lambda session, channel, ts, note_id=note.id: _remember_post(session, note_id, channel, ts))


def undelivered_posts(runtime, session: Session, at) -> Iterator[tuple[str, Post]]:
    """Channel posts of recent notes that never reached Slack (the scheduler
    retries them; the delivery table keeps it to one post per note)."""
    grace = timedelta(hours=runtime.settings.team.schedule.late_grace_hours)
    notes = session.exec(select(Note).where(
        Note.message_ts.is_(None), Note.channel_id.is_not(None), Note.created_at >= at - grace,
        Note.created_at <= at - timedelta(minutes=1)).order_by(Note.id)).all()
    for note in notes:
        author = session.get(Member, note.author_id)
        ctx = Context(session=session, settings=runtime.settings, forms=runtime.forms, member=author, now=at)
        yield f"note:{note.id}", channel_post(ctx, note)


def _remember_post(session: Session, note_id: int, channel: str, ts: str) -> None:
    note = session.get(Note, note_id)
    note.channel_id, note.message_ts = channel, ts
    session.add(note)


def posted_values(ctx: Context, note: Note) -> dict[str, Any]:
    """What the channel post shows: minimal unless the team chose full detail."""
    patient = ctx.session.get(Patient, note.patient_id)
    form = ctx.forms.get(note.form_id)
    full = ctx.settings.team.privacy.channel_detail == "full"
    return {
        "note": note, "code": patient.code, "initials": initials(patient),
        "form_title": form.title if form else note.form_id, "urgency": note.urgency,
        "author": ctx.session.get(Member, note.author_id), "ack_count": _ack_count(ctx.session, note.id),
        "full": full, "fields": note_fields(form, note) if full else [],
    }


def note_fields(form: Form | None, note: Note) -> list[tuple[str, str]]:
    values = json.loads(note.body_json)
    known = {f.id: f for f in form.fields} if form else {}
    rows = [(known[k].label, display_value(known[k], values[k])) for k in known if k in values]
    rows += [(k, str(v)) for k, v in values.items() if k not in known]  # fields since removed from the form
    return rows


def _ack_count(session: Session, note_id: int) -> int:
    return session.exec(select(func.count(NoteAck.id)).where(NoteAck.note_id == note_id)).one()


def _note_for(ctx: Context, note_id: int, action: str) -> tuple[Note | None, Patient | None, Reply | None]:
    note = ctx.session.get(Note, note_id)
    if note is None:
        return None, None, Reply("liaison/invalid", {"problem": "note_gone"})
    patient = ctx.session.get(Patient, note.patient_id)
    if not may_access_notes(ctx, patient):
        audit(ctx, action, patient=patient, allowed=False, target=f"note:{note.id}", detail="not in care team")
        return None, None, Reply("common/refused", {"reason": "not_team_read", "code": patient.code})
    return note, patient, None


def show_note(ctx: Context, note_id: int) -> Reply:
    note, patient, refusal = _note_for(ctx, note_id, "note.read")
    if refusal:
        return refusal
    audit(ctx, "note.read", patient=patient, target=f"note:{note.id}")
    form = ctx.forms.get(note.form_id)
    acks = ctx.session.exec(
        select(Member).join(NoteAck, NoteAck.member_id == Member.id).where(NoteAck.note_id == note.id)
        .order_by(NoteAck.id)
    ).all()
    return Reply("liaison/note", {
        "note": note, "patient": patient, "form_title": form.title if form else note.form_id,
        "fields": note_fields(form, note), "author": ctx.session.get(Member, note.author_id), "acks": acks,

    })


def acknowledge(ctx: Context, note_id: int) -> Reply:
    note, patient, refusal = _note_for(ctx, note_id, "note.ack")
    if refusal:
        return refusal
    already = False
    try:
        with ctx.session.begin_nested():
            ctx.session.add(NoteAck(note_id=note.id, member_id=ctx.member.id, acked_at=ctx.now))
    except IntegrityError:
        already = True
    if not already:
        audit(ctx, "note.ack", patient=patient, target=f"note:{note.id}")
    update = Post(note.channel_id or "", "liaison/posted", posted_values(ctx, note))
    return Reply("liaison/acked", {"already": already, "code": patient.code}, update=update)


def list_notes(ctx: Context, patient: Patient, text: str) -> Reply:
    if not may_access_notes(ctx, patient):
        audit(ctx, "note.list", patient=patient, allowed=False, detail="not in care team")
        return Reply("common/refused", {"reason": "not_team_read", "code": patient.code})
    count_text = argparse.fold(text).strip()
    if count_text and not count_text.isdigit():
        return Reply("liaison/invalid", {"problem": "bad_count", "max": MAX_LIST})
    limit = min(int(count_text or DEFAULT_LIST), MAX_LIST) or DEFAULT_LIST
    notes = ctx.session.exec(
        select(Note).where(Note.patient_id == patient.id).order_by(Note.created_at.desc(), Note.id.desc())
        .limit(limit)
    ).all()
    audit(ctx, "note.list", patient=patient, detail=f"{len(notes)} notes")
    rows = []
    for note in notes:
        form = ctx.forms.get(note.form_id)
        fields = note_fields(form, note)
        rows.append({
            "note": note, "form_title": form.title if form else note.form_id,
            "summary": " / ".join(v for _, v in fields)[:80], "author": ctx.session.get(Member, note.author_id),
            "ack_count": _ack_count(ctx.session, note.id),
        })
    return Reply("liaison/list", {"patient": patient, "rows": rows, "limit": limit})


def change_form(ctx: Context, patient_code: str, form_id: str) -> Reply:
    """The modal's first field picked another form: the same checks, that form."""
    patient = ctx.session.exec(select(Patient).where(Patient.code == patient_code)).first()
    if patient is None:
        return Reply("liaison/invalid", {"problem": "note_gone"})
    return open_form(ctx, patient, form_id)
