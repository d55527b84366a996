"""The database under trouble: processes migrating together, a locked or
frozen database answered within Slack's window with nothing stored behind
the person's back, and replies that say what did not happen."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.store.db import make_engine, session_scope
from bot.store.models import Note
from tests.conftest import PG_URL, ROOT, _fresh_postgres, make_bot

pg_only = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: set RENKEI_TEST_DATABASE_URL")
RETRY = "もう一度"
SLACK_BUDGET = 2.5  # seconds: Slack gives up at 3


def notes_saying(url: str, words: str) -> int:
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            return sum(words in n.body_json for n in s.exec(select(Note)).all())
    finally:
        engine.dispose()


def timed_command(bot, command: str, text: str):
    start = time.monotonic()
    r = bot.sim.command(command, text)
    return r, time.monotonic() - start


# --- migrations: two processes, one empty database -----------------------------------

# Each process migrates once per line (the database's URL), after importing
# everything, so the two start each round together.
MIGRATOR = (
    "import sys\n"
    "from bot.store.db import make_engine, upgrade\n"
    "print('ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    engine = make_engine(line.strip())\n"
    "    try:\n"
    "        upgrade(engine)\n"
    "        print('ok', flush=True)\n"
    "    except Exception as e:\n"
    "        print('failed', type(e).__name__, str(e).splitlines()[0], flush=True)\n"
    "    engine.dispose()\n"
)


def migrate_together(rounds: int, fresh) -> list[list[str]]:
    """`fresh()` makes an empty database and returns its URL, for each round."""
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATOR], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    outcomes = []
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for _ in range(rounds):
            url = fresh()
            for p in procs:
                p.stdin.write(url + "\n")
                p.stdin.flush()
            outcomes.append([p.stdout.readline().strip() for p in procs])
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=30)
    return outcomes


@pg_only
def test_two_processes_migrating_an_empty_postgres_database_together_both_succeed():
    url = make_url(PG_URL).set(database="test_h4_migrate")
    admin = psycopg.connect(make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False),
                            autocommit=True)
    admin.execute("DROP DATABASE IF EXISTS test_h4_migrate")
    admin.execute("CREATE DATABASE test_h4_migrate")
    target = url.render_as_string(hide_password=False)
    try:
        outcomes = migrate_together(2, lambda: _fresh_postgres(target) or target)
        with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
            versions = conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
    finally:
        admin.execute("DROP DATABASE IF EXISTS test_h4_migrate WITH (FORCE)")
        admin.close()
    assert outcomes == [["ok", "ok"]] * 2
    assert versions == 1


def test_two_processes_migrating_an_empty_sqlite_file_together_both_succeed(tmp_path):
    # A new file each round: deleting the last round's file under the two
    # processes raced their checkpoint thread, which still had it open
    # (`disk I/O error`), a thing no deployment does.
    files = iter(tmp_path / f"fresh{i}.db" for i in range(10))
    assert migrate_together(2, lambda: f"sqlite:///{next(files)}") == [["ok", "ok"]] * 2


# --- a locked database: the answer comes in time, nothing is stored after -------------

@contextmanager
def note_table_locked(url: str):
    """Another connection holds the note table (PostgreSQL) or the whole
    database (SQLite) until the block ends."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        conn.execute("LOCK TABLE note IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_a_locked_database_answers_retry_in_time_and_stores_nothing_later(bot, db_url):
    with note_table_locked(db_url):
        r, took = timed_command(bot, "/liaison", "山田 ロック中の記録")
        assert took < SLACK_BUDGET, took
        assert "保存できませんでした" in r.text and RETRY in r.text
    bot.runtime.wait_idle()
    time.sleep(0.2)
    assert notes_saying(db_url, "ロック中の記録") == 0
    r = bot.sim.command("/liaison", "山田 ロック中の記録")
    assert "登録しました" in r.text
    assert notes_saying(db_url, "ロック中の記録") == 1


def test_sqlite_waits_for_another_writer_less_than_slacks_window(tmp_path):
    from bot.runtime import Runtime
    from bot.settings import load_settings

    runtime = Runtime.build(load_settings(database_url=f"sqlite:///{tmp_path / 'y.db'}", config_dir=ROOT / "config"))
    with runtime.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2000


# --- a frozen database -----------------------------------------------------------------

class FreezableProxy:
    """A TCP proxy to PostgreSQL that can stop forwarding without closing
    anything. To the bot the server then looks frozen, as a stopped
    postmaster does: the kernel still accepts and acknowledges, no answer
    ever comes. On thaw what was held is delivered, in order."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.flowing = threading.Event()
        self.flowing.set()
        self.freeze_on: bytes | None = None  # freeze when the bot sends this
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_bot: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if from_bot and self.freeze_on and self.freeze_on in data:
                    self.flowing.clear()
                self.flowing.wait()
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.flowing.set()
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv; close alone would not
                s.close()
            except OSError:
                pass


@pytest.fixture
def frozen_bot(fake, clock):
    """The bot talking to PostgreSQL through a FreezableProxy."""
    _fresh_postgres(PG_URL)
    real = make_url(PG_URL)
    proxy = FreezableProxy(real.host or "127.0.0.1", real.port or 5432)
    fake.clear()
    bot = make_bot(real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), fake, clock)
    yield bot, proxy
    bot.runtime.background.shutdown(wait=True)
    bot.runtime.engine.dispose()
    proxy.close()


@pg_only
def test_a_frozen_database_answers_retry_in_time_and_stores_nothing_when_it_wakes(frozen_bot):
    bot, proxy = frozen_bot
    assert "登録しました" in bot.sim.command("/liaison", "山田 凍結前の記録").text
    bot.runtime.wait_idle()
    proxy.flowing.clear()
    r, took = timed_command(bot, "/liaison", "山田 凍結中の記録")
    assert took < SLACK_BUDGET, took
    assert "保存できませんでした" in r.text and RETRY in r.text
    r, took = timed_command(bot, "/liaison", "山田 list")  # every pooled connection is bounded
    assert took < SLACK_BUDGET and "表示できませんでした" in r.text, (took, r.text)
    proxy.flowing.set()  # the server wakes and reads what was sent: the client is gone
    time.sleep(0.3)
    assert notes_saying(PG_URL, "凍結中の記録") == 0
    r = bot.sim.command("/liaison", "山田 凍結中の記録")  # recovers without a restart
    assert "登録しました" in r.text
    assert notes_saying(PG_URL, "凍結中の記録") == 1


@pg_only
def test_a_database_freezing_during_commit_is_not_reported_as_nothing_stored(frozen_bot):
    """COMMIT sent, no answer: it may have been stored. The person is told
    to look before sending again, and indeed the server stores it on waking."""
    bot, proxy = frozen_bot
    proxy.freeze_on = b"COMMIT"
    r, took = timed_command(bot, "/liaison", "山田 確定直前の記録")
    proxy.freeze_on = None
    assert took < SLACK_BUDGET, took
    assert "保存できたかどうか確かめられませんでした" in r.text and "保存できませんでした" not in r.text
    proxy.flowing.set()
    time.sleep(0.3)
    assert notes_saying(PG_URL, "確定直前の記録") == 1


# --- a database that cannot be reached: say what did not happen -----------------------

@contextmanager
def unreachable(bot):
    live = bot.runtime.engine
    bot.runtime.engine = make_engine("postgresql://postgres@127.0.0.1:9/nowhere")  # nothing listens there
    try:
        yield
    finally:
        bot.runtime.engine = live


def test_an_unreachable_database_says_what_was_not_done(bot):
    shown, stored = "表示できませんでした", "保存できませんでした"
    cases = [("/liaison", "山田 list", shown), ("/liaison", "山田 一覧 10", shown), ("/patient", "list", shown),
             ("/patient", "山田", shown), ("/vacancy", "", shown), ("/plan", "", shown), ("/council", "", shown),
             ("/liaison", "山田 つながらない間の記録", stored), ("/plan", "done 連携シート", stored),
             ("/patient", "add 新規 花子", stored)]
    with unreachable(bot):
        answers = [(command, text, bot.sim.command(command, text).text) for command, text, _ in cases]
    for (command, text, says), (_, _, answer) in zip(cases, answers):
        other = shown if says == stored else stored
        assert says in answer and RETRY in answer and other not in answer, (command, text, answer)


def test_a_button_that_only_shows_says_it_was_not_shown(bot):
    assert "登録しました" in bot.sim.command("/liaison", "山田 ボタン用の記録").text
    post = bot.fake.wait_for("chat.postMessage")[-1].body
    show = next(e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"].endswith("note_show"))
    bot.runtime.wait_idle()
    with unreachable(bot):
        bot.sim.click(show["action_id"], show["value"])
    answer = bot.responses()[-1]
    assert "表示できませんでした" in answer["text"], answer


def test_a_full_connection_pool_answers_retry_in_time(bot, db_url):
    from bot.store.db import Limits

    live = bot.runtime.engine
    bot.runtime.engine = make_engine(db_url, Limits(pool=0.3, busy=2))
    held = [bot.runtime.engine.raw_connection()
            for _ in range(bot.runtime.engine.pool.size() + bot.runtime.engine.pool._max_overflow)]
    try:
        r, took = timed_command(bot, "/liaison", "山田 満杯の間の記録")
    finally:
        for conn in held:
            conn.close()
        bot.runtime.engine.dispose()
        bot.runtime.engine = live
    assert took < SLACK_BUDGET and "保存できませんでした" in r.text and RETRY in r.text, (took, r.text)
    assert notes_saying(db_url, "満杯の間の記録") == 0


# --- the audit chain: chained at commit, whole under concurrent writers ---------------

def test_concurrent_writers_keep_one_unbroken_audit_chain(bot, db_url):
    from bot.people import Handle
    from bot.privacy import verify_chain
    from bot.requests import COMMAND, Request, Who
    from bot.store.models import AuditEvent

    def writer(n: int) -> None:
        for i in range(5):
            who = Who(handle=Handle("slack", "U0DEMOCM1"), request_key=f"chain-{n}-{i}")
            assert not bot.runtime.handle(who, Request(COMMAND, "/liaison", f"山田 同時書き込み {n}-{i}")).error

    with bot.session() as s:
        before = len(s.exec(select(AuditEvent)).all())
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert notes_saying(db_url, "同時書き込み") == 40
    with bot.session() as s:
        count, broken = verify_chain(s)
        assert broken is None and count == before + 40


def test_an_audit_row_in_a_rolled_back_savepoint_is_not_stored(bot):
    from bot.privacy import audit, verify_chain
    from bot.replies import Reply
    from bot.store.models import AuditEvent
    from tests.conftest import who

    def action(ctx):
        audit(ctx, "test.kept")
        try:
            with ctx.session.begin_nested():
                audit(ctx, "test.dropped")
                raise ValueError("undo this savepoint")
        except ValueError:
            pass
        with ctx.session.begin_nested():
            audit(ctx, "test.kept_in_savepoint")
        return Reply()

    assert not bot.runtime.run(who("U0DEMOCM1"), action).error
    with bot.session() as s:
        actions = [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions[-2:] == ["test.kept", "test.kept_in_savepoint"] and "test.dropped" not in actions
        assert verify_chain(s)[1] is None


def test_the_chain_verifies_whatever_an_audit_row_holds(bot):
    """On PostgreSQL the server hashes the rows under the chain lock
    (migration 0016); `renkei audit verify` checks them with Python's hash.
    Both must agree on every character JSON escapes or keeps as it is."""
    from bot.privacy import audit, verify_chain
    from bot.replies import Reply
    from bot.store.models import AuditEvent
    from tests.conftest import who

    # (and what an array literal would treat specially: the lists travel as arrays)
    odd = ['引用符"と\\バックスラッシュ', "改行\nとタブ\t", "絵文字🏥と半角ｶﾅ", "\u2028行区切り", "", "<@U123>&amp;",
           "NULL", "{a,b}", "a,b"]

    def action(ctx):
        for i, text in enumerate(odd):
            audit(ctx, "test.odd", target=text, detail=text[::-1], allowed=i % 2 == 0)
        return Reply()

    assert not bot.runtime.run(who("U0DEMOCM1"), action).error
    assert not bot.runtime.run(who("U0DEMOCM1"), action).error  # chained onto the first transaction's rows
    with bot.session() as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == "test.odd").order_by(AuditEvent.id)).all()
        assert [r.target for r in rows] == odd * 2 and [r.patient_code for r in rows] == [None] * len(odd) * 2
        assert all(r.prev_hash == before.hash for before, r in zip(rows, rows[1:]))
        assert verify_chain(s)[1] is None


@pg_only
def test_start_up_work_may_outlast_a_requests_limit_and_the_next_request_may_not(fake, clock):
    """The caches `renkei serve` fills at start (`WARM_UP_DEADLINE`): on a
    loaded machine a year's notes took longer than a request may, and the
    count was cut off every time. Its own deadline holds for its own
    transaction only."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    _fresh_postgres(PG_URL)
    bot = make_bot(PG_URL, fake, clock, db_statement_timeout=0.3)

    def slow(session):
        session.execute(text("SELECT pg_sleep(0.9)"))

    try:
        with pytest.raises(OperationalError, match="statement timeout"):
            bot.runtime.in_session(slow, reads_only=True)
        bot.runtime.in_session(slow, reads_only=True, deadline=5)  # neither the server nor the watchdog cuts it
        with pytest.raises(OperationalError, match="statement timeout"):
            bot.runtime.in_session(slow)  # the next transaction on a pooled connection: the request's limit again
    finally:
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()


@pg_only
def test_a_pooled_connection_is_pinged_only_after_idling_and_a_dead_one_is_replaced(monkeypatch):
    """A connection used a moment ago goes out unpinged (a ping is a round
    trip per transaction); one idle for longer is pinged, and if its server
    side is gone the pool connects again: the transaction never sees it."""
    from sqlalchemy import text

    from bot.store import db

    engine = make_engine(PG_URL)
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or ping(conn))

    def backend() -> int:
        with session_scope(engine) as s:
            return s.exec(text("SELECT pg_backend_pid()")).one()[0]

    try:
        first = backend()
        assert backend() == first and pings == []  # the same connection, handed out again unpinged

        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every pooled connection counts as idle now
        assert backend() == first and pings == [1]

        killer = make_engine(PG_URL)
        with session_scope(killer) as s:
            s.exec(text("SELECT pg_terminate_backend(:pid)").bindparams(pid=first))
        killer.dispose()
        time.sleep(0.2)
        replaced = backend()  # the ping finds it gone: a new connection, no error
        assert replaced != first and len(pings) == 2
    finally:
        engine.dispose()
