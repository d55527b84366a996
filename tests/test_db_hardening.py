"""The database under trouble: processes migrating together."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, ROOT, _fresh_postgres

pg_only = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: set RENKEI_TEST_DATABASE_URL")


# --- migrations: two processes, one empty database -----------------------------------

# Each process migrates once per "go" line, after importing everything, so
# the two start each round together.
MIGRATOR = (
    "import sys\n"
    "from bot.store.db import make_engine, upgrade\n"
    "engine = make_engine(sys.argv[1])\n"
    "print('ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    try:\n"
    "        upgrade(engine)\n"
    "        print('ok', flush=True)\n"
    "    except Exception as e:\n"
    "        print('failed', type(e).__name__, str(e).splitlines()[0], flush=True)\n"
    "    engine.dispose()\n"
)


def migrate_together(url: str, rounds: int, reset) -> list[list[str]]:
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATOR, url], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    outcomes = []
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for _ in range(rounds):
            reset()
            for p in procs:
                p.stdin.write("go\n")
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
        outcomes = migrate_together(target, 2, lambda: _fresh_postgres(target))
        with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
            versions = conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
    finally:
        admin.execute("DROP DATABASE IF EXISTS test_h4_migrate WITH (FORCE)")
        admin.close()
    assert outcomes == [["ok", "ok"]] * 2
    assert versions == 1


def test_two_processes_migrating_an_empty_sqlite_file_together_both_succeed(tmp_path):
    path = tmp_path / "fresh.db"

    def reset():
        for f in tmp_path.glob("fresh.db*"):
            f.unlink()

    assert migrate_together(f"sqlite:///{path}", 2, reset) == [["ok", "ok"]] * 2
