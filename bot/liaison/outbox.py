"""Channel posts of recent notes that never reached the platform (the send
failed, or the process died first). The scheduler retries them; the
delivery table keeps it to one post per note."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator

from sqlmodel import select

from bot.liaison.posts import channel_post
from bot.replies import Post
from bot.store.models import Note


def undelivered(env, at: datetime) -> Iterator[tuple[Note, Post]]:
    grace = timedelta(hours=env.settings.team.schedule.late_grace_hours)
    notes = env.session.exec(select(Note).where(
        Note.message_id.is_(None), Note.channel.is_not(None), Note.created_at >= at - grace,
        Note.created_at <= at - timedelta(minutes=1)).order_by(Note.id)).all()
    for note in notes:
        yield note, channel_post(env, note)
