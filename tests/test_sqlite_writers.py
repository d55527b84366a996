"""SQLite: a process's threads take the write lock in turn (`_WriteTurn` in
bot/store/sqlite.py), and so do processes on one file (`_ProcessTurn`);
however a transaction ends, the turn is handed on."""

import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.store.db import Limits, make_engine
from tests.conftest import ROOT


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", Limits(busy=1.0))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def _write_in_thread(engine, n: int) -> dict:
    """Insert `n` from another thread; what happened and how long it waited."""
    result: dict = {}

    def run():
        t0 = time.monotonic()
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            result["ok"] = True
        except (OperationalError, OSError) as e:
            result["error"] = str(e)
        result["finished_at"] = time.monotonic()
        result["waited"] = result["finished_at"] - t0

    thread = threading.Thread(target=run)
    thread.start()
    result["thread"] = thread
    return result


def test_the_next_writer_goes_as_soon_as_the_holder_commits(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        other = _write_in_thread(engine, 2)
        time.sleep(0.3)
        assert "ok" not in other  # waiting for the turn
    other["thread"].join(5)
    assert other.get("ok") and other["waited"] < 0.9, other


@pytest.mark.parametrize("ending", ["rollback", "close without commit", "error inside"])
def test_a_transaction_ended_any_way_hands_the_turn_on(engine, ending):
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (1)"))  # begins: this thread has the turn
    if ending == "rollback":
        conn.rollback()
        conn.close()
    elif ending == "close without commit":
        conn.close()  # the pool's proxy rolls back
    else:
        with pytest.raises(ZeroDivisionError), conn.begin_nested():
            1 / 0
        conn.close()
    other = _write_in_thread(engine, 2)
    other["thread"].join(5)
    assert other.get("ok") and other["waited"] < 0.5, other
    with engine.connect() as check:
        assert [r[0] for r in check.execute(text("SELECT n FROM t"))] == [2]


def test_a_writer_that_waits_past_the_busy_limit_is_told_so(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        other = _write_in_thread(engine, 2)
        other["thread"].join(5)
    assert "locked" in other.get("error", ""), other
    assert 0.9 < other["waited"] < 2.0


def test_a_transaction_that_only_reads_lets_a_writer_through_meanwhile(engine):
    """The scheduler's look at what is due (`session_scope(reads_only=True)`)
    reads beside the writer: under the write lock, every request waited for
    the whole of it (16-client p99 of 200-250 ms on SQLite in `make bench`)."""
    from bot.store.db import session_scope

    with session_scope(engine, reads_only=True) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 0
        writer = _write_in_thread(engine, 1)
        writer["thread"].join(5)
        assert writer.get("ok") and writer["waited"] < 0.5, writer
        # Its snapshot is the one it began with: the new row shows in its next transaction.
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 0
    with session_scope(engine, reads_only=True) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 1


def _rows_in_the_file_alone(engine, tmp_path) -> int | None:
    """Rows of t in the database file without its write-ahead log: what a
    checkpoint has copied back. None while t itself is only in the log."""
    import shutil
    import sqlite3
    import uuid

    copy = tmp_path / f"alone-{uuid.uuid4().hex}.db"
    shutil.copyfile(engine.url.database, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    except sqlite3.Error:  # not there yet (or a copy taken mid-checkpoint)
        return None
    finally:
        conn.close()


def _eventually(check, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while (value := check()) is None or value is False:
        if time.monotonic() > deadline:
            return value
        time.sleep(0.1)
    return value


def _insert_pages(engine, pages: int) -> None:
    """One commit of about `pages` log pages (a 4 KB row per page)."""
    with engine.begin() as conn:
        conn.execute(text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :pages) "
                          "INSERT INTO t SELECT randomblob(4000) FROM n"), {"pages": pages})


def test_the_log_is_copied_back_in_a_quiet_moment_not_in_the_commit(engine, tmp_path):
    """SQLite's own checkpoint at 1,000 log pages ran inside a request's
    COMMIT, holding every other writer up for 100-300 ms on a large file."""
    from bot.store import sqlite

    _insert_pages(engine, 1_500)
    assert _rows_in_the_file_alone(engine, tmp_path) is None  # the commit did not copy it back
    assert _eventually(lambda: _rows_in_the_file_alone(engine, tmp_path), sqlite.QUIET + 5) == 1_500


def test_a_log_that_never_gets_a_quiet_moment_is_still_copied_back_when_large(engine, tmp_path):
    from bot.store import sqlite

    _insert_pages(engine, sqlite.FORCED_CHECKPOINT_PAGES + 500)
    assert _rows_in_the_file_alone(engine, tmp_path) == sqlite.FORCED_CHECKPOINT_PAGES + 500


def test_every_thread_of_a_serving_process_can_hold_a_connection_at_once(tmp_path):
    """8 serving, 4 posting, 4 answering presses and the scheduler: 17.
    With SQLAlchemy's default pool of 15, the 16th waited for the pool
    timeout and its request was told to retry."""
    from bot.store.db import session_scope

    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", Limits(pool=0.5))
    threads = 17
    together = threading.Barrier(threads, timeout=5)
    failures = []

    def hold():
        try:
            with session_scope(engine, reads_only=True) as session:
                session.execute(text("SELECT 1"))
                together.wait()  # every thread holds its connection now
        except Exception as e:
            failures.append(repr(e))

    workers = [threading.Thread(target=hold) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    engine.dispose()
    assert not failures, failures


def test_only_a_committed_write_waits_for_a_checkpoint_and_its_hook_cannot_fail_the_commit(engine, monkeypatch):
    """Reads commit too (session_scope always does): counted as writes they
    would put the quiet second off for ever under steady reading."""
    from bot.store import sqlite
    from bot.store.db import session_scope

    calls = []
    monkeypatch.setattr(sqlite.CHECKPOINTS, "committed", lambda path: calls.append(path))
    with session_scope(engine, reads_only=True) as session:
        session.execute(text("SELECT count(*) FROM t"))
    assert calls == []
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert len(calls) == 1

    def broken(path):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(sqlite.CHECKPOINTS, "committed", broken)
    with engine.begin() as conn:  # the COMMIT succeeded: no error reaches the writer
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_a_write_whose_commit_holds_every_writer_up_is_logged(engine, monkeypatch, caplog):
    """A latency tail must be told apart from the code's own time: a COMMIT
    that held the write turn past SLOW_COMMIT says so (the one that copies
    the log back at its threshold). A read's commit holds no turn."""
    from bot.store import sqlite
    from bot.store.db import session_scope

    monkeypatch.setattr(sqlite, "SLOW_COMMIT", 0.0)  # every commit counts as slow here
    caplog.set_level("WARNING", logger="bot.store.sqlite")
    with session_scope(engine, reads_only=True) as session:
        session.execute(text("SELECT count(*) FROM t"))
    assert not caplog.records
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    (said,) = [r.getMessage() for r in caplog.records]
    assert "held the write turn for" in said and str(sqlite.FORCED_CHECKPOINT_PAGES) in said


def test_the_start_up_warm_up_reads_beside_a_long_writer(tmp_path, fake, clock, caplog):
    """`renkei serve` fills its caches while its first tick may write for
    seconds (after days down: 7,632 late digests recorded as skipped on the
    benchmark's data). The warm-up only reads, so it neither waits for that
    writer nor gives up: as a write it was told 'writers queued' and the
    first /plan digest of the process paid for the whole year's count."""
    import logging

    from bot.plan import indicators
    from bot.serve import warm_caches
    from bot.store.db import session_scope
    from tests.conftest import make_bot

    bot = make_bot(f"sqlite:///{tmp_path / 'warm.db'}", fake, clock, db_busy_timeout=0.5)
    try:
        with session_scope(bot.runtime.engine) as writer:  # holds the write turn throughout
            writer.execute(text("UPDATE member SET display_name = display_name"))
            settled = []
            with caplog.at_level(logging.ERROR, logger="bot.runtime"), caplog.at_level(logging.INFO, logger="renkei"):
                warm_caches(bot.runtime, then=lambda: settled.append("heap"))
                bot.runtime.wait_idle(10)
        assert "background work failed" not in caplog.text
        assert bot.runtime.engine in indicators._seen, "the notes were not counted"
        # what `renkei serve` then does (freeze the heap), and the line the load benchmark waits for
        assert settled == ["heap"] and "caches filled in" in caplog.text
    finally:
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()


# Holds the write turn in another process for argv[2] seconds, then commits
# and says when (time.monotonic is one clock for every process on Linux).
_HOLDER = """
import sys, time
from sqlalchemy import text
from bot.store.db import make_engine
engine = make_engine(sys.argv[1])
with engine.begin() as conn:
    conn.execute(text("INSERT INTO t VALUES (1)"))
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
print(time.monotonic(), flush=True)
"""


def _holding_in_another_process(engine, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(engine.url), str(seconds)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_writer_in_another_process_goes_as_soon_as_the_holder_commits(engine):
    """Serving processes on one file (`renkei serve --processes 2`) take the
    turn in turn too. Left to SQLite's busy wait, the writer would sleep in
    steps of up to 100 ms and find the file free up to that late."""
    holder = _holding_in_another_process(engine, 0.45)
    other = _write_in_thread(engine, 2)
    other["thread"].join(5)
    committed_at = float(holder.stdout.readline())
    assert holder.wait(5) == 0
    assert other.get("ok"), other
    assert other["finished_at"] - committed_at < 0.05, other["finished_at"] - committed_at
    with engine.connect() as check:
        assert sorted(r[0] for r in check.execute(text("SELECT n FROM t"))) == [1, 2]


def test_a_writer_waiting_past_the_busy_limit_for_another_process_is_told_so(engine):
    holder = _holding_in_another_process(engine, 30)
    try:
        other = _write_in_thread(engine, 2)
        other["thread"].join(5)
        assert "another process" in other.get("error", ""), other
        assert 0.9 < other["waited"] < 2.0
    finally:
        holder.kill()  # its turn ends with it: the next writer goes at once
        holder.wait(5)
    after = _write_in_thread(engine, 3)
    after["thread"].join(5)
    assert after.get("ok") and after["waited"] < 0.5, after
    with engine.connect() as check:
        assert [r[0] for r in check.execute(text("SELECT n FROM t"))] == [3]


def test_a_failure_while_waiting_for_another_process_hands_the_turn_on(engine, monkeypatch):
    """The lock file could not be opened (a full descriptor table, another
    user's file): that write fails, and the next one is not left waiting
    for a turn nobody holds."""
    from bot.store import sqlite

    def cannot(self, deadline, patient=False):
        raise PermissionError("turn file")

    monkeypatch.setattr(sqlite._ProcessTurn, "take", cannot)
    failed = _write_in_thread(engine, 1)
    failed["thread"].join(5)
    assert "ok" not in failed
    monkeypatch.undo()
    after = _write_in_thread(engine, 2)
    after["thread"].join(5)
    assert after.get("ok") and after["waited"] < 0.5, after
