"""Which features have timed messages: the one place the scheduler meets
them. `bot.schedule.tick` runs whatever `default_jobs()` lists (or the jobs
a Runtime carries) and knows nothing else about features."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from bot.jobs import SEND, Due, Job, JobEnv
from bot.liaison import outbox
from bot.vacancy import jobs as vacancy_jobs

NOTE_POST = "note.post"


def undelivered_note_posts(env: JobEnv, at: datetime) -> Iterator[Due]:
    """Channel posts of recent notes that never went out (the send failed, or
    the process died first). The request sends them at once; this only picks
    up the rest. The query looks back only `late_grace_hours`, so a post is
    never recorded as skipped: it is simply no longer retried."""
    for note, post in outbox.undelivered(env, at):
        yield Due(f"note:{note.id}", "post", note.created_at, post)


# Someone is waiting for a note's post now: whatever the day or the hour.
NOTE_POSTS = Job(NOTE_POST, undelivered_note_posts, day_off=SEND, quiet=False)


def default_jobs() -> list[Job]:
    return [*vacancy_jobs.JOBS, NOTE_POSTS]
