"""Engines, sessions and migrations."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# The advisory lock key that serialises migrations across processes.
MIGRATION_LOCK = 727_000


def normalise_url(url: str) -> str:
    # People paste "postgresql://..."; SQLAlchemy would pick psycopg2 for that.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            _switch_to_wal(cur, 15)
            cur.close()
            # We issue BEGIN ourselves (below), so the driver must not.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn):
            # Take the write lock up front: two requests that read-then-write
            # (the audit hash chain, "last update wins") are serialised
            # instead of one failing with "database is locked" mid-way.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # A short connect timeout: when the database is down the user is told to
    # retry within Slack's 3 s window instead of the request hanging.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 2})


def _switch_to_wal(cursor: Any, wait: float) -> None:
    """Two processes opening a new file together both switch it to WAL;
    SQLite answers the loser "database is locked" at once, without its
    busy wait, so wait here (once per file: the mode is kept in it)."""
    import sqlite3

    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any
    error so nothing half-written remains."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Config:
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
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # BEGIN IMMEDIATE (see make_engine) is the lock; wait for another
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


def is_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
