"""PostgreSQL really stopped and started again, under the running app: the
test runs its own server (initdb in a temporary folder, a free port), so
stopping it disturbs nobody. While it is down every command answers
within Slack's window with a clear "please retry", /healthz says 503 and
nothing is half-written; when it is back the same app (no restart) works
again and the scheduler sends what fell due meanwhile."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot import schedule
from bot.slack.deliver import scheduler_sender
from bot.store.models import Delivery, Note
from tests.conftest import make_bot

JST = ZoneInfo("Asia/Tokyo")
BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
pytestmark = pytest.mark.skipif(BIN is None or shutil.which("runuser") is None and os.geteuid() == 0,
                                reason="needs PostgreSQL's server binaries (initdb, pg_ctl)")


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Server:
    def __init__(self, folder: Path):
        self.folder, self.data = folder, folder / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        folder.chmod(0o777)
        subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                     "--no-sync"]), check=True, capture_output=True)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-w", *args]), check=True,
                       capture_output=True)

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "-l", str(self.folder / "log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


@pytest.fixture
def server():
    # Not pytest's tmp_path: its folders are private to root, and the server
    # runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="renkei-pg-"))
    try:
        server = Server(folder)
        server.start()
        yield server
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def timed(bot, command: str, text: str):
    start = time.monotonic()
    r = bot.sim.command(command, text, channel="C0TEAM")
    return r, time.monotonic() - start


def test_a_stopped_database_is_answered_quickly_and_the_same_app_recovers(server, fake, clock):
    bot = make_bot(server.url, fake, clock)
    try:
        assert "登録しました" in bot.sim.command("/liaison", "山田 止める前", channel="C0TEAM").text
        bot.runtime.wait_idle()
        server.stop()
        assert bot.sim.get("/healthz").status == 503
        for command, text in (("/liaison", "山田 止まっている間"), ("/liaison", "山田 list"), ("/patient", "list"),
                              ("/vacancy", ""), ("/plan", ""), ("/council", "")):
            r, seconds = timed(bot, command, text)
            assert r.status == 200 and "もう一度" in r.text, (command, text, r.text)
            assert seconds < 2.5, (command, seconds)  # inside Slack's 3 s
        # The scheduler keeps ticking and fails softly while the database is away.
        tick = schedule.tick(bot.runtime, datetime(2026, 11, 26, 8, 30, tzinfo=JST),
                             scheduler_sender(bot.runtime, bot.app.client))
        assert tick.sent == [] and tick.failed
        server.start()
        assert bot.sim.get("/healthz").status == 200  # the same process, no restart
        assert "登録しました" in bot.sim.command("/liaison", "山田 戻った後", channel="C0TEAM").text
        fake.clear()
        tick = schedule.tick(bot.runtime, datetime(2026, 11, 26, 8, 35, tzinfo=JST),
                             scheduler_sender(bot.runtime, bot.app.client))
        assert tick.sent  # the morning's prompts, missed while down, go out now
        with bot.session() as s:
            bodies = [n.body_json for n in s.exec(select(Note).order_by(Note.id))]
            assert len(bodies) == 2 and "止める前" in bodies[0] and "戻った後" in bodies[1]  # nothing half-written
            assert not s.exec(select(Delivery).where(Delivery.status == "pending")).all()
    finally:
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()
