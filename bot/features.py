"""Which features have timed messages: the one place the scheduler meets
them. `bot.schedule.tick` runs whatever `default_jobs()` lists (or the jobs
a Runtime carries) and knows nothing else about features. A new feature with
timed messages adds its `jobs.JOBS` here."""

from __future__ import annotations

from bot.council import jobs as council_jobs
from bot.jobs import Job
from bot.liaison import jobs as liaison_jobs
from bot.plan import jobs as plan_jobs
from bot.vacancy import jobs as vacancy_jobs


def default_jobs() -> list[Job]:
    return [*vacancy_jobs.JOBS, *liaison_jobs.JOBS, *council_jobs.JOBS, *plan_jobs.JOBS]
