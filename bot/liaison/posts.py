"""A note's announcement in its channel: code, initials, form, urgency and
author (the body only if the team chose full detail), with 「内容を表示」 and
「確認しました」. Sent once through the delivery table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session

from bot.jobs import JobEnv
from bot.liaison.notes import URGENT, ack_counts, form_title, note_fields
from bot.people import Place
from bot.privacy import initials
from bot.replies import Action, Message, Post
from bot.store.models import Member, Note, Patient
from bot.store.queries import care_team

POST_KIND = "note.post"
TEMPLATE = "liaison/posted"


def announcement(env, note: Note, acks: int | None = None) -> Message:
    """The post's text and buttons. `env` has session, settings and forms
    (a request's Context, or a scheduler job's environment); `acks`: the
    acknowledgements when the caller knows them (None: counted)."""
    return Message(TEMPLATE, posted_values(env, note, acks), note_actions(note))


def announcement_when_sent(env, note: Note) -> Message:
    """The announcement with the acknowledgements stored when it is sent (a
    redraw after an ack: another may commit in between)."""
    settings, forms, note_id = env.settings, env.forms, note.id
    return Message(TEMPLATE, fresh=lambda session, _shown=None: announcement(JobEnv(session, settings, forms),
                                                                             session.get(Note, note_id)),
                   shown=lambda session: ack_counts(session, [note_id]).get(note_id, 0))


def note_actions(note: Note) -> list[Action]:
    return [Action.make("note_show", note.id), Action.make("note_ack", note.id, style="primary")]


def channel_post(env, note: Note, acks: int | None = None) -> Post:
    """The announcement to the note's channel; the platform's message id is
    remembered so acks can redraw the count. If it is finally given up,
    the author is told: whether the request or a later tick gave up."""
    return announcement(env, note, acks).sent(
        place=Place.parse(note.channel), tell_on_failure=note.author_id,
        delivery=(POST_KIND, f"note:{note.id}", "post"),
        on_sent=lambda session, place, message_id, note_id=note.id: _remember(session, note_id, place, message_id))


# One UPDATE of plain values, built once: every note's post runs it.
_NOTES = Note.__table__
_REMEMBER = update(_NOTES).where(_NOTES.c.id == bindparam("note")).values(
    channel=bindparam("place"), message_id=bindparam("posted_as"))


def _remember(session: Session, note_id: int, place: Place, message_id: str) -> None:
    session.connection().execute(_REMEMBER, {"note": note_id, "place": str(place), "posted_as": message_id})


def posted_values(env, note: Note, acks: int | None = None) -> dict[str, Any]:
    """What the channel post shows: minimal unless the team chose full detail."""
    patient = env.session.get(Patient, note.patient_id)
    full = env.settings.team.privacy.channel_detail == "full"
    urgent = note.urgency == URGENT
    return {
        # An urgent note calls its care team by name so someone's phone buzzes
        # (still no patient name and no body in the channel).
        "team": [m for m in care_team(env.session, patient) if m.id != note.author_id] if urgent else [],
        "note": note, "code": patient.code, "initials": initials(patient),
        "form_title": form_title(env.forms, note), "urgency": note.urgency,
        "author": env.session.get(Member, note.author_id),
        "ack_count": ack_counts(env.session, [note.id]).get(note.id, 0) if acks is None else acks,
        "full": full, "fields": note_fields(env.forms.get(note.form_id), note) if full else [],
    }
