"""Fixtures: a fake Slack, a database (SQLite, and PostgreSQL when
RENKEI_TEST_DATABASE_URL is set), a movable clock, and the real app."""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text
from sqlmodel import select

from bot.app import create_app
from bot.console import Console
from bot.demo import load_town, seed
from bot.people import Handle
from bot.requests import Who
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import Identity, Member
from bot.web import make_wsgi
from tests.slackfake import FakeSlack
from tests.slackreq import SlackClientSim

ROOT = Path(__file__).resolve().parent.parent
JST = ZoneInfo("Asia/Tokyo")
SECRET = "test-signing-secret"


def _database_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist (`make test` runs two workers) each worker gets a
    database of its own beside the one named (test → test_gw0, test_gw1):
    the tests drop and create the public schema as they go. Made from
    template0, which nobody connects to, so two workers may create theirs
    at the same moment."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from bot.store.db import normalise_url

    named = make_url(normalise_url(url))
    own = f"{named.database}_{worker}"
    admin = create_engine(named, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{own}" TEMPLATE template0'))
    finally:
        admin.dispose()
    return make_url(url).set(database=own).render_as_string(hide_password=False)


PG_URL = _database_of_this_worker(os.environ.get("RENKEI_TEST_DATABASE_URL"))


class FakeClock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def fake():
    server = FakeSlack().start()
    yield server
    server.stop()


def _fresh_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'renkei.db'}"
    _fresh_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 11, 24, 10, 0, tzinfo=JST))


@dataclass
class Bot:
    sim: SlackClientSim
    fake: FakeSlack
    runtime: Runtime
    clock: FakeClock
    app: object

    def session(self):
        """A session to look at the record, once background posting settled."""
        self.runtime.wait_idle()
        return session_scope(self.runtime.engine)

    def open_view(self, response=None) -> dict:
        """The view of the last views.open call."""
        return self.fake.wait_for("views.open")[-1].body["view"]

    def responses(self) -> list[dict]:
        return [c.body for c in self.fake.of("response_url")]


def make_bot(db_url: str, fake: FakeSlack, clock: FakeClock, **overrides) -> Bot:
    settings = load_settings(
        database_url=db_url, slack_signing_secret=SECRET, slack_bot_token="xoxb-test",
        slack_api_url=fake.api_url, admins_csv="U0DEMOADM", config_dir=ROOT / "config", **overrides,
    )
    runtime = Runtime.build(settings, clock=clock)
    upgrade(runtime.engine)
    seed(runtime, load_town(ROOT / "config" / "demo" / "town.yaml"))
    app = create_app(settings, runtime)
    return Bot(SlackClientSim(make_wsgi(app, runtime), SECRET, fake, settle=runtime.wait_lanes), fake, runtime,
               clock, app)


@pytest.fixture
def bot(db_url, fake, clock):
    fake.clear()
    fake.failures.clear()
    fake.faults.clear()
    fake.post_delay = 0.0
    fake.update_delay = 0.0
    bot = make_bot(db_url, fake, clock)
    yield bot
    bot.runtime.background.shutdown(wait=True)
    bot.runtime.engine.dispose()


def console(bot: Bot, user: str = "U0DEMOCM1", ask=None) -> tuple[Console, io.StringIO]:
    """The console front end on the bot's runtime, and what it printed."""
    out = io.StringIO()
    return Console(bot.runtime, user, out=out, ask=ask), out


def who(user: str) -> Who:
    """A Slack member acting outside any channel (direct runtime calls)."""
    return Who(handle=Handle("slack", user))


def member_of(session, user: str) -> Member:
    return session.exec(select(Member).join(Identity, Identity.member_id == Member.id)
                        .where(Identity.platform == "slack", Identity.external_id == user)).one()


def without_echo(text: str) -> str:
    """A "not found" reply minus the words the asker typed themselves."""
    import re

    return re.sub(r"「[^」]*」は見つかりませんでした", "", text)


def blocks_text(message: dict) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False) + message.get("text", "")


@pytest.fixture(autouse=True)
def unpaced():
    """Slack's one-post-a-second pace would only slow the suite down; the
    pacing test sets its own interval."""
    from bot.slack import deliver

    interval, deliver.PACER.interval = deliver.PACER.interval, 0.0
    yield deliver.PACER
    deliver.PACER.interval = interval


def race_ticks(bot: Bot, instant: datetime, what) -> list:
    """Two runtimes (two pools, as two processes have) tick the same instant
    at the same moment; `what(post)` of every post either sent, in order."""
    import threading

    from bot import schedule

    url = bot.runtime.engine.url.render_as_string(hide_password=False)
    runtimes = [Runtime.build(bot.runtime.settings, clock=bot.clock, engine=make_engine(url)) for _ in range(2)]
    sent, lock, barrier = [], threading.Lock(), threading.Barrier(2)

    def send(post, key=None):
        with lock:
            sent.append(what(post))
        return True

    def race(runtime):
        barrier.wait()
        schedule.tick(runtime, instant, send)

    threads = [threading.Thread(target=race, args=(rt,)) for rt in runtimes]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for rt in runtimes:
        rt.engine.dispose()
        rt.background.shutdown()
    return sent


@contextmanager
def statements_run(engine) -> Iterator[list[str]]:
    """The SQL `engine` runs inside the block, whitespace folded: for tests
    that say which statements a request makes, and which it no longer does."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
