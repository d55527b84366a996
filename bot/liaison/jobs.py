"""The liaison feature's timed message: a note's channel post that never
went out (the send failed, or the process died first). The request sends it
at once; this job only picks up the rest, and the delivery table keeps it
to one post per note."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator

from sqlmodel import select

from bot.jobs import SEND, Due, Job, JobEnv
from bot.liaison.posts import POST_KIND, channel_post
from bot.store.models import Note


def undelivered_note_posts(env: JobEnv, at: datetime) -> Iterator[Due]:
    """Looks back only `late_grace_hours`, so a post is never recorded as
    skipped: past that it is simply no longer retried."""
    grace = timedelta(hours=env.settings.team.schedule.late_grace_hours)
    notes = env.session.exec(select(Note).where(
        Note.message_id.is_(None), Note.channel.is_not(None), Note.created_at >= at - grace,
        Note.created_at <= at - timedelta(minutes=1)).order_by(Note.id)).all()
    for note in notes:
        yield Due(f"note:{note.id}", "post", note.created_at, channel_post(env, note))


# Someone is waiting for a note's post now: whatever the day or the hour.
JOBS = [Job(POST_KIND, undelivered_note_posts, day_off=SEND, quiet=False)]
