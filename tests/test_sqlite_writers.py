"""SQLite: a process's threads take the write lock in turn (`_WriteTurn` in
bot/store/db.py), and however a transaction ends, the turn is handed on."""

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.store.db import Limits, make_engine


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
        except OperationalError as e:
            result["error"] = str(e)
        result["waited"] = time.monotonic() - t0

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
