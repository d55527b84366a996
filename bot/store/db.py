"""Engines, sessions and migrations, and the bounds on every database wait."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlmodel import Session, create_engine

from bot.store import sqlite
from bot.timers import Timers

if TYPE_CHECKING:
    from alembic.config import Config

    from bot.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# The advisory lock key that serialises migrations across processes ("renkei" + 1).
MIGRATION_LOCK = 727_000
# A statement the server should have ended itself (statement_timeout) is
# given up on by the client this much later: the server is frozen or the
# network is gone, and nothing else would end the wait.
GRACE = 0.5
UNBOUNDED = "renkei_unbounded"  # execution option: no client-side deadline (migrations)
DEADLINE = "renkei_deadline"  # execution option: this transaction's own limit per statement, seconds

# Enough connections that one process's threads (8 serving under waitress or
# 10 under Socket Mode, 4 posting, 4 answering presses, the scheduler) never
# queue for one: the pool timeout then only fires when the database holds
# every connection up. (Pool size: kept open when idle; the rest are opened
# when needed and closed after.)
CONNECTIONS = 30
POSTGRES_POOL_SIZE = 10
SQLITE_POOL_SIZE = 5  # each idle SQLite connection keeps a page cache of its own (up to 2 MB)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """How long one database wait may last, in seconds; 0 means no limit.
    `Limits()` is the old, unbounded behaviour (one-shot jobs, benchmarks);
    the bot's own engine takes its values from the settings."""

    statement: float = 0.0  # PostgreSQL statement_timeout; the client gives up GRACE later
    lock: float = 0.0  # PostgreSQL lock_timeout
    idle_in_transaction: float = 0.0  # PostgreSQL idle_in_transaction_session_timeout
    pool: float = 30.0  # waiting for a free pooled connection
    connect: int = 2  # libpq connect_timeout (whole seconds, at least 2)
    tcp: float = 0.0  # TCP keepalive and tcp_user_timeout: a vanished host or network
    busy: float = 15.0  # SQLite busy timeout (its only wait: another writer)

    @classmethod
    def of(cls, settings: "Settings") -> "Limits":
        return cls(statement=settings.db_statement_timeout, lock=settings.db_lock_timeout,
                   idle_in_transaction=settings.db_idle_in_transaction_timeout, pool=settings.db_pool_timeout,
                   connect=settings.db_connect_timeout, tcp=settings.db_tcp_timeout, busy=settings.db_busy_timeout)


def normalise_url(url: str) -> str:
    # People paste "postgresql://..."; SQLAlchemy would pick psycopg2 for that.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, limits: Limits | None = None) -> Engine:
    limits = limits or Limits()
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # CONNECTIONS here too: SQLAlchemy's default of 15 is fewer than the
        # threads of `renkei serve` that can each hold one, and the one that
        # waits past the pool timeout is told to retry.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": limits.busy},
                               pool_size=SQLITE_POOL_SIZE, max_overflow=CONNECTIONS - SQLITE_POOL_SIZE,
                               pool_timeout=limits.pool)
        sqlite.configure(engine, limits.busy, unbounded=UNBOUNDED)
        return engine
    # A short connect timeout: when the database is down the user is told to
    # retry within Slack's 3 s window instead of the request hanging.
    engine = create_engine(url, pool_size=POSTGRES_POOL_SIZE,
                           max_overflow=CONNECTIONS - POSTGRES_POOL_SIZE, pool_timeout=limits.pool,
                           connect_args=_postgres_connect_args(url, limits))
    if limits.statement:
        _give_up_after(engine, limits.statement + GRACE)
    _ping_when_idle(engine)
    return engine


# A pooled connection idle longer than this is pinged before it is handed
# out. SQLAlchemy's pool_pre_ping pings at every checkout: a round trip
# per transaction, three for a button press, on connections that served a
# request a few milliseconds before. One that broke in the last second
# (the server restarted just then) fails its statement instead: that
# request is told to retry, and SQLAlchemy then replaces every pooled
# connection older than the failure.
PING_AFTER_IDLE = 1.0
_CHECKED_IN = "renkei_checked_in"


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # just connected, or in use a moment ago
        try:
            dialect.do_ping(dbapi_conn)  # with its deadline (`_give_up_after`): a frozen server raises GaveUp
        except dialect.loaded_dbapi.Error as e:
            # Gone while idle, most likely with every other idle one (the
            # server restarted): the pool replaces them all, as pool_pre_ping did.
            raise InvalidatePoolError(f"idle connection is gone: {e}") from e


def _postgres_connect_args(url: str, limits: Limits) -> dict[str, Any]:
    """Server-side bounds as connection options (no round trip per request):
    a statement or a lock wait that runs too long is cancelled by the server
    and its transaction rolled back, so nothing is stored after the person
    was told it was not."""
    from sqlalchemy.engine import make_url

    args: dict[str, Any] = {"connect_timeout": limits.connect}
    options = [make_url(url).query.get("options", "")]
    for name, seconds in (("statement_timeout", limits.statement), ("lock_timeout", limits.lock),
                          ("idle_in_transaction_session_timeout", limits.idle_in_transaction)):
        if seconds:
            options.append(f"-c {name}={int(seconds * 1000)}")
    if any(options[1:]):
        args["options"] = " ".join(o for o in options if o)
    if limits.tcp:
        # A host or network that vanished (no RST): unacknowledged data and
        # silent idle connections are given up on instead of waiting for
        # the kernel's two hours.
        args.update(keepalives=1, keepalives_idle=max(1, int(limits.tcp)), keepalives_interval=1,
                    keepalives_count=3, tcp_user_timeout=int(limits.tcp * 1000))
    return args


class _Watchdog:
    """Cuts the connection of a database call that outlived its deadline.

    statement_timeout is enforced by the server; a server that is frozen
    (stopped process, full disk, a proxy that stopped forwarding) enforces
    nothing, and its kernel still acknowledges what we send, so neither TCP
    timeout fires either. The call would wait forever. Here one thread
    keeps the deadlines of calls in flight and shuts down the socket of any
    call still waiting at its deadline: the waiting thread gets a disconnect
    error at once, the connection is discarded, and when the server wakes
    it finds the client gone and rolls the transaction back."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[int, Any]] = {}
        self._tokens = itertools.count()
        self._deadlines = Timers(self._cond, self._expired, "renkei-db-watchdog")

    def arm(self, dbapi_conn: Any, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        key = id(dbapi_conn)
        with self._cond:
            token = next(self._tokens)
            self._armed[key] = (token, dbapi_conn)
            self._deadlines.push(deadline, (token, key))
        return token

    def disarm(self, dbapi_conn: Any, token: int) -> bool:
        """False if the deadline passed and the connection was cut."""
        with self._cond:
            armed = self._armed.get(id(dbapi_conn))
            if armed is None or armed[0] != token:
                return False
            del self._armed[id(dbapi_conn)]
            return True

    def _expired(self, item: tuple[int, int]) -> None:
        token, key = item
        armed = self._armed.get(key)
        if armed is not None and armed[0] == token:  # still waiting on the call it was armed for
            del self._armed[key]
            _cut(armed[1])


def _cut(dbapi_conn: Any) -> None:
    try:
        sock = socket.socket(fileno=dbapi_conn.fileno())
    except Exception:  # already closed
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
        log.warning("database did not answer in time: connection given up")
    except OSError:
        pass
    finally:
        sock.detach()  # the driver still owns the descriptor


WATCHDOG = _Watchdog()


class GaveUp(OperationalError):
    """The server did not answer within the deadline (see `_Watchdog`)."""


def _give_up_after(engine: Engine, seconds: float) -> None:
    """Every call that waits on the server (statements, commit, rollback,
    the pool's ping) gets a deadline `seconds` from its start; a statement
    in a transaction opened with a DEADLINE of its own gets that one."""
    dialect = engine.dialect

    def watched(call, dbapi_conn, *args, limit: float | None = None):
        token = WATCHDOG.arm(dbapi_conn, limit or seconds)
        try:
            return call(dbapi_conn, *args)
        finally:
            WATCHDOG.disarm(dbapi_conn, token)

    def execute(call):
        def run(cursor, statement, *args):
            context = args[-1] if args else None
            options = context.execution_options if context is not None else {}
            if options.get(UNBOUNDED):
                return call(cursor, statement, *args)
            limit = options.get(DEADLINE)
            return watched(lambda _conn: call(cursor, statement, *args), cursor.connection,
                           limit=limit + GRACE if limit else None)

        return run

    def end(call):
        return lambda dbapi_conn: watched(call, dbapi_conn)

    def ping(dbapi_conn):
        token = WATCHDOG.arm(dbapi_conn, seconds)
        try:
            return ping_once(dbapi_conn)
        except Exception as e:
            if WATCHDOG.disarm(dbapi_conn, token):
                raise
            # Not a dead connection to replace (the pool would reconnect and
            # wait for the frozen server again): the request gives up now.
            raise GaveUp("ping", None, e, connection_invalidated=True) from e
        finally:
            WATCHDOG.disarm(dbapi_conn, token)

    ping_once = dialect.do_ping
    for name in ("do_execute", "do_executemany", "do_execute_no_params"):
        setattr(dialect, name, execute(getattr(dialect, name)))
    for name in ("do_commit", "do_rollback"):
        setattr(dialect, name, end(getattr(dialect, name)))
    dialect.do_ping = ping


class CommitUnknown(OperationalError):
    """The connection broke while COMMIT was on its way: the server may
    have committed or not. Never tell the person "nothing was stored"."""


@contextmanager
def session_scope(engine: Engine, reads_only: bool = False, deadline: float | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any
    error so nothing half-written remains. `reads_only` is a promise that
    the block writes nothing: on SQLite it then reads beside the writer
    (a plain BEGIN in WAL mode) instead of taking the write lock.
    `deadline` (seconds) replaces the engine's limit per statement for work
    no one waits for (a cache filled at start-up), which on a loaded
    machine may outlast a request's limit and would then never be done; on
    an engine without limits it sets PostgreSQL's only. It holds for this
    transaction: a commit inside the block ends it."""
    session = Session(engine, expire_on_commit=False)
    options: dict[str, Any] = {}
    if reads_only:
        options[sqlite.READS_ONLY] = True
    if deadline:
        options[DEADLINE] = deadline
    if options:
        connection = session.connection(execution_options=options)  # before BEGIN: the options pick it
        if deadline and engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(deadline * 1000))}")
    try:
        yield session
        try:
            session.commit()
        except DBAPIError as e:
            if e.connection_invalidated:
                raise CommitUnknown(e.statement, e.params, e.orig, connection_invalidated=True) from e
            raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> "Config":
    # Imported here: Alembic is 10 MB of memory that a serving process,
    # which migrates once at start-up, need not load again.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate in one transaction that first takes a database-wide lock, so
    processes starting together on an empty database run the migrations
    once: the others wait, then find nothing to do. Migrations are not
    bound by the request timeouts (a big table may take minutes)."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.connect() as conn:
        conn.execution_options(**{UNBOUNDED: True})
        if conn.dialect.name == "sqlite":
            # BEGIN IMMEDIATE (bot.store.sqlite) is the lock; wait for another
            # process's migration longer than a request would.
            raw = conn.connection.dbapi_connection
            busy = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute("PRAGMA busy_timeout = 600000")
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(busy)}")
            return
        with conn.begin():
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)


_DIALECT_INSERTS = {"postgresql": postgresql_dialect.insert, "sqlite": sqlite_dialect.insert}


def insert_or_nothing(table: Any, dialect: str, unique: list[str]) -> Any:
    """An INSERT into `table` that leaves a row whose `unique` columns are
    already there alone (ON CONFLICT DO NOTHING), the same construct on
    both databases. Add RETURNING to learn which rows were stored: rowcount
    is -1 on psycopg once SQLAlchemy adds its own RETURNING."""
    if dialect not in _DIALECT_INSERTS:
        raise ValueError(f"no INSERT ... ON CONFLICT for the {dialect} database")
    return _DIALECT_INSERTS[dialect](table).on_conflict_do_nothing(index_elements=unique)


def is_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
