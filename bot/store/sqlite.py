"""What one SQLite file needs to serve many threads and processes: WAL
mode, the write lock taken up front and in turn, and checkpoints out of
the requests' way."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

# SQLite copies its write-ahead log back into the database file once the log
# holds this many pages (its own default is 1,000). Below it, the copy waits
# for a quiet moment (`QuietCheckpoints`).
FORCED_CHECKPOINT_PAGES = 10_000
# Seconds without a commit after which the log is copied back.
QUIET = 1.0
# A write's COMMIT this long held up every writer queued for the turn: logged.
SLOW_COMMIT = 0.1
# Execution option of a transaction that only reads (`session_scope(reads_only=True)`).
READS_ONLY = "renkei_reads_only"

log = logging.getLogger(__name__)


def configure(engine: Engine, busy: float, unbounded: str) -> None:
    """Pragmas on every new connection, BEGIN IMMEDIATE in turn (BEGIN for
    a transaction opened with READS_ONLY; the turn waited for without limit
    on a connection with the execution option `unbounded`), and the commit
    hook that schedules checkpoints."""
    path = _file_of(engine)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        _switch_to_wal(cur, busy)
        cur.execute(f"PRAGMA wal_autocheckpoint={FORCED_CHECKPOINT_PAGES}")
        cur.close()
        # We issue BEGIN ourselves (below), so the driver must not.
        dbapi_conn.isolation_level = None

    turn = _WriteTurn(busy, path)

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        # Take the write lock up front: two requests that read-then-write
        # (the audit hash chain, "last update wins") are serialised
        # instead of one failing with "database is locked" mid-way.
        if conn.get_execution_options().get(READS_ONLY):
            # The scheduler's look at what is due: under the write lock
            # it held up every request for its whole length.
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        turn.take(dbapi_conn, unbounded=conn.get_execution_options().get(unbounded, False))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turn.give_back(dbapi_conn)
            raise

    turn.hand_back_after(engine, after_write=(lambda: CHECKPOINTS.committed(path)) if path else None)


@contextmanager
def commits_unsynced(dbapi_conn: sqlite3.Connection) -> Iterator[None]:
    """Commits on this connection that do not wait for the disk (WAL mode,
    `synchronous=NORMAL`): a crash of the process loses none of them, a
    crash of the machine those since the last synced commit or checkpoint.
    Set on the driver's connection, outside a transaction: through
    SQLAlchemy the statement would begin one and take the write turn."""
    before = dbapi_conn.execute("PRAGMA synchronous").fetchone()[0]
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        dbapi_conn.execute(f"PRAGMA synchronous={int(before)}")


def _file_of(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


class _WriteTurn:
    """This process's threads take SQLite's write lock in turn, first come
    first served. Left to SQLite, a thread that finds the file locked sleeps
    in growing steps (up to 100 ms a nap) and can lose to later arrivals
    again and again: under 16 clients that was a tail of one to two
    seconds. Waiting on a lock here, it wakes the moment the holder
    commits. Between processes on one file (`renkei serve --processes`, a
    command run beside the service) the holder also takes `_ProcessTurn`."""

    def __init__(self, wait: float, path: Path | None = None):
        self._lock = threading.Lock()
        self._wait = wait if wait > 0 else -1
        self._holder: tuple[int, int] | None = None  # (connection, thread)
        self._across_processes = _ProcessTurn(path) if path is not None else None

    def take(self, dbapi_conn: Any, unbounded: bool = False) -> None:
        """Take the turn, waiting at most the busy timeout for it (a
        migration, `unbounded`: MIGRATION_WAIT_S, as long as any before)."""
        holder = self._holder
        if holder is not None and holder[1] == threading.get_ident():
            return  # this thread already writes on another connection: SQLite's busy wait decides, as before
        wait = MIGRATION_WAIT_S if unbounded else self._wait
        deadline = None if wait < 0 else time.monotonic() + wait
        if not self._lock.acquire(timeout=wait):
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked (writers queued)"))
        try:
            taken = self._across_processes is None or self._across_processes.take(deadline, patient=unbounded)
        except BaseException:
            self._lock.release()  # nothing else would: this thread is not the holder
            raise
        if not taken:
            self._lock.release()
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked (another process writes)"))
        self._holder = (id(dbapi_conn), threading.get_ident())

    def give_back(self, dbapi_conn: Any) -> bool:
        """Release the turn if this connection holds it; whether it did."""
        # SQLAlchemy hands commit and rollback the pool's proxy of the connection.
        dbapi_conn = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)
        holder = self._holder
        if holder is not None and holder[0] == id(dbapi_conn):
            self._holder = None
            try:
                if self._across_processes is not None:
                    self._across_processes.give_back()
            finally:
                self._lock.release()
            return True
        return False

    def hand_back_after(self, engine: Engine, after_write: Callable[[], None] | None = None) -> None:
        """Release once COMMIT or ROLLBACK has really ended (the engine's
        own commit event fires before it), however the transaction ends,
        the pool's reset of a returned connection included; then call
        `after_write` if a write was committed."""
        dialect = engine.dialect

        def rolled_back(dbapi_conn, _call=dialect.do_rollback):
            try:
                return _call(dbapi_conn)
            finally:
                self.give_back(dbapi_conn)

        def committed_then(dbapi_conn, _call=dialect.do_commit):
            started = time.monotonic()
            try:
                _call(dbapi_conn)
            except BaseException:
                self.give_back(dbapi_conn)
                raise
            took = time.monotonic() - started
            # Only a transaction that held the turn wrote; reads commit too.
            if not self.give_back(dbapi_conn):
                return
            if took > SLOW_COMMIT:
                # Said so that a latency tail can be told apart from the code's own time.
                log.warning("a commit held the write turn for %.0f ms, every writer waiting: most likely SQLite "
                            "copying its log back into the file, which it does in the commit that crosses %d "
                            "pages when no quiet second came first", took * 1000, FORCED_CHECKPOINT_PAGES)
            if after_write is not None:
                try:
                    after_write()
                except Exception:  # the COMMIT itself succeeded: never report it as failed
                    log.exception("after-commit hook failed")

        dialect.do_rollback, dialect.do_commit = rolled_back, committed_then

        @event.listens_for(engine, "close")
        def _closed(dbapi_conn, _record):  # a connection closed mid-transaction ends it too
            self.give_back(dbapi_conn)


# How often a process waiting for another's write turn looks again; a
# migration, which may wait minutes, less often.
PROCESS_TURN_POLL_S = 0.0002
MIGRATION_POLL_S = 0.05
# How long a migration waits for the write turn (SQLite's busy wait before
# the turn was a lock of ours: 600 s).
MIGRATION_WAIT_S = 600.0


class _ProcessTurn:
    """The write turn between processes on one file: an exclusive lock
    (flock) on a file beside it, `<file>-turn`, held by the thread that
    holds its own process's turn, so at most one thread of each process
    waits for it. The kernel lets the lock go when a process dies, however
    it dies.

    A blocking flock cannot be given a time limit, and a request must not
    wait past the busy timeout; so a bounded wait looks every
    PROCESS_TURN_POLL_S (a write holds the turn for a few milliseconds,
    so a handful of looks; at 1 ms between looks the 16-client tails of
    the benchmark's writing rows were longer). Looking is not queueing: a
    process whose threads hand the turn on among themselves can keep it
    from one that looks, up to that one's busy timeout (in the benchmark's
    16-client writing rows no writer timed out; a blocking flock in a
    thread of its own would queue)."""

    def __init__(self, path: Path):
        self._database = path
        self._path = path.with_name(path.name + "-turn")
        self._fd = -1
        self._close: weakref.finalize | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._pid != os.getpid():
            if self._close is not None:
                # Forked: the parent's descriptor shares the parent's lock, and
                # kept here would hold it after the parent ended.
                self._close()
            try:  # readable by whoever may read the database (a command run as another user)
                mode = self._database.stat().st_mode & 0o666
            except OSError:
                mode = 0o644
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CREAT, mode)  # flock needs no more
            self._close = weakref.finalize(self, os.close, self._fd)
            self._pid = os.getpid()
        return self._fd

    def take(self, deadline: float | None, patient: bool = False) -> bool:
        """Whether the turn was taken by `deadline` (None: no limit);
        `patient`: looking less often."""
        fd = self._file()
        pause = MIGRATION_POLL_S if patient else PROCESS_TURN_POLL_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            left = pause if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))

    def give_back(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


class QuietCheckpoints:
    """Copies a file's write-ahead log back into it once no write has been
    committed for `quiet` seconds, from a thread of its own (and again
    after another quiet spell if a reader kept part of the log in use).

    SQLite does it in the COMMIT that crosses its threshold, while that
    thread still holds the write turn, and on a 1 GB file that copy takes
    100–300 ms: every request queued behind it waited (SQLite's p99 at 16
    clients was two to three times its p50). Done from another thread in
    the middle of a burst it stalled the writers just the same; only no
    copy during the burst helped. So it waits for a quiet second, which
    comes between bursts and between a small team's requests. Under a load
    that never pauses, the writer crossing FORCED_CHECKPOINT_PAGES (about
    40 MB of log) still does it, as before."""

    def __init__(self, quiet: float = QUIET):
        self._quiet = quiet
        self._cond = threading.Condition()
        self._last_commit: dict[Path, float] = {}
        self._thread: threading.Thread | None = None

    def committed(self, path: Path) -> None:
        with self._cond:
            waiting = path in self._last_commit
            self._last_commit[path] = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="renkei-sqlite-checkpoint", daemon=True)
                self._thread.start()
            if not waiting:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                quiet = [path for path, at in self._last_commit.items() if now - at >= self._quiet]
                for path in quiet:
                    del self._last_commit[path]
                if not quiet:
                    soonest = min(self._last_commit.values(), default=None)
                    self._cond.wait(None if soonest is None else soonest + self._quiet - now)
                    continue
            for path in quiet:
                try:
                    if not checkpoint(path):
                        self.committed(path)  # not all copied (a reader, a lock): after another quiet second
                except Exception:
                    log.exception("checkpoint of %s failed", path.name)


def checkpoint(path: Path) -> bool:
    """PASSIVE: copies what no reader still needs, never waits for a lock,
    so a request arriving meanwhile is not held up by it. False if some of
    the log could not be copied now; True when done, or the file is gone."""
    try:
        # mode=rw: a database file removed meanwhile (a test's) is not created
        # again (its -wal and -shm may be, for the moment this connection lives).
        conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=0)
    except sqlite3.Error:
        return True
    try:
        busy, log_pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return not busy and copied >= log_pages
    except sqlite3.Error as e:
        log.info("checkpoint of %s put off: %s", path.name, e)
        return False
    finally:
        conn.close()


CHECKPOINTS = QuietCheckpoints()


def _switch_to_wal(cursor: Any, wait: float) -> None:
    """Two processes opening a new file together both switch it to WAL;
    SQLite answers the loser "database is locked" at once, without its
    busy wait, so wait here (once per file: the mode is kept in it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
